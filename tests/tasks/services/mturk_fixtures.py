"""Where the real MTurk batch files live, and small synthetic results files with their quirks.

The real files hold real WorkerIds, so they are read in place (``MTURK_DATA_DIR``) and never copied here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_DIR = Path(os.environ.get("MTURK_DATA_DIR", "/work/shared/data/mturk"))
# file -> (answer field, labels for a new job) that make it a labeling job; rows in the file.
REAL_RESULTS = {
    "p808_Batch_3824355_batch_results.csv": ("8_hearing", None, 349),
    "p808_Batch_256535_batch_results.csv": ("4_ld", None, 2),
    "p808_Batch_257568_batch_results.csv": ("q1", ["1", "2", "3", "4", "5"], 1),
    "p808_api_assignment_dump.csv": ("cmp1", ["a", "b"], 1),
}


def real_file(name: str) -> bytes:
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (set MTURK_DATA_DIR to the real MTurk batch files)")
    return path.read_bytes()


_HEAD = "HITId,AssignmentId,WorkerId,AssignmentStatus,AcceptTime,SubmitTime,ApprovalTime,Reward,MaxAssignments"

# Radio buttons in crowd-html style (one true per row), a free-text comment, unquoted, LF, a short row.
RADIO = (
    _HEAD + ",Input.text,Answer.sentiment.positive,Answer.sentiment.negative,Answer.comment,Approve,Reject\n"
    "H1,A1,W1,Approved,Thu Nov 07 16:38:49 PST 2019,Thu Nov 07 16:40:00 PST 2019,"
    'Fri Nov 08 10:00:00 PST 2019,$0.10,3,great film,true,false,"loved it, really",,\n'
    "H1,A2,W2,Submitted,Thu Nov 07 17:00:00 PST 2019,Thu Nov 07 17:01:00 PST 2019,,$0.10,3,great film,true,false,\n"
    "H1,A3,W3,Rejected,Thu Nov 07 17:00:00 PDT 2019,Thu Nov 07 17:02:00 PDT 2019,,$0.10,3,great film,false,true,meh\n"
    "H2,A4,W1,Submitted,Thu Nov 07 18:00:00 PST 2019,Thu Nov 07 18:01:00 PST 2019,,$0.10,3,awful,false,true,\n"
)

# Check boxes: several may be ticked. Fully quoted with CRLF, as the requester UI writes.
CHECKBOXES = (
    '"HITId","AssignmentId","WorkerId","AssignmentStatus","Input.image_url",'
    '"Answer.tags.cat","Answer.tags.dog","Answer.tags.bird"\r\n'
    '"H1","A1","W1","Submitted","https://x/1.jpg","on","on",""\r\n'
    '"H1","A2","W2","Submitted","https://x/1.jpg","on","","on"\r\n'
    '"H2","A3","W1","Submitted","https://x/2.jpg","","",""'
)
