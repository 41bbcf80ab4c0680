"""The tasks app's models, one module per topic. Import them from ``tasks.models``.

``core``: Job -> Item.
``work``: Hit -> Assignment -> Answer, consensus.
``ledger``: the append-only cost ledger.
``budget``: budget reservations, monthly caps and budget alerts.
``groundtruth``: SageMaker Ground Truth labeling jobs and the labels Ground Truth consolidated.
``mturk``: publish intents, bonuses, notifications and qualification types on MTurk.
``mturk_results``: the MTurk-format fields of an assignment (results files, HTML layouts).
``console``: dataset versions, label exports, instruction versions, idempotent API writes.
``adaptive``: cached worker skills for adaptive redundancy.
``predictions``: model predictions (pre-labels, one more annotator, active learning).
``quality``: gold grades, per-job worker scores and blocks, review flags set by quality policies, gold placed
on workers' pages of multi-item Hits.
``tallies``: per-job running totals kept by database triggers (progress, items, costs).
New topics get their own module, re-exported here.
"""

from tasks.models.adaptive import AdaptiveSkills
from tasks.models.budget import BudgetAlert, BudgetReservation, MonthlyBudget
from tasks.models.console import (
    DatasetVersion,
    ExportState,
    IdempotencyRecord,
    JobInstructions,
    LabelExport,
)
from tasks.models.core import (
    IMAGE_KINDS,
    MULTILABEL_KINDS,
    SHAPE_KINDS,
    GoldMissAction,
    Item,
    Job,
    JobState,
    PayMode,
    TaskKind,
)
from tasks.models.groundtruth import GroundTruthLabel, LabelingJob, WorkforceKind
from tasks.models.ledger import CostEntry, CostKind, CostStatus
from tasks.models.mturk import (
    MTurkBonus,
    MTurkBonusState,
    MTurkHit,
    MTurkNotification,
    MTurkPageSubmission,
    MTurkQualificationPurpose,
    MTurkQualificationType,
)
from tasks.models.mturk_results import RawResult
from tasks.models.predictions import Prediction
from tasks.models.quality import AssignmentFlag, AssignmentGoldItem, GoldGrade, JobBlock, WorkerJobScore
from tasks.models.tallies import JobCostTally, JobTally
from tasks.models.work import (
    DONE_ASSIGNMENT_STATES,
    LIVE_ASSIGNMENT_STATES,
    Answer,
    Assignment,
    AssignmentState,
    ConsensusLabel,
    Hit,
    HitItem,
    HitState,
)

__all__ = [
    "DONE_ASSIGNMENT_STATES",
    "IMAGE_KINDS",
    "LIVE_ASSIGNMENT_STATES",
    "MULTILABEL_KINDS",
    "SHAPE_KINDS",
    "AdaptiveSkills",
    "Answer",
    "Assignment",
    "AssignmentFlag",
    "AssignmentGoldItem",
    "AssignmentState",
    "BudgetAlert",
    "BudgetReservation",
    "ConsensusLabel",
    "CostEntry",
    "CostKind",
    "CostStatus",
    "DatasetVersion",
    "ExportState",
    "GoldGrade",
    "GoldMissAction",
    "GroundTruthLabel",
    "Hit",
    "HitItem",
    "HitState",
    "IdempotencyRecord",
    "Item",
    "Job",
    "JobBlock",
    "JobCostTally",
    "JobInstructions",
    "JobState",
    "JobTally",
    "LabelExport",
    "LabelingJob",
    "MTurkBonus",
    "MTurkBonusState",
    "MTurkHit",
    "MTurkNotification",
    "MTurkPageSubmission",
    "MTurkQualificationPurpose",
    "MTurkQualificationType",
    "MonthlyBudget",
    "PayMode",
    "Prediction",
    "RawResult",
    "TaskKind",
    "WorkerJobScore",
    "WorkforceKind",
]
