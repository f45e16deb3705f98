"""The one table from core errors to HTTP statuses: nearest class wins, a code refines a class."""

from __future__ import annotations

import pytest

from api.errors import ERROR_STATUS, status_of
from rulesvc.audit.checkpoints import CheckpointError
from rulesvc.decisions.service import ClockSkewError, DecisionNotFoundError
from rulesvc.errors import EngineError, InvalidEventError, RulesvcError
from rulesvc.lifecycle.errors import (
    EvidenceFrozenError,
    ForeignCaseFileError,
    LifecycleError,
    StaleBaseError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidEventError("bad"), 422),
        (DecisionNotFoundError("d-1"), 404),
        (ForeignCaseFileError("not yours"), 403),
        (EvidenceFrozenError("frozen"), 409),
        (StaleBaseError("older base"), 409),
        (LifecycleError("some new refusal"), 422),
        (CheckpointError("audit.chain_broken", "broken"), 409),
        (CheckpointError("audit.chain_rolled_back", "rolled back"), 409),
        (CheckpointError("audit.no_signing_key", "no key"), 503),
    ],
)
def test_status_of_nearest_class_and_code(error: RulesvcError, status: int) -> None:
    assert status_of(error) == status


def test_clock_skew_is_an_invalid_event() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert status_of(ClockSkewError(now + timedelta(hours=1), now, timedelta(minutes=5))) == 422


def test_unmapped_core_error_is_not_given_a_client_status() -> None:
    assert status_of(EngineError("engine broke")) is None
    assert all(400 <= status < 600 for status in ERROR_STATUS.values())
