"""import_mturk_qualification: a time limit and retry delay a test can use, or exit code 2 and nothing written."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qualification.models import QualificationTest
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
DATA = Path("/work/shared/data/mturk")
FORM, KEY = DATA / "p808_qualification_questionform.xml", DATA / "p808_qualification_answer_key.xml"
FILES = ("--questions", str(FORM), "--answers", str(KEY), "--name", "P808")

TIME_LIMIT = "--time-limit-minutes must be a whole number from 1 to 10080 (7 days)."
RETRY_DELAY = "--retry-delay-hours must be a number from 0 to 8760 (365 days)."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--time-limit-minutes", "0"), TIME_LIMIT),
        (("--time-limit-minutes", "-3"), TIME_LIMIT),
        (("--time-limit-minutes", "10081"), TIME_LIMIT),
        (("--time-limit-minutes", "99999999999999"), TIME_LIMIT),
        (("--retry-delay-hours", "-1"), RETRY_DELAY),
        (("--retry-delay-hours", "nan"), RETRY_DELAY),
        (("--retry-delay-hours", "inf"), RETRY_DELAY),
        (("--retry-delay-hours", "1e308"), RETRY_DELAY),
        (("--retry-delay-hours", "8761"), RETRY_DELAY),
    ],
)
def test_unusable_time_limits_and_retry_delays_exit_2_and_write_nothing(args: tuple[str, ...], message: str) -> None:
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_qualification", *FILES, *args, stdout=StringIO(), stderr=StringIO())
    assert (caught.value.returncode, str(caught.value)) == (2, message)
    assert not QualificationTest.objects.exists()
    assert AuditEvent.objects.count() == events


def test_the_largest_time_limit_and_no_retry_delay_are_accepted() -> None:
    call_command(
        "import_mturk_qualification",
        *FILES,
        "--time-limit-minutes",
        "10080",
        "--retry-delay-hours",
        "0",
        stdout=StringIO(),
    )
    test = QualificationTest.objects.get()
    assert (test.time_limit, test.retry_delay) == (timedelta(days=7), timedelta(0))
