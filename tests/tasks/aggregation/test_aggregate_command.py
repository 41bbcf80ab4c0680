"""The ``aggregate`` management command: files in, files out, exit code 2 on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.aggregation.io import InputError, read_answers_csv
from tests.tasks.aggregation.test_aggregators import DATA

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path: Path, text: str, name: str = "answers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(answers: Path, out: Path, method: str = "mv", gold: Path | None = None) -> pd.DataFrame:
    args = ["--answers", str(answers), "--method", method, "--output", str(out)]
    if gold is not None:
        args += ["--gold", str(gold)]
    call_command("aggregate", *args)
    return pd.read_csv(out, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("method", ["mv", "wmv", "wawa", "ds", "ods", "glad", "mace"])
def test_it_writes_one_row_per_task_with_string_labels(tmp_path: Path, method: str) -> None:
    answers = write(tmp_path, "task,worker,label\nt1,a,NA\nt1,b,NA\nt1,c,007\nt2,a,007\nt2,b,007\n")
    out = run(answers, tmp_path / "out.csv", method)
    assert list(out.columns) == ["task", "label", "confidence"]
    assert dict(zip(out["task"], out["label"], strict=True)) == {"t1": "NA", "t2": "007"}
    assert all(0.0 <= float(c) <= 1.0 for c in out["confidence"])


def test_quoted_fields_and_extra_columns_go_through_the_general_reader(tmp_path: Path) -> None:
    answers = write(tmp_path, 'worker,task,label,comment\na,"t,1",x,"hi, there"\nb,"t,1",x,\nc,"t,1",y,\n')
    out = run(answers, tmp_path / "out.csv")
    assert out.to_dict("records") == [{"task": "t,1", "label": "x", "confidence": "0.666667"}]


def test_a_repeated_answer_keeps_the_last_one_and_warns_with_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = write(tmp_path, "task,worker,label\nt1,a,x\nt1,b,y\nt1,a,y\nt1,a,y\n")
    out = run(answers, tmp_path / "out.csv")
    assert out["label"].tolist() == ["y"]
    assert out["confidence"].tolist() == ["1.000000"]
    assert "2 answer(s) replaced" in capsys.readouterr().err


def test_gold_is_clamped_in_the_output(tmp_path: Path) -> None:
    answers = write(tmp_path, "task,worker,label\nt1,a,x\nt1,b,x\nt2,a,y\n")
    gold = write(tmp_path, "task,label\nt1,z\nunknown,x\n", "gold.csv")
    out = run(answers, tmp_path / "out.csv", "ds", gold)
    row = out.set_index("task").loc["t1"]
    assert (row["label"], row["confidence"]) == ("z", "1.000000")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("task,worker\nt1,a\n", "line 1: missing column(s) label"),
        ("task,worker,label\nt1,a,x\nt1,b\n", "line 3: expected 3 fields, found 2"),
        ("task,worker,label\nt1,a,x\n\nt2,b,y,z\n", "line 4: expected 3 fields, found 4"),
        ('task,worker,label\n"t1",a,x\nt1,,y\n', "line 3: the worker value is empty"),
        ("task,worker,label\n", "no rows"),
    ],
)
def test_bad_input_exits_with_code_2_and_names_the_line(tmp_path: Path, text: str, needle: str) -> None:
    answers = write(tmp_path, text)
    with pytest.raises(CommandError) as info:
        run(answers, tmp_path / "out.csv")
    assert info.value.returncode == 2
    assert needle in str(info.value)
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_file_exits_with_code_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        run(tmp_path / "nope.csv", tmp_path / "out.csv")
    assert info.value.returncode == 2


def test_the_process_exit_code_is_2(tmp_path: Path) -> None:
    answers = write(tmp_path, "task,worker\nt1,a\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "aggregate",
            "--answers",
            str(answers),
            "--method",
            "mv",
            "--output",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert "missing column(s) label" in proc.stderr


def test_fast_and_general_readers_agree(tmp_path: Path) -> None:
    plain = "task,worker,label\n" + "".join(
        f"task-{i % 7}-long-identifier,w{i % 5},{'é' if i % 3 else 'b'}\n" for i in range(40)
    )
    quoted = plain.replace("task,worker,label\n", '"task",worker,label\n')
    fast = read_answers_csv(write(tmp_path, plain, "a.csv"))
    general = read_answers_csv(write(tmp_path, quoted, "b.csv"))
    for attr in ("task", "worker", "label"):
        assert (getattr(fast, attr) == getattr(general, attr)).all()
    assert fast.task_names.tolist() == general.task_names.tolist()
    assert fast.classes.tolist() == ["b", "é"]
    assert fast.n_duplicates == general.n_duplicates > 0


def test_reader_errors_are_input_errors(tmp_path: Path) -> None:
    (tmp_path / "bin.csv").write_bytes(b"task,worker,label\nt1,a,\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_answers_csv(tmp_path / "bin.csv")


@pytest.mark.skipif(not DATA.is_dir(), reason=f"crowd datasets not found at {DATA}")
def test_the_command_matches_the_library_on_a_real_set(tmp_path: Path) -> None:
    from tasks.aggregation.registry import aggregate_frame

    src = DATA / "dog" / "answers.csv"
    out = run(src, tmp_path / "out.csv", "ds")
    frame = aggregate_frame(pd.read_csv(src, dtype=str, keep_default_na=False), "ds")
    merged = out.merge(frame, on="task", suffixes=("_cmd", "_lib"))
    assert len(merged) == len(frame)
    assert (merged["label_cmd"] == merged["label_lib"]).all()
