"""The fair-pay check: a job's median effective hourly pay against the configured minimum."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from tasks.models import Job
from tasks.reports.selectors import WorkerPay, list_worker_hourly_pay

CENT = Decimal("0.01")


def configured_minimum() -> Decimal | None:
    value = getattr(settings, "FAIR_PAY_MIN_HOURLY", None)
    return Decimal(str(value)) if value not in (None, "") else None


@dataclass(frozen=True)
class FairPay:
    minimum: Decimal | None
    median_hourly: Decimal | None
    workers: list[WorkerPay]
    below: list[WorkerPay]

    @property
    def ok(self) -> bool:
        """True unless a minimum is set and the job's median effective hourly pay falls below it."""
        return self.minimum is None or self.median_hourly is None or self.median_hourly >= self.minimum

    @property
    def warning(self) -> str:
        if self.ok:
            return ""
        return (
            f"Median effective pay is {self.median_hourly}/hour, below the {self.minimum}/hour minimum; "
            f"{len(self.below)} worker(s) earn less than the minimum."
        )


def get_fair_pay(job: Job, *, minimum: Decimal | None = None) -> FairPay:
    minimum = minimum if minimum is not None else configured_minimum()
    workers = list_worker_hourly_pay(job)
    rates = [w.hourly for w in workers if w.hourly is not None]
    median = Decimal(statistics.median(rates)).quantize(CENT, ROUND_HALF_UP) if rates else None
    below = [w for w in workers if minimum is not None and w.hourly is not None and w.hourly < minimum]
    return FairPay(minimum=minimum, median_hourly=median, workers=workers, below=below)
