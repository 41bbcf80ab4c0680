"""A Job run as a SageMaker Ground Truth labeling job: configure, publish, follow, stop, collect.

``publish_labeling_job`` fixes the labeling job's name when the ``LabelingJob`` row is configured, so
every retry asks AWS for the same name and adopts the job a lost response had already created.
``follow_labeling_job`` (Celery beat) stores what ``describe_labeling_job`` says and collects what has
arrived; ``collect_labeling_job`` reads the S3 output through the same import service as the
``import_groundtruth`` command, which books the costs, grades gold, scores and runs consensus.

Budget: publishing reserves what the labeling job can cost at most (``estimated_cost`` of the objects
sent, capped by ``MaxLabeledObjects``) against the job's and the month's caps before AWS is asked, so
a refused reservation creates nothing. The keys start with the labeling job's name and what is already
held for it is counted, so a retry reserves nothing more and a retry after reconfiguring the draft reserves
(or releases) only the difference; a publish AWS refuses for good gives its reservation back. Once the
labeling job has ended (Completed, Stopped or Failed) and its results are in, the reservation is trued up
to what was booked and the rest is released (``settle_labeling_job_budget``).
"""

from __future__ import annotations

import logging
from decimal import ROUND_FLOOR, ROUND_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from tasks.models import BudgetReservation, Item, Job, JobState, LabelingJob, TaskKind, WorkforceKind
from tasks.services.budget import (
    AMOUNT_STEP,
    exact,
    job_spent,
    release_budget,
    reserve_budget,
    true_up_spent,
)
from tasks.services.collection import job_completed_event
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.costs import estimated_cost, object_price
from tasks.services.groundtruth.importing import ITEM_KEY, GroundTruthImportResult, import_groundtruth_output
from tasks.services.groundtruth.manifest_input import undecodable
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.groundtruth.connector import (
    GroundTruth,
    LabelingJobSpec,
    LabelingJobState,
    labeling_job_name,
)
from workforce.marketplaces.groundtruth.formats import GroundTruthFormatError, read_worker_responses

logger = logging.getLogger(__name__)
TERMINAL = ("Completed", "Failed", "Stopped")
DEFAULT_TASK_TYPES: dict[TaskKind, str] = {
    TaskKind.IMAGE_CLASSIFICATION: "ImageMultiClass",
    TaskKind.IMAGE_MULTILABEL: "ImageMultiClassMultiLabel",
    TaskKind.TEXT_CLASSIFICATION: "TextMultiClass",
    TaskKind.TEXT_MULTILABEL: "TextMultiClassMultiLabel",
}
LABEL_ATTRIBUTE = "crowdops-label"
_ELEMENTS = {  # built-in type -> the crowd HTML element its workers answer with
    "ImageMultiClass": "crowd-image-classifier",
    "ImageMultiClassMultiLabel": "crowd-image-classifier-multi-select",
    "TextMultiClass": "crowd-classifier",
    "TextMultiClassMultiLabel": "crowd-classifier-multi-select",
}


def _template(task_type: str, job: Job) -> str:
    """A worker page for a built-in classification type (custom task types bring their own)."""
    tag = _ELEMENTS.get(task_type)
    if tag is None:
        raise ServiceError(f"Task type {task_type} needs its own worker template (ui_template).")
    source = ' src="{{ task.input.taskObject | grant_read_access }}"' if job.is_image else ""
    text = "" if job.is_image else "{{ task.input.taskObject }}"
    return (
        '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>\n<crowd-form>\n'
        f'  <{tag} name="{tag}"{source} categories="{{{{ task.input.labels | to_json | escape }}}}" '
        f'header="{job.name}">\n'
        f"    <classification-target>{text}</classification-target>\n"
        f"    <full-instructions>{job.instructions}</full-instructions>\n"
        f"    <short-instructions>{job.description}</short-instructions>\n"
        f"  </{tag}>\n</crowd-form>\n"
    )


# The settings an ops manager chooses (the admin's form); the name, ARN and status are the service's and AWS's.
SETTINGS = (
    "task_type",
    "workforce",
    "workteam_arn",
    "task_price",
    "workers_per_object",
    "task_time_limit_seconds",
    "task_availability_seconds",
    "max_concurrent_tasks",
    "ui_template",
    "pre_annotation_lambda_arn",
    "consolidation_lambda_arn",
)


def configure_labeling_job(*, job: Job, actor: Actor, **fields: Any) -> LabelingJob:
    """Create or change a job's Ground Truth settings while it is a draft; fixes the labeling job name.

    Audited as ``groundtruth.configured`` with the settings that changed, before and after, as a job's edit is
    (a new labeling job's settings are all "after"), and the job's marketplace when it moves to Ground Truth; a
    change that changes nothing writes nothing."""
    with transaction.atomic():
        labeling_job = LabelingJob.objects.select_for_update().filter(job=job).first()
        if labeling_job is not None and labeling_job.arn:
            raise ServiceError(f"Job {job.pk} is already running as labeling job {labeling_job.name}.")
        created = labeling_job is None
        if labeling_job is None:
            labeling_job = LabelingJob(
                job=job,
                name=labeling_job_name(job.pk, job.name),
                task_type=DEFAULT_TASK_TYPES.get(TaskKind(job.task_kind), "custom"),
            )
        for name in fields:
            if name in ("job", "name", "arn", "status", "counters"):
                raise ServiceError(f"{name} cannot be configured.")
        audited = [*SETTINGS, *sorted(set(fields) - set(SETTINGS))]
        before = {} if created else _settings(labeling_job, audited)
        for name, value in fields.items():
            setattr(labeling_job, name, value)
        if labeling_job.workforce != WorkforceKind.PUBLIC:
            labeling_job.task_price = Decimal("0")
        try:
            labeling_job.full_clean(exclude=["job"])
        except Exception as exc:
            raise ServiceError(f"Invalid Ground Truth settings: {exc}") from exc
        after = _settings(labeling_job, audited)
        changed = [name for name in audited if created or before[name] != after[name]]
        marketplace = Job.objects.filter(pk=job.pk).values_list("marketplace", flat=True).get()
        if not changed and marketplace == "groundtruth":
            return labeling_job
        labeling_job.save()
        old = {name: before[name] for name in changed if name in before}
        new = {name: after[name] for name in changed}
        if marketplace != "groundtruth":
            Job.objects.filter(pk=job.pk).update(marketplace="groundtruth")
            old["marketplace"], new["marketplace"] = marketplace, "groundtruth"
        record_audit_event(
            actor=actor,
            action="groundtruth.configured",
            object_type="job",
            object_id=job.pk,
            before=old,
            after=new | {"labeling_job": labeling_job.name},
        )
    return labeling_job


def _settings(labeling_job: LabelingJob, names: list[str]) -> dict[str, Any]:
    """The labeling job's settings ``names`` as an audit event holds them (a price as its text, ``"0.01200"``)."""
    return {name: _audited(getattr(labeling_job, name, None)) for name in names}


def _audited(value: Any) -> Any:
    if isinstance(value, Decimal):  # compared as stored: 0.012 and 0.01200 are one price
        return str(value.quantize(Decimal("0.00001")))
    return value


def _objects(job: Job) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for external_id, payload in Item.objects.filter(job=job).order_by("id").values_list("external_id", "payload"):
        source_ref = payload.get("source-ref") or payload.get("image_url")
        if job.is_image:
            if not isinstance(source_ref, str) or not source_ref.startswith("s3://"):
                raise ServiceError(f"Item {external_id} has no s3:// image; Ground Truth reads images from S3 only.")
            objects.append({"source-ref": source_ref, ITEM_KEY: external_id})
        else:
            objects.append({"source": str(payload.get("text", "")), ITEM_KEY: external_id})
    return objects


def max_labeled_objects(labeling_job: LabelingJob, budget: Decimal | None) -> int | None:
    """How many objects ``budget`` pays for at the first tier's object charge plus the workforce price."""
    if budget is None:
        return None
    per_object = (
        object_price(1, settings.GROUNDTRUTH_OBJECT_PRICE_TIERS)
        + labeling_job.task_price * labeling_job.workers_per_object
    )
    return int((budget / per_object).to_integral_value(rounding=ROUND_FLOOR)) if per_object > 0 else None


def _objects_paid_for(objects: int, max_labeled: int | None) -> int:
    return objects if max_labeled is None else min(objects, max_labeled)


def publication_cost(*, job: Job, labeling_job: LabelingJob, budget: Decimal | None) -> Decimal:
    """What publishing ``job`` reserves: the most its labeling job can cost (read-only; for the check
    made when publication is requested, before the background task)."""
    objects = Item.objects.filter(job=job).count()
    return estimated_cost(labeling_job, _objects_paid_for(objects, max_labeled_objects(labeling_job, budget)))


def publish_labeling_job(
    *, job: Job, actor: Actor, connector: GroundTruth | None = None, budget: Decimal | None = None
) -> LabelingJob:
    """Create the job's labeling job (once: a job already published is returned as it is)."""
    labeling_job = LabelingJob.objects.filter(job=job).first()
    if labeling_job is None:
        raise ServiceError(f"Job {job.pk} has no Ground Truth settings; configure them first.")
    if labeling_job.arn:
        return labeling_job
    if job.state not in (JobState.DRAFT, JobState.PAUSED):
        raise ServiceError(f"Job {job.pk} is {job.state}; only a draft job can be published to Ground Truth.")
    custom = labeling_job.task_type == "custom"
    if custom and not labeling_job.ui_template:
        raise ServiceError("A custom Ground Truth task needs its worker template.")
    spec = LabelingJobSpec(
        name=labeling_job.name,
        label_attribute=LABEL_ATTRIBUTE,
        task_type=labeling_job.task_type,
        labels=[str(label) for label in job.labels],
        objects=_objects(job),
        workteam_arn=labeling_job.workteam_arn,
        title=job.name,
        description=job.description or job.name,
        workers_per_object=labeling_job.workers_per_object,
        task_time_limit_seconds=labeling_job.task_time_limit_seconds,
        task_availability_seconds=labeling_job.task_availability_seconds,
        max_concurrent_tasks=labeling_job.max_concurrent_tasks,
        public_task_price=labeling_job.task_price if labeling_job.workforce == WorkforceKind.PUBLIC else None,
        ui_template=labeling_job.ui_template or _template(labeling_job.task_type, job),
        pre_annotation_lambda_arn=labeling_job.pre_annotation_lambda_arn,
        consolidation_lambda_arn=labeling_job.consolidation_lambda_arn,
        max_labeled_objects=max_labeled_objects(labeling_job, budget),
        tags={"crowdops-job": str(job.pk)},
    )
    objects = _objects_paid_for(len(spec.objects), spec.max_labeled_objects)
    # Raises BudgetExceeded (nothing asked of AWS) when a cap would be broken.
    _reserve_publication(job=job, labeling_job=labeling_job, objects=objects, actor=actor)
    try:
        state = (connector or GroundTruth()).publish_labeling_job(spec)
    except MarketplaceError as exc:
        if exc.permanent:  # AWS created nothing and will not: give the reservation back (a retry re-reserves)
            _release_publication(job=job, labeling_job=labeling_job, actor=actor, reason=f"AWS refused it: {exc}")
        raise
    now = timezone.now()
    with transaction.atomic():
        LabelingJob.objects.filter(pk=labeling_job.pk).update(
            arn=state.arn, status=state.status, input_manifest_uri=state.input_manifest_uri, published_at=now
        )
        Job.objects.filter(pk=job.pk, state__in=(JobState.DRAFT, JobState.PAUSED)).update(
            state=JobState.PUBLISHED, published_at=now
        )
        record_audit_event(
            actor=actor,
            action="groundtruth.published",
            object_type="job",
            object_id=job.pk,
            after={
                "labeling_job": state.name,
                "arn": state.arn,
                "adopted": state.adopted,
                "objects": len(spec.objects),
            },
        )
    labeling_job.refresh_from_db()
    return labeling_job


def _publication_rows(job: Job, labeling_job: LabelingJob) -> QuerySet[BudgetReservation]:
    """The reservation rows of publishing the labeling job: ``groundtruth:<name>:publish`` (the first
    reservation) and every adjustment and release after it (``groundtruth:<name>:publish:<n>:...``)."""
    key = f"groundtruth:{labeling_job.name}:publish"
    return BudgetReservation.objects.filter(Q(key=key) | Q(key__startswith=f"{key}:"), job_id=job.pk)


def _held_for_publication(job: Job, labeling_job: LabelingJob) -> tuple[Decimal, int]:
    """Under the job row's lock (the caller's transaction): what is held for publishing the labeling job, and
    how many reservation rows make it up, in one read."""
    Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True).get()
    held = _publication_rows(job, labeling_job).aggregate(total=Sum("amount"), rows=Count("id"))
    return exact(held["total"]), held["rows"]


def _reserve_publication(*, job: Job, labeling_job: LabelingJob, objects: int, actor: Actor) -> None:
    """Hold what publishing can cost at most, under the job row's lock: reserve what is not yet held for
    this labeling job (the first time under ``groundtruth:<name>:publish``), or release what is held beyond
    it (the draft was reconfigured to cost less). A retry with the same settings finds it held and reserves
    nothing; a retry after a reconfiguration reserves only the difference, under a key naming the priced
    parameters (objects, workers per object, task price) and the number of rows before it."""
    amount = estimated_cost(labeling_job, objects).quantize(AMOUNT_STEP, ROUND_UP)
    reason = f"Ground Truth labeling job {labeling_job.name}: up to {objects} objects"
    with transaction.atomic():
        held, count = _held_for_publication(job, labeling_job)
        key = f"groundtruth:{labeling_job.name}:publish"
        if count:
            priced = f"{objects}x{labeling_job.workers_per_object}@{labeling_job.task_price.normalize()}"
            key = f"{key}:{count}:{priced}"
        if amount > held or not count:
            reserve_budget(job=job, amount=amount - held, key=key, actor=actor, reason=reason)
        elif amount < held:
            release_budget(job=job, amount=held - amount, key=f"{key}:release", actor=actor, reason=reason)


def _release_publication(*, job: Job, labeling_job: LabelingJob, actor: Actor, reason: str) -> None:
    """Give back everything held for publishing the labeling job (AWS refused it for good)."""
    with transaction.atomic():
        held, count = _held_for_publication(job, labeling_job)
        if held > 0:
            key = f"groundtruth:{labeling_job.name}:publish:{count}:refused"
            release_budget(job=job, amount=held, key=key, actor=actor, reason=reason[:255])


def _store_state(labeling_job: LabelingJob, state: LabelingJobState, actor: Actor) -> None:
    before = labeling_job.status
    LabelingJob.objects.filter(pk=labeling_job.pk).update(
        status=state.status,
        counters=dict(state.counters),
        failure_reason=state.failure_reason,
        output_manifest_uri=state.output_manifest_uri,
        described_at=timezone.now(),
    )
    if before != state.status:
        record_audit_event(
            actor=actor,
            action="groundtruth.status",
            object_type="job",
            object_id=labeling_job.job_id,
            before={"status": before},
            after={"status": state.status, "failure_reason": state.failure_reason, "counters": dict(state.counters)},
        )
    labeling_job.refresh_from_db()


def collect_labeling_job(
    *,
    labeling_job: LabelingJob,
    actor: Actor,
    connector: GroundTruth | None = None,
    state: LabelingJobState | None = None,
) -> GroundTruthImportResult:
    """Read what the labeling job has written to S3 into assignments, answers and Ground Truth labels."""
    connector = connector or GroundTruth()
    state = state or connector.describe(labeling_job.name)
    try:
        output = connector.collect(state)
    except UnicodeDecodeError as exc:  # the connector decodes the manifest S3 holds
        raise MarketplaceError(
            f"Labeling job {labeling_job.name}'s manifest is not UTF-8 text: {undecodable(exc)}", permanent=True
        ) from exc
    try:
        responses = read_worker_responses(output.worker_files)
    except GroundTruthFormatError as exc:
        raise MarketplaceError(f"Ground Truth wrote a worker response we cannot read: {exc}", permanent=True) from exc
    result = import_groundtruth_output(
        manifest_text=output.manifest_text,
        responses=responses,
        actor=actor,
        job=labeling_job.job,
        label_attribute=LABEL_ATTRIBUTE,
        require_labels=False,
        labeling_job_name=labeling_job.name,
        source=state.output_manifest_uri or state.input_manifest_uri or labeling_job.name,
    )
    with transaction.atomic():  # collected and completed together, with the completion's audit event
        now = timezone.now()
        if state.status in TERMINAL:  # the final collection: the follower leaves the job alone from now on
            LabelingJob.objects.filter(pk=labeling_job.pk).update(collected_at=now)
        if (
            state.status == "Completed"
            and output.manifest_is_output
            and Job.objects.filter(pk=labeling_job.job_id, state=JobState.PUBLISHED).update(
                state=JobState.COMPLETED, completed_at=now
            )
        ):
            record_audit_event(
                actor=actor,
                **job_completed_event(
                    labeling_job.job_id, f"Ground Truth labeling job {labeling_job.name} completed and was collected."
                ),
            )
    if state.status in TERMINAL:
        settle_labeling_job_budget(labeling_job=labeling_job, actor=actor)
    return result


def settle_labeling_job_budget(*, labeling_job: LabelingJob, actor: Actor) -> None:
    """After the labeling job has ended: raise the job's reservation to what was booked (Ground Truth
    has charged it already) and release the rest. Idempotent (keyed by the labeling job's name)."""
    job = labeling_job.job
    true_up_spent(job=job, actor=actor)  # the month may be full: the money is spent all the same
    with transaction.atomic():
        reserved = Job.objects.select_for_update().values_list("budget_reserved", flat=True).get(pk=job.pk)
        unspent = reserved - job_spent(job)
        if unspent > 0:
            release_budget(
                job=job,
                amount=unspent,
                key=f"groundtruth:{labeling_job.name}:settle",
                actor=actor,
                reason=f"Ground Truth labeling job {labeling_job.name} {labeling_job.status.lower() or 'ended'}",
            )


def follow_labeling_job(
    *, labeling_job: LabelingJob, actor: Actor, connector: GroundTruth | None = None
) -> LabelingJob:
    """Store the labeling job's status and counters, and collect the results that have arrived."""
    connector = connector or GroundTruth()
    state = connector.describe(labeling_job.name)
    _store_state(labeling_job, state, actor)
    if state.status in ("InProgress", "Stopping", "Completed", "Stopped"):
        collect_labeling_job(labeling_job=labeling_job, actor=actor, connector=connector, state=state)
    elif state.status == "Failed":  # nothing to collect: give the reservation back
        settle_labeling_job_budget(labeling_job=labeling_job, actor=actor)
    labeling_job.refresh_from_db()
    return labeling_job


def follow_labeling_jobs(*, actor: Actor, connector: GroundTruth | None = None) -> int:
    """Follow every labeling job not yet finished and collected; returns how many were followed."""
    followed = 0
    failures: list[str] = []
    pending = (
        LabelingJob.objects.exclude(arn="")
        .exclude(status="Failed")
        .exclude(status__in=TERMINAL, collected_at__isnull=False)
    )
    for labeling_job in pending.select_related("job"):
        try:
            follow_labeling_job(labeling_job=labeling_job, actor=actor, connector=connector)
        except (MarketplaceError, ServiceError) as exc:  # one job's trouble must not hold up the others
            logger.warning("Following labeling job %s failed: %s", labeling_job.name, exc)
            failures.append(labeling_job.name)
            continue
        followed += 1
    if failures and not followed:
        raise MarketplaceError(f"Following {', '.join(failures)} failed; see the log.", permanent=False)
    return followed


def stop_labeling_job(*, labeling_job: LabelingJob, actor: Actor, connector: GroundTruth | None = None) -> LabelingJob:
    """Ask AWS to stop the labeling job (work already done is still collected by the next follow)."""
    if not labeling_job.arn:
        raise ServiceError(f"Labeling job {labeling_job.name} was never published.")
    if labeling_job.status in TERMINAL:
        raise ServiceError(f"Labeling job {labeling_job.name} is already {labeling_job.status.lower()}.")
    (connector or GroundTruth()).stop(labeling_job.name)
    with transaction.atomic():
        LabelingJob.objects.filter(pk=labeling_job.pk).update(status="Stopping")
        record_audit_event(
            actor=actor,
            action="groundtruth.stop_requested",
            object_type="job",
            object_id=labeling_job.job_id,
            before={"status": labeling_job.status},
            after={"status": "Stopping"},
        )
    labeling_job.refresh_from_db()
    return labeling_job
