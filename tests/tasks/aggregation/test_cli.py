"""``tasks.aggregation.cli`` and the Django-free path ``manage.py`` takes for a plain ``aggregate`` call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.aggregation.cli import fast_main, parse_plain_call

ROOT = Path(__file__).resolve().parents[3]


def answers_file(tmp_path: Path) -> Path:
    path = tmp_path / "answers.csv"
    path.write_text("task,worker,label\nt1,a,x\nt1,b,x\nt1,c,y\nt2,a,y\n", encoding="utf-8")
    return path


def test_a_plain_call_is_parsed_in_both_option_spellings() -> None:
    assert parse_plain_call(["--answers", "a.csv", "--method=ds", "--output", "o.csv", "--gold=g.csv"]) == {
        "answers": "a.csv",
        "method": "ds",
        "output": "o.csv",
        "gold": "g.csv",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--answers", "a.csv", "--method", "mv", "--output", "o.csv", "--help"],
        ["--answers", "a.csv", "--method", "mv", "--output", "o.csv", "--verbosity", "2"],
        ["--answers", "a.csv", "--method", "nope", "--output", "o.csv"],
        ["--answers", "a.csv", "--method", "mv"],
        ["--ans", "a.csv", "--method", "mv", "--output", "o.csv"],
        ["--answers", "a.csv", "--answers", "b.csv", "--method", "mv", "--output", "o.csv"],
        ["--answers", "a.csv", "--method", "mv", "--output"],
        ["a.csv"],
    ],
)
def test_anything_but_a_plain_call_is_left_to_django(argv: list[str]) -> None:
    assert parse_plain_call(argv) is None
    assert fast_main(argv) is None


def test_fast_main_writes_the_output_and_returns_0(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    code = fast_main(["--answers", str(answers_file(tmp_path)), "--method", "mv", "--output", str(out)])
    assert code == 0
    assert out.read_text(encoding="utf-8") == "task,label,confidence\nt1,x,0.666667\nt2,y,1.000000\n"


def test_fast_main_reports_bad_input_like_django_and_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("task,worker\nt1,a\n", encoding="utf-8")
    code = fast_main(["--answers", str(bad), "--method", "mv", "--output", str(tmp_path / "o.csv")])
    assert code == 2
    assert capsys.readouterr().err.startswith("CommandError: ")
    assert not (tmp_path / "o.csv").exists()


def run_manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_manage_py_runs_a_plain_call_without_setting_django_up(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['manage.py', 'aggregate', '--answers', {str(answers_file(tmp_path))!r}, "
        f"'--method', 'ds', '--output', {str(out)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'manage.py')!r}, run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('django.apps.registry' in sys.modules, 'pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.stdout.split("\n")[:2] == ["exit 0", "False False"], proc.stderr
    assert out.read_text(encoding="utf-8").startswith("task,label,confidence\n")


def test_manage_py_help_and_usage_errors_still_come_from_django() -> None:
    helped = run_manage("aggregate", "--help")
    assert helped.returncode == 0
    assert "--answers ANSWERS" in helped.stdout and "--settings SETTINGS" in helped.stdout
    wrong = run_manage("aggregate", "--answers", "a.csv", "--method", "nope", "--output", "o.csv")
    assert wrong.returncode == 2
    assert "invalid choice: 'nope'" in wrong.stderr
