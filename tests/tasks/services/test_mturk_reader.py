"""Reading results CSVs: timestamps, money, dialects and ragged rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tasks.services.mturk_results.reader import (
    ResultsFileError,
    format_time,
    parse_money,
    parse_time,
    read_results,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu Nov 07 16:38:49 PST 2019", datetime(2019, 11, 8, 0, 38, 49, tzinfo=UTC)),
        ("Fri Nov 01 08:49:11 PDT 2019", datetime(2019, 11, 1, 15, 49, 11, tzinfo=UTC)),
        ("Fri Nov 01 08:49:11 UTC 2019", datetime(2019, 11, 1, 8, 49, 11, tzinfo=UTC)),
        ("2019-10-28 23:00:10+01:00", datetime(2019, 10, 28, 22, 0, 10, tzinfo=UTC)),
        ("2019-10-28T23:00:10", datetime(2019, 10, 28, 23, 0, 10, tzinfo=UTC)),
        ("  ", None),
    ],
)
def test_timestamps_become_aware_utc(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["Thu Nov 07 16:38:49 XYZ 2019", "Thu Feb 30 16:38:49 PST 2019", "yesterday"])
def test_unreadable_timestamps_say_so(text: str) -> None:
    with pytest.raises(ValueError, match="unreadable time"):
        parse_time(text)


def test_the_export_format_reads_back_to_the_same_instant() -> None:
    moment = datetime(2019, 11, 8, 0, 38, 49, tzinfo=UTC)
    assert format_time(moment) == "Fri Nov 08 00:38:49 UTC 2019" and parse_time(format_time(moment)) == moment


def test_money_drops_the_dollar_sign_and_refuses_nonsense() -> None:
    assert parse_money("$0.05") == Decimal("0.05") and parse_money("1,250.50") == Decimal("1250.50")
    assert parse_money("") is None
    for bad in ("$abc", "-1", "NaN"):
        with pytest.raises(ValueError, match="unreadable amount"):
            parse_money(bad)


def test_short_rows_are_padded_long_rows_reported_and_tabs_and_bom_understood() -> None:
    text = (
        "\ufeffHITId\tAssignmentId\tWorkerId\tAssignmentStatus\tAnswer.x\tApprove\tReject\r\n"
        "H\tA1\tW\tSubmitted\tcat\r\nH\tA2\tW2\tSubmitted\tdog\t\t\t\textra"
    )
    parsed = read_results(text.encode())
    assert [r.assignment_id for r in parsed.rows] == ["A1"] and parsed.rows[0].answers == {"x": "cat"}
    assert parsed.rows[0].status == "submitted"
    assert parsed.problems == [(3, "", "9 fields but the header has 7")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"HITId,AssignmentId,WorkerId,Input.a\nH,A,W,1\n", "no Answer"),
        (b"HITId,AssignmentId,WorkerId,Answer.a,Answer.a\n", "repeats the column"),
        (b"HITId,AssignmentId,WorkerId,AssignmentStatus,Answer.a\n", "no rows"),
    ],
)
def test_files_that_cannot_be_results_raise_one_sentence(data: bytes, message: str) -> None:
    with pytest.raises(ResultsFileError, match=message):
        read_results(data)
