"""Extra assignments MTurk holds that the ledger never booked: a lost extension, adopted.

CreateAdditionalAssignmentsForHIT takes reward and fee for every added assignment at once. When the
transaction that books them rolls back after MTurk has answered (a crash, a lost database connection),
MTurk's ``MaxAssignments`` for the HIT is above our ``Hit.assignments_wanted`` and the ledger says nothing
of that money. ``adopt_lost_extension`` books the difference as the extension would have:
``assignments_wanted`` raised to ``MaxAssignments`` (a full or complete Hit open again), one committed
reward and fee row per slot under ``commit_hit_slots``'s keys (``mturk:hit:<uuid>:slot:<n>:<kind>``, so a
slot already booked is never booked twice), the fee at the rate of the HIT's original size
(``additional_assignments_cost``), the job's reservation raised to what it has spent (a cap that refuses
does not undo what MTurk took), and an ``mturk.extension_adopted`` audit event. It runs under the Hit's row
lock and is idempotent. ``extend_mturk_hit`` calls it before asking for more; the hourly reconcile calls it
for every HIT of ours that MTurk lists with more assignments than we want.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, Value, When

from tasks.models import CostEntry, CostKind, Hit, HitState, MTurkHit
from tasks.services.budget import true_up_spent
from tasks.services.mturk_common import commit_hit_slots, slot_key
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk import RemoteHit
from workforce.marketplaces.mturk_fees import additional_assignments_cost


@dataclass(frozen=True)
class Adoption:
    """``wanted``: the Hit's ``assignments_wanted`` afterwards; ``slots``: slots this call booked."""

    wanted: int
    slots: int = 0


def adopt_lost_extension(*, hit: Hit, remote: RemoteHit, actor: Actor) -> Adoption:
    """Book the assignments MTurk holds for ``hit`` (``remote``, from GetHIT or ListHITs) beyond the ones we
    want (see the module docstring). A HIT that is not ``hit``'s recorded one changes nothing."""
    with transaction.atomic():
        hit = Hit.objects.select_for_update().get(pk=hit.pk)
        wanted = hit.assignments_wanted
        info = MTurkHit.objects.filter(hit_id=hit.pk, published_at__isnull=False).first()
        if info is None or hit.external_id != remote.hit_id or remote.max_assignments <= wanted:
            return Adoption(wanted=wanted)
        slots = range(wanted, remote.max_assignments)
        booked = CostEntry.objects.filter(
            idempotency_key__in=[slot_key(hit, n, CostKind.REWARD) for n in slots]
        ).count()  # slots of a HIT published with more assignments than its Hit wanted are booked already
        new = len(slots) - booked
        per_slot = additional_assignments_cost(
            info.reward, original_max_assignments=info.max_assignments, additional=1, masters=info.masters
        )
        Hit.objects.filter(pk=hit.pk).update(
            assignments_wanted=remote.max_assignments,
            state=Case(
                When(state__in=[HitState.FULL, HitState.COMPLETE], then=Value(HitState.OPEN)), default=F("state")
            ),
        )
        commit_hit_slots(hit=hit, reward=info.reward, fee=per_slot.fees, slots=slots, reference=remote.hit_id)
        after: dict[str, object] = {
            "assignments_wanted": remote.max_assignments,
            "slots": new,
            "amount": str(per_slot.total * new),
            "hit_id": remote.hit_id,
            "source": "adopted from MTurk: an extension MTurk made that was never booked here",
        }
        # MTurk holds the money already: the booking stands whatever the caps say (as for a resumed HIT).
        if new and (refused := true_up_spent(job=hit.job, actor=actor)):
            after["reservation_refused"] = refused
        record_audit_event(
            actor=actor,
            action="mturk.extension_adopted",
            object_type="hit",
            object_id=hit.pk,
            before={"assignments_wanted": wanted},
            after=after,
        )
    return Adoption(wanted=remote.max_assignments, slots=new)
