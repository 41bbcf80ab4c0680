"""The ``replay`` management command: CSVs in, accuracy and answers used out, exit code 2 on bad input."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.tasks.aggregation.test_aggregators import DATA, needs_data

ANSWERS = "task,worker,label\n" + "".join(
    f"t{i},{w},{'x' if (i + (w == 'd')) % 2 else 'y'}\n" for i in range(20) for w in ("a", "b", "c", "d")
)
GOLD = "task,label\n" + "".join(f"t{i},{'x' if i % 2 else 'y'}\n" for i in range(20))


def files(tmp_path: Path, answers: str = ANSWERS, gold: str = GOLD) -> tuple[str, str]:
    (tmp_path / "answers.csv").write_text(answers, encoding="utf-8")
    (tmp_path / "gold.csv").write_text(gold, encoding="utf-8")
    return str(tmp_path / "answers.csv"), str(tmp_path / "gold.csv")


def replay_json(*args: str) -> dict[str, object]:
    out = StringIO()
    call_command("replay", *args, "--json", stdout=out)
    result: dict[str, object] = json.loads(out.getvalue())
    return result


def test_fixed_and_adaptive_report_accuracy_and_answers_used(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    fixed = replay_json("--answers", answers, "--gold", gold, "--policy", "fixed", "--seed", "1")
    adaptive = replay_json("--answers", answers, "--gold", gold, "--policy", "adaptive", "--seed", "1")
    assert fixed["answers_used"] == 80 and fixed["accuracy"] == 1.0 and fixed["gold_tasks"] == 20
    assert adaptive["policy"] == "adaptive" and adaptive["min_answers"] == 2 and adaptive["target"] == 0.997
    assert adaptive["concentration"] == 4.0 and fixed["concentration"] is None
    assert isinstance(adaptive["answers_used"], int) and 40 <= adaptive["answers_used"] < 80


def test_a_concentration_of_zero_treats_answers_as_independent(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    args = ["--answers", answers, "--gold", gold, "--policy", "adaptive", "--seed", "1"]
    independent = replay_json(*args, "--concentration", "0")
    discounted = replay_json(*args, "--concentration", "1.5")
    assert independent["concentration"] is None and discounted["concentration"] == 1.5


def test_options_reach_the_policy(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    result = replay_json(
        "--answers", answers, "--gold", gold, "--policy", "fixed", "--max", "3", "--method", "mv", "--seed", "2"
    )
    assert (result["answers_used"], result["max_answers"], result["method"]) == (60, 3, "mv")


def test_the_plain_output_is_one_line(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    out = StringIO()
    call_command("replay", "--answers", answers, "--gold", gold, "--policy", "fixed", stdout=out)
    assert out.getvalue().startswith("fixed: accuracy 1.0000 on 20 gold tasks; 80 of 80 answers used")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--min", "0"], "minimum number of answers must be at least 1"),
        (["--min", "4", "--max", "3"], "maximum number of answers"),
        (["--target", "2"], "target confidence"),
        (["--concentration", "-1"], "concentration must be 0"),
    ],
)
def test_impossible_settings_exit_with_code_2(tmp_path: Path, args: list[str], needle: str) -> None:
    answers, gold = files(tmp_path)
    with pytest.raises(CommandError, match=needle) as info:
        call_command("replay", "--answers", answers, "--gold", gold, "--policy", "adaptive", *args)
    assert info.value.returncode == 2


@pytest.mark.parametrize(
    ("answers_text", "gold_text", "needle"),
    [
        ("task,worker\nt1,a\n", GOLD, r"missing column\(s\) label"),
        (ANSWERS, "", "empty"),
        (ANSWERS, "task,label\nnobody,x\n", "no gold label belongs to a task"),
    ],
)
def test_bad_files_exit_with_code_2(tmp_path: Path, answers_text: str, gold_text: str, needle: str) -> None:
    answers, gold = files(tmp_path, answers_text, gold_text)
    with pytest.raises(CommandError, match=needle) as info:
        call_command("replay", "--answers", answers, "--gold", gold, "--policy", "fixed")
    assert info.value.returncode == 2


@needs_data
def test_replay_on_a_real_set_is_reproducible() -> None:
    args = ["--answers", str(DATA / "wsd" / "answers.csv"), "--gold", str(DATA / "wsd" / "gold.csv")]
    first = replay_json(*args, "--policy", "adaptive", "--seed", "7")
    again = replay_json(*args, "--policy", "adaptive", "--seed", "7")
    fixed = replay_json(*args, "--policy", "fixed", "--seed", "7")
    assert first == again
    assert isinstance(first["answers_used"], int) and isinstance(fixed["answers_used"], int)
    assert first["answers_used"] < fixed["answers_used"] == 1770
