"""The pool's rules, checked with SQL on the bench job after a run."""

from __future__ import annotations

from typing import Any

DONE = "('submitted', 'approved', 'rejected')"
LIVE = "('accepted', 'submitted', 'approved', 'rejected')"
RULES: dict[str, tuple[str, str]] = {
    "a_no_worker_repeats_an_item": (
        "no worker has two assignments whose Hits share an item",
        """SELECT count(*) FROM (
             SELECT a.worker_id, hi.item_id FROM tasks_assignment a
             JOIN tasks_hititem hi ON hi.hit_id = a.hit_id
             WHERE a.job_id = %(job)s GROUP BY a.worker_id, hi.item_id HAVING count(*) > 1) bad""",
    ),
    "b_submitted_within_wanted_and_counter_exact": (
        "no Hit has more submitted assignments than wanted; hit.assignments_submitted equals the count",
        f"""SELECT count(*) FROM tasks_hit h LEFT JOIN (
              SELECT hit_id, count(*) AS n FROM tasks_assignment
              WHERE job_id = %(job)s AND state IN {DONE} GROUP BY hit_id) s ON s.hit_id = h.id
            WHERE h.job_id = %(job)s
              AND (coalesce(s.n, 0) > h.assignments_wanted OR coalesce(s.n, 0) <> h.assignments_submitted)""",
    ),
    "c_no_submit_after_lease_expiry": (
        "no assignment was submitted after its lease_expires_at",
        """SELECT count(*) FROM tasks_assignment
           WHERE job_id = %(job)s AND submitted_at IS NOT NULL AND submitted_at > lease_expires_at""",
    ),
    "d_answers_match_submitted_items": (
        "answers count equals the items of submitted assignments",
        f"""SELECT abs((SELECT count(*) FROM tasks_answer WHERE job_id = %(job)s)
                   - (SELECT count(*) FROM tasks_assignment a JOIN tasks_hititem hi ON hi.hit_id = a.hit_id
                      WHERE a.job_id = %(job)s AND a.state IN {DONE}))""",
    ),
    "e_slots_taken_exact": (
        "hit.slots_taken equals its live assignments and never exceeds assignments_wanted",
        f"""SELECT count(*) FROM tasks_hit h LEFT JOIN (
              SELECT hit_id, count(*) AS n FROM tasks_assignment
              WHERE job_id = %(job)s AND state IN {LIVE} GROUP BY hit_id) s ON s.hit_id = h.id
            WHERE h.job_id = %(job)s
              AND (coalesce(s.n, 0) <> h.slots_taken OR h.slots_taken > h.assignments_wanted)""",
    ),
}


def check_rules(job_id: int) -> dict[str, dict[str, Any]]:
    from django.db import connection

    results: dict[str, dict[str, Any]] = {}
    with connection.cursor() as cur:
        for key, (text, query) in RULES.items():
            cur.execute(query, {"job": job_id})
            bad = int(cur.fetchone()[0])
            results[key] = {"rule": text, "violations": bad, "ok": bad == 0}
    return results


def db_counts(job_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT (SELECT count(*) FROM tasks_answer WHERE job_id = %(job)s),
                       (SELECT count(*) FROM tasks_assignment WHERE job_id = %(job)s AND state IN {DONE}),
                       (SELECT count(*) FROM tasks_assignment WHERE job_id = %(job)s)""",
            {"job": job_id},
        )
        answers, submitted, assignments = cur.fetchone()
    return {"answers": answers, "submitted_assignments": submitted, "assignments": assignments}
