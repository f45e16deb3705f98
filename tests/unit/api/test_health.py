"""The replica clock offset: recorded, and an alert logged beyond a second (pure)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from api.metrics import Metrics
from api.routes.health import observe_offset


def test_an_offset_beyond_a_second_is_logged_with_its_code(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="rulesvc.api"):
        observe_offset(metrics, timedelta(milliseconds=300))
        assert caplog.records == []
        observe_offset(metrics, timedelta(seconds=-2.5))
    [record] = caplog.records
    assert record.getMessage().startswith("clock.offset:") and "-2.500 s" in record.getMessage()
    assert metrics.clock_offset._value.get() == -2.5
