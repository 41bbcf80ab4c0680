"""Fuzz every REST operation from the OpenAPI schema (schemathesis): no input may give a 5xx.

The schema is generated in-process by drf-spectacular and the requests go through Django's WSGI handler (no
server, no network), authenticated with an ops manager's token. Path ids are drawn half from rows that exist
(a labeled job, a draft job, their dataset versions and an export) so the cases reach past the 404s.

Bounded for CI (``FUZZ_EXAMPLES`` examples per operation, 15 by default, derandomised); a deeper run:
``FUZZ_EXAMPLES=200 pytest -q tests/tasks/api/test_api_fuzz.py``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, cast

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from tasks.models import Job, JobState
from tasks.services.exports import ExportOptions, create_dataset_version, request_label_export
from tests.factories import ItemFactory, JobFactory
from tests.tasks.exports.conftest import SYSTEM

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
# Schemathesis' coverage phase (boundary and wrong-type values for every parameter; about a hundred cases per
# operation, most of them 404s) runs in the deep run only: FUZZ_COVERAGE=1.
PHASES = [Phase.explicit, Phase.generate] if os.environ.get("FUZZ_COVERAGE") else [Phase.generate]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]


def openapi_document() -> dict[str, Any]:
    """The schema exactly as ``/api/schema/`` serves it, as plain JSON data."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return dict(json.loads(OpenApiJsonRenderer().render(document)))


TALLY: Counter[tuple[str, int]] = Counter()
# Ids of rows that exist in the running test, by path parameter name (filled by ``fuzz_world``).
KNOWN: dict[str, list[int]] = {}

schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = get_wsgi_application()
schema.config.generation.update(max_examples=EXAMPLES, deterministic=True, with_security_parameters=False)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the cases point at rows that exist, so they get past the 404 and into the view."""
    if not path_parameters or not KNOWN:
        return st.just(path_parameters)
    fixed = {name: st.just(value) for name, value in path_parameters.items()}
    fixed.update({name: st.sampled_from(KNOWN[name]) for name in path_parameters if name in KNOWN})
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries(fixed))


@schema.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    TALLY[(case.operation.label, response.status_code)] += 1


@pytest.fixture
def fuzz_world(labeled_job: Job, ops_manager: Any) -> Any:
    """Rows the path parameters can point at: two jobs (labeled and draft), two versions, one export."""
    draft = cast(Job, JobFactory(state=JobState.DRAFT))
    ItemFactory.create_batch(3, job=draft)
    create_dataset_version(job=labeled_job, actor=SYSTEM, note="first", created_by=ops_manager)
    create_dataset_version(job=labeled_job, actor=SYSTEM, note="second", created_by=ops_manager)
    export = request_label_export(
        job=labeled_job,
        fmt="jsonl",
        options=ExportOptions(answers=False, scores=False, cost=False, min_confidence=None),
        version=None,
        actor=SYSTEM,
        created_by=ops_manager,
    )
    jobs = [labeled_job.pk, draft.pk]
    KNOWN.update(job_id=jobs, id=jobs, number=[1, 2], export_id=[export.pk])
    yield
    KNOWN.clear()


@pytest.fixture
def _connection_kept_across_requests() -> Any:
    """Django's handler closes the connection after each request unless told otherwise, as its test client
    does; closing it would drop the test's transaction (on PostgreSQL)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(ops_manager: Any) -> str:
    return str(Token.objects.create(user=ops_manager).key)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    phases=PHASES,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_the_api_fail(
    case: Any, token: str, fuzz_world: None, _connection_kept_across_requests: None
) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


@pytest.fixture(scope="module", autouse=True)
def _report_the_tally() -> Any:
    """With ``-s``, print the requests made per operation and status code (the figures in the README)."""
    yield
    for (label, code), count in sorted(TALLY.items()):
        print(f"{count:6d}  {code}  {label}")
    print(f"{sum(TALLY.values()):6d}  requests in all")
