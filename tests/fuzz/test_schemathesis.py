"""schemathesis against the running server's own /openapi.json (issue 16): every documented operation
with generated valid (positive) and invalid (negative) parameters and bodies, then schemathesis'
stateful run that chains operations through the links it infers, on both databases: 0 server errors,
and every 4xx an OperationOutcome.

Bounded for CI (PUENTE_FUZZ_EXAMPLES per operation and mode, 15 by default); schemathesis comes from
uv.lock, and everything it calls is a `puente serve` on this machine's loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode

from api.openapi_subset import subset
from tests.fixtures.live_server import running_server

EXAMPLES = int(os.environ.get("PUENTE_FUZZ_EXAMPLES", 15))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


# The document has a path set per R4 type (1,177 paths); every type is served by the same handlers,
# so the fuzzing covers the programme's core types and every operation that is not per type.
CORE_TYPES = {"Patient"}
NOT_PER_TYPE = {"authorization", "batch/transaction", "bulk data", "capabilities", "clinical operations", "health",
                "history"}


def _loose_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Request bodies as any JSON object: generating instances of the R4 schemas (a Bundle may hold
    any of 146 types) took minutes per operation; the resource parsers, the validator and the Bundle
    processor are fuzzed with Hypothesis directly (test_fuzz_parsing.py, test_fuzz_http.py)."""
    for item in document["paths"].values():
        for operation in item.values():
            for media in (operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}):
                if "json" in media and "patch" not in media:
                    operation["requestBody"]["content"][media]["schema"] = {"type": "object"}
    return document


@pytest.fixture(scope="module")
def live_schema(database_url: str) -> Iterator[Any]:
    with running_server(database_url, workers=1) as base:
        document = subset(httpx.get(f"{base}/openapi.json", timeout=60).json(), CORE_TYPES | NOT_PER_TYPE)
        document = _loose_bodies(document)
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=base)
        yield schema


def check(case: Any, response: Any) -> None:
    where = f"{case.method} {case.formatted_path} {case.query or ''}"
    assert response.status_code < 500, (where, response.status_code, response.text[:500])
    if response.status_code >= 400 and "fhir+json" in response.headers.get("content-type", [""])[0]:
        assert response.json()["resourceType"] == "OperationOutcome", (where, response.text[:300])


def test_every_operation_positive_and_negative(live_schema):
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                check(case, case.call(timeout=60))

            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing to get wrong: an operation without parameters


def test_stateful(live_schema):
    machine = live_schema.as_state_machine()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def validate_response(self, response: Any, case: Any, **_: Any) -> None:
            check(case, response)

    run_state_machine_as_test(
        Machine, settings=settings(SETTINGS, max_examples=max(EXAMPLES // 3, 3), stateful_step_count=6)
    )
