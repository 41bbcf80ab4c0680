"""The tasks app's models, one module per topic. Import them from ``tasks.models``.

``core``: Job -> Item, Hit -> Assignment -> Answer, consensus, gold grades, scores, blocks.
``ledger``: the append-only cost ledger.
``budget``: budget reservations, monthly caps and budget alerts.
New topics get their own module, re-exported here.
"""

from tasks.models.budget import BudgetAlert, BudgetReservation, MonthlyBudget
from tasks.models.core import (
    DONE_ASSIGNMENT_STATES,
    IMAGE_KINDS,
    LIVE_ASSIGNMENT_STATES,
    MULTILABEL_KINDS,
    Answer,
    Assignment,
    AssignmentState,
    ConsensusLabel,
    GoldGrade,
    Hit,
    HitItem,
    HitState,
    Item,
    Job,
    JobBlock,
    JobState,
    PayMode,
    TaskKind,
    WorkerJobScore,
)
from tasks.models.ledger import CostEntry, CostKind, CostStatus

__all__ = [
    "DONE_ASSIGNMENT_STATES",
    "IMAGE_KINDS",
    "LIVE_ASSIGNMENT_STATES",
    "MULTILABEL_KINDS",
    "Answer",
    "Assignment",
    "AssignmentState",
    "BudgetAlert",
    "BudgetReservation",
    "ConsensusLabel",
    "CostEntry",
    "CostKind",
    "CostStatus",
    "GoldGrade",
    "Hit",
    "HitItem",
    "HitState",
    "Item",
    "Job",
    "JobBlock",
    "JobState",
    "MonthlyBudget",
    "PayMode",
    "TaskKind",
    "WorkerJobScore",
]
