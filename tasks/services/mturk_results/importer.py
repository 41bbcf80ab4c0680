"""``import_mturk_results``: a requester-UI results CSV becomes workers, Hits, assignments and answers.

Items come from the ``Input.*`` columns (one per HIT). An ``Input.external_id`` or ``Input.id`` column names
it; else its content does (``imports.content_id`` of the ``Input.*`` cells, numerals canonical, as the item
import names an input file's rows), so HITs of two batches with equal inputs answer one item, and one the job
holds with equal content (an item imported before content ids, named by its HITId) keeps its id; a row without
inputs names its HITId. The label comes from the job's answer field (see ``schema``), and every ``Answer.*``
field plus the HIT columns we have no field for are kept verbatim in ``RawResult`` for the export. The
work goes through ``record_external_assignments`` (upsert on MTurk's ids, gold graded), so importing the
same file again changes nothing. What the file's ``Approved`` rows cost (reward and MTurk's fee) is booked in
the ledger by ``mturk_history_costs``, once per assignment whichever path saw it first; a ``Submitted`` row
past its AutoApprovalTime was approved (and paid) by MTurk, and counts as ``Approved`` (see ``reader``). A later
download restates what MTurk changed: a review (a rejection overridden to approved is booked; an approval now
rejected has its cost reversed, never deleted) and a changed answer (the Answer and its RawResult take the new
value), each listed in the result (``reviews_restated``, ``answers_updated``, ``costs_reversed``). Scoring and
consensus then run on the whole job when the file brought new work, new statuses or new answers.

A review is restated only by a later one, judged by its ApprovalTime/RejectionTime, so an older download never
undoes a newer review. A row restating a review without that time (the cell empty, or the file without the
column) is taken as a first import takes a reviewed row without a time: with the file's status, as of the
import. Its review time is the import time, its charge (when approved) is dated then, and its
``reviews_restated`` entry carries a ``note`` saying so (see ``reviews``). Work of a HIT published from here
reviewed by the file (first seen or restated) has the slot and budget consequences of the same review made
here, listed in ``budget`` (``reviews.settle_live_reviews``); imported history stays outside the budget.

A damaged file (see ``reader``: unreadable CSV, a row cut short or too long, a row without its ids, one
AssignmentId on two lines with different content) is refused whole, naming its first damaged line, unless
``skip_bad_rows`` asks for the rest to be imported with the damaged rows reported in ``rows_skipped``. Rows
that are whole but cannot be taken (unknown status, unreadable time, no label, work already in another job)
are always reported and skipped.

Answers with a label the job lacks (a later batch showing a value the first never did) extend the label set
of a job that holds imported MTurk history only (``_labels_fixed_because`` says when); the new labels are
appended, audited as ``job.labels_extended`` and listed in ``labels_added``. Any other job's label set is in
use, and a new job's was given as ``labels``: the file is refused whole, naming the labels, unless
``skip_unknown_labels`` asks for the other rows to be imported and these reported in ``rows_skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import AssignmentState, Hit, Item, Job, JobState, TaskKind
from tasks.services.collection import validate_value
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ServiceError, SubmissionRefused
from tasks.services.external_work import ExternalAssignment, owned_by_other_jobs, record_external_assignments
from tasks.services.jobs import create_job
from tasks.services.mturk_history_costs import (
    ImportedApproval,
    book_imported_assignment_costs,
    check_usd_job,
    lock_live_hits,
    reverse_rejected_assignment_costs,
)
from tasks.services.mturk_results.items import MARKETPLACE, write_items, write_raw_results
from tasks.services.mturk_results.items import item_ids as find_item_ids
from tasks.services.mturk_results.reader import ResultsFile, ResultsFileError, read_results
from tasks.services.mturk_results.reviews import settle_live_reviews, untimed_restatements
from tasks.services.mturk_results.schema import MAX_INFERRED_LABELS, LabelSchema, SchemaError, infer_schema
from tasks.services.quality import refresh_speed_scores
from workforce.audit import Actor, record_audit_event

MAX_REDUNDANCY = 50
REVIEWED = (AssignmentState.APPROVED, AssignmentState.REJECTED)


@dataclass
class MTurkImportResult:
    job: int
    job_created: bool
    rows: int
    assignments_created: int = 0
    assignments_updated: int = 0
    workers_created: int = 0
    items_created: int = 0
    hits_created: int = 0
    answers_created: int = 0
    assignments_auto_approved: int = 0  # Submitted rows past their AutoApprovalTime, taken as approved
    raw_results_refreshed: int = 0
    label_field: str = ""
    labels_added: list[str] = field(default_factory=list)
    rows_skipped: list[dict[str, Any]] = field(default_factory=list)
    costs: dict[str, Any] = field(default_factory=dict)
    reviews_restated: list[dict[str, Any]] = field(default_factory=list)  # line, assignment, before, after
    answers_updated: list[dict[str, Any]] = field(default_factory=list)  # line, assignment, item, before, after
    costs_reversed: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)  # live work's slots and reservation (``reviews``)
    consensus: dict[str, Any] | None = None
    workers_scored: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _new_job(*, name: str, parsed: ResultsFile, schema: LabelSchema, actor: Actor) -> Job:
    first = parsed.rows[0]
    image = "image_url" in parsed.input_columns
    kinds = {
        (False, False): TaskKind.TEXT_CLASSIFICATION,
        (False, True): TaskKind.TEXT_MULTILABEL,
        (True, False): TaskKind.IMAGE_CLASSIFICATION,
        (True, True): TaskKind.IMAGE_MULTILABEL,
    }
    wanted = max((row.max_assignments or 1) for row in parsed.rows)
    job = create_job(
        name=name,
        task_kind=kinds[(image, schema.multilabel)],
        labels=list(schema.labels),
        actor=actor,
        redundancy=max(1, min(wanted, MAX_REDUNDANCY)),
        reward=first.reward if first.reward is not None else Decimal("0.05"),
        description=first.columns.get("Description", "")[:2000],
    )
    job.marketplace = MARKETPLACE
    job.answer_field = schema.field
    job.save(update_fields=["marketplace", "answer_field", "updated_at"])
    return job


def _damage_sentence(filename: str, damage: list[tuple[int, str, str]]) -> str:
    line, _, reason = damage[0]
    others = [str(other) for other, _, _ in damage[1:]]
    more = ""
    if others:
        shown = ", ".join(others[:10]) + (", …" if len(others) > 10 else "")
        more = f" ({len(others)} more damaged line(s): {shown})"
    return (
        f"{filename} looks damaged (line {line}: {reason}){more}, so nothing was imported; "
        "download the file again, or import the other rows with --skip-bad-rows."
    )


def _labels_fixed_because(job: Job) -> str:
    """Why ``job``'s label set cannot grow to fit imported answers; empty when it holds imported MTurk history
    only: an MTurk job of a labeling kind, still a draft never published (labels are editable until then, and
    no worker has been shown them), with Hits that are all MTurk HITs an import brought (none built for our
    pool or posted to MTurk by us; a job with none has a label set somebody chose)."""
    if job.is_shapes:
        return "it is a drawing job"
    if job.state != JobState.DRAFT or job.published_at is not None:
        return f"it has been published (it is {job.state} now), so workers use its label set"
    if job.marketplace != MARKETPLACE:
        return f"its marketplace is {job.marketplace}, not {MARKETPLACE}, so its labels were set by hand"
    hits = Hit.objects.filter(job=job)
    if hits.filter(~Q(marketplace=MARKETPLACE) | Q(external_id__isnull=True) | Q(mturk__isnull=False)).exists():
        return "it has Hits of its own besides imported MTurk HITs"
    if not hits.exists():
        return "it holds no imported results yet, so its labels were set by hand"
    return ""


def _fit_labels(
    *, job: Job, schema: LabelSchema, parsed: ResultsFile, filename: str, actor: Actor, skip_unknown_labels: bool
) -> tuple[Job, LabelSchema, list[str]]:
    """The job (locked and fresh when its labels were read again) and schema to import with, and the labels
    added: answers with labels the job lacks extend a job of imported history only, or refuse the file."""
    answers = [row.answers for row in parsed.rows]
    if not schema.unknown_labels(answers):
        return job, schema, []
    job = Job.objects.select_for_update().get(pk=job.pk)  # a concurrent import or publish waits for this one
    before = [str(label) for label in job.labels]
    schema = schema.with_labels(before)
    unknown = schema.unknown_labels(answers)
    if not unknown:
        return job, schema, []
    shown = ", ".join(repr(label) for label in unknown[:10]) + (
        f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
    )
    reason = _labels_fixed_because(job)
    if reason:
        if skip_unknown_labels:
            return job, schema, []  # the rows are skipped one by one, each with its reason
        how = (
            "add them to the job's labels (editable while it is a draft) and import again"
            if job.state == JobState.DRAFT and job.published_at is None
            else "import the file into a new job (--new-job, with --labels listing every label)"
        )
        raise ServiceError(
            f"{filename} answers Answer.{schema.field} with label(s) {shown} that job {job.pk} does not have, and its "
            f"label set cannot grow: {reason}. Nothing was imported; {how}, or pass --skip-unknown-labels to import "
            "the other rows and list these in rows_skipped."
        )
    after = before + unknown
    if len(after) > MAX_INFERRED_LABELS:
        raise ServiceError(
            f"{filename} would give job {job.pk} {len(after)} labels (it answers Answer.{schema.field} with {shown}), "
            f"more than {MAX_INFERRED_LABELS}, so the field looks like free text, not a label; nothing was imported."
        )
    job.labels = after
    job.save(update_fields=["labels", "updated_at"])
    record_audit_event(
        actor=actor,
        action="job.labels_extended",
        object_type="job",
        object_id=job.pk,
        before={"labels": before},
        after={"labels": after, "added": unknown, "file": filename, "answer_field": schema.field},
    )
    return job, schema.with_labels(after), unknown


def _refuse_labels_outside_given(*, schema: LabelSchema, parsed: ResultsFile, filename: str) -> None:
    """A new job's ``labels`` were given: answers with others refuse the file (``skip_unknown_labels``: skip
    them)."""
    unknown = schema.unknown_labels(row.answers for row in parsed.rows)
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:10]) + (" and more" if len(unknown) > 10 else "")
        raise ServiceError(
            f"{filename} answers Answer.{schema.field} with label(s) {shown} that --labels does not list, so "
            "nothing was imported; add them to --labels, or pass --skip-unknown-labels to import the other rows "
            "and list these in rows_skipped."
        )


def import_mturk_results(
    *,
    data: bytes,
    filename: str,
    actor: Actor,
    job: Job | None = None,
    new_job_name: str = "",
    answer_field: str = "",
    labels: list[str] | None = None,
    skip_bad_rows: bool = False,
    skip_unknown_labels: bool = False,
) -> MTurkImportResult:
    """Import one results file into ``job``, or into a new job called ``new_job_name``; see the module doc."""
    if (job is None) == (not new_job_name.strip()):
        raise ServiceError("Give either an existing job or a name for a new job.")
    now = timezone.now()  # the import time: what auto-approval is judged by, and untimed restatements' time
    try:
        parsed = read_results(data, now=now)
    except ResultsFileError as exc:
        raise ServiceError(str(exc)) from exc
    if parsed.damage and not skip_bad_rows:
        raise ServiceError(_damage_sentence(filename, parsed.damage))
    skip: dict[int, str] = {line: reason for line, _, reason in parsed.problems}
    if not parsed.rows:
        raise ServiceError(f"No row of {filename} can be imported; the first problem: {parsed.problems[0][2]}.")
    try:
        schema = infer_schema(
            columns=parsed.answer_columns,
            rows=[row.answers for row in parsed.rows],
            field=answer_field or (job.answer_field if job is not None else ""),
            job_labels=job.labels if job is not None else None,
            job_multilabel=job.is_multilabel if job is not None else None,
            labels=labels,
        )
    except SchemaError as exc:
        raise ServiceError(str(exc)) from exc

    if job is not None:
        check_usd_job(job)
    with transaction.atomic():
        created = job is None
        labels_added: list[str] = []
        if job is None:
            if not skip_unknown_labels:
                _refuse_labels_outside_given(schema=schema, parsed=parsed, filename=filename)
            job = _new_job(name=new_job_name.strip(), parsed=parsed, schema=schema, actor=actor)
        else:
            job, schema, labels_added = _fit_labels(
                job=job,
                schema=schema,
                parsed=parsed,
                filename=filename,
                actor=actor,
                skip_unknown_labels=skip_unknown_labels,
            )
            if not job.answer_field:
                job.answer_field = schema.field
                job.save(update_fields=["answer_field", "updated_at"])
        result = MTurkImportResult(
            job=job.pk, job_created=created, rows=parsed.total_rows, label_field=schema.field, labels_added=labels_added
        )
        stored = dict(Item.objects.filter(job=job).values_list("external_id", "payload_hash"))
        item_ids = find_item_ids(job, parsed.rows, stored)
        records: dict[int, ExternalAssignment] = {}
        for row in parsed.rows:
            value, problem = schema.value(row.answers)
            if problem or value is None:
                skip.setdefault(row.line, problem or f"Answer.{schema.field} holds no label")
                continue
            try:
                value = validate_value(job, value)
            except SubmissionRefused as refusal:  # checked before any item is written for the row
                skip.setdefault(row.line, str(refusal).rstrip("."))
                continue
            records[row.line] = ExternalAssignment(
                external_assignment_id=row.assignment_id,
                external_hit_id=row.hit_id,
                external_worker_id=row.worker_id,
                answers={item_ids[row.line]: value},
                state=row.status,
                accepted_at=row.accepted_at,
                submitted_at=row.submitted_at,
                reviewed_at=row.reviewed_at,
                reward=row.reward,
            )
        by_line = {row.line: row for row in parsed.rows}
        untimed = untimed_restatements(job=job, rows=[by_line[line] for line in records], now=now)
        for line, review in untimed.items():
            records[line] = replace(records[line], reviewed_at=review.reviewed_at)
        # Work already recorded in another job is reported before any item is written for it.
        elsewhere = owned_by_other_jobs(job, MARKETPLACE, list(records.values()))
        for line, record in records.items():
            if record.external_assignment_id in elsewhere:
                skip.setdefault(line, elsewhere[record.external_assignment_id])
        # The lock order: the reviewed Hits published from here, then the job row, then the audit head.
        live_hits = lock_live_hits(
            external_hit_ids=[
                r.external_hit_id for line, r in records.items() if line not in skip and r.state in REVIEWED
            ]
        )
        if live_hits:
            list(Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True))
        result.items_created = write_items(job, [r for r in parsed.rows if r.line not in skip], skip, item_ids, stored)
        lines = {record.external_assignment_id: line for line, record in records.items() if line not in skip}
        approved = [line for line in lines.values() if records[line].state == AssignmentState.APPROVED]
        recorded = record_external_assignments(
            job=job,
            marketplace=MARKETPLACE,
            records=[records[line] for line in lines.values()],
            actor=actor,
            source=filename,
            restate=True,
        )
        for assignment_id, reason in recorded.skipped:
            skip[lines[assignment_id]] = reason
        if created and not recorded.assignments_created:
            first = min(skip.items(), default=(0, "no row holds new work"))
            raise ServiceError(
                f"No row of {filename} could be imported, so no job was created (line {first[0]}: {first[1]})."
            )
        result.costs = book_imported_assignment_costs(
            job=job,
            rows=[
                ImportedApproval(
                    line,
                    by_line[line].assignment_id,
                    by_line[line].reward,
                    by_line[line].max_assignments,
                    records[line].reviewed_at,
                )
                for line in approved
                if line not in skip
            ],
            source=filename,
            actor=actor,
        ).as_dict()
        rejected = [
            a for a, line in lines.items() if line not in skip and records[line].state == AssignmentState.REJECTED
        ]
        reversed_costs = reverse_rejected_assignment_costs(
            job=job, assignment_ids=rejected, source=filename, actor=actor
        )
        result.costs_reversed = reversed_costs.as_dict()
        result.budget = settle_live_reviews(
            job=job,
            live_hits=live_hits,
            rejected=rejected,
            reversed_entries=reversed_costs.entries,
            live_booked=result.costs["live_assignments_booked"],
            actor=actor,
            now=now,
        ).as_dict()
        result.reviews_restated = [
            {"line": lines[a], "assignment": a, "before": before, "after": after}
            | ({"note": untimed[lines[a]].note} if lines[a] in untimed else {})
            for a, before, after in recorded.reviews_restated
        ]
        result.answers_updated = [
            {"line": lines[a], "assignment": a, "item": item_ids[lines[a]], "before": before, "after": after}
            for a, _, before, after in recorded.answers_restated
        ]
        result.assignments_auto_approved = sum(1 for row in parsed.rows if row.auto_approved and row.line not in skip)
        result.raw_results_refreshed = write_raw_results(job, [r for r in parsed.rows if r.line not in skip], filename)
        result.assignments_created = recorded.assignments_created
        result.assignments_updated = recorded.assignments_updated
        result.workers_created = recorded.workers_created
        result.hits_created = recorded.hits_created
        result.answers_created = recorded.answers_created
        ids = {line: assignment for line, assignment, _ in parsed.problems}
        ids.update({row.line: row.assignment_id for row in parsed.rows})
        result.rows_skipped = [
            {"line": line, "assignment": ids.get(line, ""), "reason": reason} for line, reason in sorted(skip.items())
        ]
        if (
            result.assignments_created
            or result.assignments_updated
            or result.items_created
            or result.raw_results_refreshed
            or result.answers_updated
        ):
            _audit(actor=actor, job=job, filename=filename, result=result)
    if result.assignments_created or result.assignments_updated or result.answers_updated:
        _score(job=job, result=result, actor=actor)
    return result


def _audit(*, actor: Actor, job: Job, filename: str, result: MTurkImportResult) -> None:
    record_audit_event(
        actor=actor,
        action="mturk_results.imported",
        object_type="job",
        object_id=job.pk,
        after={
            "file": filename,
            "rows": result.rows,
            "label_field": result.label_field,
            "assignments_created": result.assignments_created,
            "items_created": result.items_created,
            "raw_results_refreshed": result.raw_results_refreshed,
            "reviews_restated": len(result.reviews_restated),
            "reviews_restated_as_of_import": sum(1 for r in result.reviews_restated if "note" in r),
            "answers_updated": len(result.answers_updated),
            "labels_added": result.labels_added,
            "rows_skipped": len(result.rows_skipped),
        },
    )


def _score(*, job: Job, result: MTurkImportResult, actor: Actor) -> None:
    """Speed scores and consensus (with each worker's agreement) over the job's answers, imported or not."""
    result.workers_scored = refresh_speed_scores(job=job, now=timezone.now())
    if not job.answers.filter(item__is_gold=False).exists():
        return
    try:
        consensus = compute_consensus(job=job, actor=actor)
    except ServiceError as exc:
        result.consensus = {"error": str(exc)}
        return
    result.consensus = {
        "method": consensus.method,
        "items": consensus.items,
        "answers": consensus.answers,
        "mean_confidence": consensus.mean_confidence,
    }
