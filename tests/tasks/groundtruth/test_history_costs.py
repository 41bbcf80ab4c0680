"""Ground Truth history imported into a new job books its costs when asked (``--book-costs``): the service
charge per labeled object at the tier table and, with ``--task-price``, the public workforce's price per
worker response, each dated when the work was done; importing again books nothing more."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Max, Min, Sum

from tasks.models import CostEntry, CostKind, GroundTruthLabel, Job
from tasks.services.budget import exact
from tasks.services.groundtruth.importing import import_groundtruth_output
from tests.conftest import SYSTEM
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


def test_a_second_labeling_job_over_some_of_the_objects_books_only_its_own_objects_and_responses(
    settings: Any,
) -> None:
    """Two labeling jobs' output in one job: each is priced on its own objects (tier positions counting from
    its first object) and its own worker responses, never on the other's."""
    settings.GROUNDTRUTH_OBJECT_PRICE_TIERS = [(2, "0.08"), (4, "0.04"), (None, "0.02")]
    first = run("--new-job", "birds", *BIRDS, "--book-costs")
    job = Job.objects.get(pk=first["job"]["id"])
    name = GroundTruthLabel.objects.filter(job=job).values_list("labeling_job_name", flat=True).first()
    assert name and name != "lj-b"
    assert CostEntry.objects.filter(idempotency_key__startswith=f"gt-object:{name}:").count() == 302
    subset = "\n".join(IC_MANIFEST.read_text().splitlines()[:50]) + "\n"
    second = import_groundtruth_output(
        manifest_text=subset,
        responses=[],
        actor=SYSTEM,
        job=job,
        labeling_job_name="lj-b",
        history_costs=True,
        task_price=Decimal("0.012"),
    )
    b_rows = CostEntry.objects.filter(idempotency_key__startswith="gt-object:lj-b:")
    assert second.costs_booked == b_rows.count() == 50
    assert exact(b_rows.aggregate(total=Sum("amount"))["total"]) == Decimal("0.08") * 2 + Decimal("0.04") * 2 + (
        Decimal("0.02") * 46
    )
    # the first labeling job's 1510 worker responses were imported without a task price; lj-b's price is not theirs
    assert not CostEntry.objects.filter(kind=CostKind.WORKFORCE_PRICE).exists()
