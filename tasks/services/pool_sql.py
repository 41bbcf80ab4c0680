"""The internal pool's PostgreSQL claim: one statement that chooses, claims and leases a Hit, and the
advisory lock that serialises one worker's claims on one job (``pool._claim_open_hit_postgres`` runs both)."""

from __future__ import annotations

import hashlib

from workforce.audit import PENDING_EVENT_INSERT

# PostgreSQL: choose, claim and lease in one statement (one round trip under load).
# The (priority, id) order is served only by the partial index ``hit_open_idx``, so the scan starts at the
# job's first open Hit (ordering by id alone lets the planner walk the primary key past finished Hits);
# ``SKIP LOCKED`` lets concurrent workers pass Hits that another transaction is claiming.
CLAIM_SQL_TEMPLATE = """
WITH current_lease AS (
    SELECT id, uuid, hit_id, accepted_at, lease_expires_at FROM tasks_assignment
    WHERE job_id = %(job)s AND worker_id = %(worker)s AND state = 'accepted' AND lease_expires_at > %(now)s
    ORDER BY id LIMIT 1
), candidate AS (
    SELECT h.id FROM tasks_hit h
    WHERE h.job_id = %(job)s AND h.state = 'open' AND h.is_gold = {gold}
      AND h.gold_slots <= %(max_slots)s  -- gold places this worker's unseen gold can fill
      AND NOT EXISTS (SELECT 1 FROM current_lease)
      AND NOT EXISTS (
          SELECT 1 FROM tasks_jobblock b
          WHERE b.job_id = %(job)s AND b.worker_id = %(worker)s AND b.lifted_at IS NULL
      )
      -- a scalar subquery is probed per candidate through the (worker, hit) unique index; an anti-join
      -- could instead scan the worker's whole history
      AND (SELECT a.id FROM tasks_assignment a WHERE a.worker_id = %(worker)s AND a.hit_id = h.id) IS NULL
    ORDER BY {order} LIMIT 1
    FOR UPDATE OF h SKIP LOCKED
), claimed AS (
    UPDATE tasks_hit h
    SET slots_taken = h.slots_taken + 1,
        state = CASE WHEN h.slots_taken + 1 >= h.assignments_wanted THEN 'full' ELSE 'open' END
    FROM candidate c
    WHERE h.id = c.id AND h.state = 'open' AND h.slots_taken < h.assignments_wanted
    RETURNING h.id, h.gold_slots
), inserted AS (
    INSERT INTO tasks_assignment
        (uuid, hit_id, job_id, worker_id, state, marketplace, accepted_at, lease_expires_at, reward,
         instructions_version)
    SELECT %(uuid)s, claimed.id, %(job)s, %(worker)s, 'accepted', %(marketplace)s, %(now)s, %(expires)s, %(reward)s,
        %(instructions_version)s
    FROM claimed
    ON CONFLICT (worker_id, hit_id) DO NOTHING
    RETURNING id, uuid, hit_id, accepted_at, lease_expires_at
), audited AS (
    {audit_insert}
    SELECT %(now)s, %(audit_actor_kind)s, %(audit_actor_id)s, %(audit_actor_label)s, 'assignment.accepted',
        'assignment', inserted.id::text, '{}'::jsonb,
        jsonb_build_object('state', 'accepted', 'job', %(job)s::bigint, 'hit', inserted.hit_id,
                           'lease_expires_at', %(expires_iso)s::text),
        '', %(audit_request_id)s
    FROM inserted
), lease AS (
    SELECT * FROM current_lease UNION ALL SELECT * FROM inserted
)
SELECT (SELECT count(*) FROM candidate), lease.id, lease.uuid, lease.hit_id, lease.accepted_at, lease.lease_expires_at,
    (SELECT gold_slots FROM claimed)
FROM (SELECT 1) AS one LEFT JOIN lease ON true
"""
# Literal flags, not parameters, so the planner matches each query to its partial index.
# The new lease's audit event (``audited``) is inserted by the same statement, unchained (workforce.audit).
CLAIM_SQL = {
    gold: CLAIM_SQL_TEMPLATE.replace("{gold}", str(gold).lower())
    .replace("{order}", "h.id" if gold else "h.priority, h.id")
    .replace("{audit_insert}", PENDING_EVENT_INSERT)
    for gold in (False, True)
}


LEASE_LOCK_SQL = "SELECT pg_advisory_xact_lock(%(key)s)"


def lease_lock_key(job_id: int, worker_id: int) -> int:
    """The advisory lock key of one worker's claims on one job: a signed 64-bit digest (no other lock of ours
    uses advisory keys, and a collision only makes two claims wait for each other)."""
    digest = hashlib.blake2b(f"lease:{job_id}:{worker_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
