"""Percentiles and the printed summary."""

from __future__ import annotations

import math
import statistics
from typing import Any


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))  # nearest rank
    return round(ordered[index] * 1000, 1)


def latency_block(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": pct(values, 50),
        "p95_ms": pct(values, 95),
        "p99_ms": pct(values, 99),
        "max_ms": round(max(values) * 1000, 1) if values else None,
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else None,
    }


def print_summary(s: dict[str, Any]) -> None:
    c = s["config"]
    g = c["gunicorn"]
    print(
        f"job {c['job_id']} ({c['items']} items, redundancy {c['redundancy']}), {c['workers']} workers, "
        f"{s['elapsed_s']} s, flow={c['flow']}"
        + (f", gunicorn {g['class']} w={g['workers']} t={g['threads']}" if g else "")
        + (", redis sessions" if c["redis_sessions"] else "")
        + (f", paced to {c['rate']}/s" if c["rate"] else "")
    )
    if s["job_setup"]["created"]:
        print(
            f"  job import {s['job_setup']['import_seconds']} s ({s['job_setup']['import_output']}), "
            f"publish {s['job_setup']['publish_seconds']} s"
        )
    print(
        f"  answers/s {s['answers_per_s']}  submits/s {s['submits_per_s']}  requests/s {s['requests_per_s']}  "
        f"(answers in DB {s['answers_db']}, client saw {s['answers_client']})"
    )
    print(
        f"  errors {s['errors']} {s['error_kinds'] or ''}  refused {s['refused_submits']}  "
        f"no-work {s['no_work_redirects']}  reconnects {s['reconnects']}"
    )
    for kind in ("submit", "page", "start", "overall"):
        b = s["latency"][kind]
        print(
            f"  {kind:8s} n={b['count']:6d}  p50 {b['p50_ms']} ms  p95 {b['p95_ms']} ms  p99 {b['p99_ms']} ms  "
            f"max {b['max_ms']} ms"
        )
    print(f"  cpu seconds: {s['cpu_seconds']}")
    print(f"  cpu ms per answer: {s['cpu_ms_per_answer']}")
    for key, r in s["rules"].items():
        print(f"  rule {key}: {'OK' if r['ok'] else 'FAIL'} ({r['violations']} violations) - {r['rule']}")
    t = s["target"]
    print(f"  target >= {t['answers_per_s']} answers/s with p99 < {t['p99_ms']} ms: {'MET' if t['met'] else 'MISSED'}")
