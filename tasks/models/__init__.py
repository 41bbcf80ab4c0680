"""The tasks app's models, one module per topic. Import them from ``tasks.models``.

``core``: Job -> Item, Hit -> Assignment -> Answer, consensus, gold grades, scores, blocks.
``ledger``: the append-only cost ledger.
``console``: dataset versions, label exports, instruction versions, idempotent API writes.
New topics get their own module, re-exported here.
"""

from tasks.models.console import (
    DatasetVersion,
    ExportState,
    IdempotencyRecord,
    JobInstructions,
    LabelExport,
)
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
    "ConsensusLabel",
    "CostEntry",
    "CostKind",
    "CostStatus",
    "DatasetVersion",
    "ExportState",
    "GoldGrade",
    "Hit",
    "HitItem",
    "HitState",
    "IdempotencyRecord",
    "Item",
    "Job",
    "JobBlock",
    "JobInstructions",
    "JobState",
    "LabelExport",
    "TaskKind",
    "WorkerJobScore",
]
