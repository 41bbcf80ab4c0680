"""Constants and logging shared by the pool benchmark's modules."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the project root
PYTHON = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crowdops_bench"
USER_PREFIX = "bench-worker-"
PASSWORD = "bench-Password-2718"
JOB_PREFIX = "bench-pool-"
LABELS = ["positive", "negative", "neutral"]
MAX_SECONDS = 120
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"

_TASK_PATH = re.compile(r"^/work/tasks/([0-9a-f-]{36})/$")
_ANSWER_NAME = re.compile(rb'name="answer-(\d+)" value="([^"]+)"')
_CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
