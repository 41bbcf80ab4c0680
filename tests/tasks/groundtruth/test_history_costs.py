"""Ground Truth history imported into a new job books its costs when asked (``--book-costs``): the service
charge per labeled object at the tier table and, with ``--task-price``, the public workforce's price per
worker response, each dated when the work was done; importing again books nothing more."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Max, Min, Sum

from tasks.models import CostEntry, CostKind
from tasks.services.budget import exact
from tests.tasks.groundtruth.data import IC_ARCHIVE, IC_MANIFEST

pytestmark = pytest.mark.django_db
BIRDS = ("--manifest", str(IC_MANIFEST), "--worker-responses", str(IC_ARCHIVE))


def run(*args: str) -> dict:
    out = StringIO()
    call_command("import_groundtruth", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_birds_history_books_302_object_charges_and_1510_task_prices_dated_april_2019() -> None:
    data = run("--new-job", "birds", *BIRDS, "--book-costs", "--task-price", "0.012")
    job = data["job"]["id"]
    rows = CostEntry.objects.filter(job_id=job)
    objects = rows.filter(kind=CostKind.GT_OBJECT_CHARGE)
    tasks = rows.filter(kind=CostKind.WORKFORCE_PRICE)
    assert objects.count() == 302 and tasks.count() == 1510
    assert exact(objects.aggregate(total=Sum("amount"))["total"]) == Decimal("0.08") * 302  # the first tier
    assert exact(tasks.aggregate(total=Sum("amount"))["total"]) == Decimal("0.012") * 1510  # SQLite sums floats
    assert not tasks.filter(assignment__isnull=True).exists()  # each price on its worker's assignment
    dates = rows.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert dates["first"].date() >= date(2019, 4, 18) and dates["last"].date() <= date(2019, 4, 19)
    assert run("--job", str(job), *BIRDS, "--book-costs", "--task-price", "0.012")["costs_booked"] == 0
    assert rows.count() == 302 + 1510


def test_without_the_flag_history_books_nothing_and_a_price_alone_is_refused() -> None:
    data = run("--new-job", "birds", *BIRDS)
    assert data["costs_booked"] == 0 and not CostEntry.objects.exists()
    with pytest.raises(CommandError, match="only used with the history's costs"):
        run("--job", str(data["job"]["id"]), *BIRDS, "--task-price", "0.012")
    with pytest.raises(CommandError, match="not a non-negative amount"):
        run("--job", str(data["job"]["id"]), *BIRDS, "--book-costs", "--task-price", "-1")
    objects_only = run("--job", str(data["job"]["id"]), *BIRDS, "--book-costs")
    assert objects_only["costs_booked"] == 302
    assert not CostEntry.objects.filter(kind=CostKind.WORKFORCE_PRICE).exists()
