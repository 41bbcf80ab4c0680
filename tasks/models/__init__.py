"""The tasks app's models, one module per topic. Import them from ``tasks.models``.

``core``: Job -> Item, Hit -> Assignment -> Answer, consensus, gold grades, scores, blocks.
``ledger``: the append-only cost ledger.
``quality``: review flags set by quality policies.
New topics get their own module, re-exported here.
"""

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
    GoldMissAction,
    Hit,
    HitItem,
    HitState,
    Item,
    Job,
    JobBlock,
    JobState,
    TaskKind,
    WorkerJobScore,
)
from tasks.models.ledger import CostEntry, CostKind, CostStatus
from tasks.models.quality import AssignmentFlag

__all__ = [
    "DONE_ASSIGNMENT_STATES",
    "IMAGE_KINDS",
    "LIVE_ASSIGNMENT_STATES",
    "MULTILABEL_KINDS",
    "Answer",
    "Assignment",
    "AssignmentFlag",
    "AssignmentState",
    "ConsensusLabel",
    "CostEntry",
    "CostKind",
    "CostStatus",
    "GoldGrade",
    "GoldMissAction",
    "Hit",
    "HitItem",
    "HitState",
    "Item",
    "Job",
    "JobBlock",
    "JobState",
    "TaskKind",
    "WorkerJobScore",
]
