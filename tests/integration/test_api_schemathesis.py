"""A bounded property-based run of schemathesis against /openapi.json: no 5xx, responses match the schema,
schema-violating requests are refused with 4xx. Runs on both backends (PostgreSQL refuses NUL characters
and over-long keys that SQLite would take: both must end in a 4xx, not a 500).

Operations are driven through hypothesis directly (schemathesis' pytest fixture loader does not work with
pytest 9); positive and negative generation are both exercised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.modes import GenerationMode

from api.app import create_app
from rulesvc.decisions.service import Evaluator
from tests.integration.conftest import auth, make_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}


@pytest.fixture
def app(database_url: str, tmp_path: Path, book: Evaluator) -> FastAPI:
    """Checkpoints configured on both backends (PostgreSQL has no default directory)."""
    return create_app(make_settings(database_url, checkpoint_dir=tmp_path / "checkpoints"), book=book)


def test_openapi_contract(app: FastAPI, keys: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = auth(keys["all"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /v1/events",
        "POST /v1/simulate",
        "GET /v1/actions",
        "GET /v1/decisions/{decision_id}",
        "GET /v1/audit/verify",
    }
    for operation in operations:
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                wait = case.query.get("wait") if isinstance(case.query, dict) else None
                if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0.2:
                    case.query["wait"] = 0.2  # a valid long-poll holds the request up to `wait` seconds
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # No parameters and no body: nothing to negate.
                assert mode is GenerationMode.NEGATIVE, operation.label
