"""Fixtures for the qualification tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from qualification.models import QualificationTest
from qualification.services import create_test
from qualification.specs import OptionSpec, QuestionSpec
from tests.factories import WorkerFactory
from workforce.audit import Actor
from workforce.models import Worker

OPS = Actor.system("qualification tests")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def sentiment_questions() -> list[QuestionSpec]:
    """Three questions; the accepted answers of q3 and q4 never appear among the page's options."""
    return [
        QuestionSpec(identifier="q1", prompt="How does this read?", payload={"text": "I love it"}, accepted=("pos",)),
        QuestionSpec(
            identifier="q2",
            prompt="Pick the colour of the sky",
            options=(OptionSpec("c-a", "Green"), OptionSpec("c-b", "Blue"), OptionSpec("c-c", "Red")),
            accepted=("c-b",),
        ),
        QuestionSpec(identifier="q3", prompt="Type the secret word", answer_type="text", accepted=("Zanzibar-Quokka",)),
        QuestionSpec(
            identifier="q4", prompt="What is 6 times 7.125?", answer_type="numeric", accepted=(42.75,), tolerance=0.01
        ),
    ]


RIGHT = {"q1": "pos", "q2": "c-b", "q3": "  zanzibar-quokka ", "q4": "42.75"}


@pytest.fixture
def make_test(db: Any) -> Callable[..., QualificationTest]:
    def make(questions: list[QuestionSpec] | None = None, **fields: Any) -> QualificationTest:
        fields.setdefault("name", "Sentiment basics")
        fields.setdefault("labels", ["pos", "neg", "neutral"])
        fields.setdefault("pass_score", 75)
        fields.setdefault("time_limit", timedelta(minutes=10))
        fields.setdefault("retry_delay", timedelta(hours=1))
        fields.setdefault("max_attempts", 3)
        name = fields.pop("name")
        return create_test(actor=OPS, name=name, questions=questions or sentiment_questions(), **fields)

    return make


@pytest.fixture
def worker(db: Any) -> Worker:
    return WorkerFactory()


@pytest.fixture
def worker_client(worker: Worker) -> Client:
    client = Client()
    client.force_login(worker.user)
    return client
