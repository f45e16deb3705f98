"""Which version is in force when: effective times, supersession of scheduled versions, periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rulesvc.lang.loader import load_folder_or_raise
from rulesvc.lifecycle.ports import VersionRecord
from rulesvc.lifecycle.timeline import EPOCH, BookFactory, build_timeline, in_force, latest

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
TEXT = (RULESETS / "expense-approval.yaml").read_text(encoding="utf-8")


def version(
    number: int, effective: datetime, text: str = TEXT, name: str = "expense-approval"
) -> VersionRecord:
    return VersionRecord(
        name=name,
        version=number,
        content=text,
        content_hash=f"h{number}",
        cases={},
        source="draft",
        author="a",
        reason="",
        created_at=T0,
        published_at=T0,
        published_by="b",
        effective_at=effective,
        seq=number,
    )


def test_highest_effective_version_is_in_force() -> None:
    v1, v2 = version(1, EPOCH), version(2, T0 + timedelta(days=1))
    assert in_force([v1, v2], T0)["expense-approval"].version == 1
    assert in_force([v1, v2], T0 + timedelta(days=1))["expense-approval"].version == 2  # at the instant
    assert in_force([v1, v2], EPOCH - timedelta(seconds=1)) == {}


def test_a_later_version_effective_sooner_supersedes_a_scheduled_one() -> None:
    v1, v2 = version(1, EPOCH), version(2, T0 + timedelta(days=30))
    v3 = version(3, T0 + timedelta(days=1))  # published after v2, effective before it
    versions = [v1, v2, v3]
    assert in_force(versions, T0 + timedelta(days=2))["expense-approval"].version == 3
    assert in_force(versions, T0 + timedelta(days=31))["expense-approval"].version == 3  # v2 never
    assert latest(versions)["expense-approval"].version == 3


@pytest.fixture(scope="module")
def factory() -> BookFactory:
    return BookFactory(load_folder_or_raise([RULESETS]))


def test_timeline_books_per_period(factory: BookFactory) -> None:
    raised = TEXT.replace('"< 5000"', '"< 8000"')
    versions = [
        version(1, EPOCH),
        version(1, EPOCH, (RULESETS / "complaint-sla.yaml").read_text(encoding="utf-8"), "complaint-sla"),
        version(2, T0, raised),
        version(3, T0 + timedelta(days=30), TEXT),
        version(4, T0 + timedelta(days=1), raised.replace("8000", "7000")),
    ]
    timeline = build_timeline(factory, versions)
    assert [books for _, books in timeline.periods] == [
        {"complaint-sla": 1, "expense-approval": 1},
        {"complaint-sla": 1, "expense-approval": 2},
        {"complaint-sla": 1, "expense-approval": 4},
    ]  # v3's start changes nothing: v4 superseded it
    assert timeline.at(T0 - timedelta(seconds=1)).versions()["expense-approval"] == 1
    assert timeline.at(EPOCH - timedelta(days=1)).versions() == {}
    assert timeline.generation == 4
    # Compiled once: the same book object for the same combination of versions.
    assert timeline.at(T0 + timedelta(days=40)) is build_timeline(factory, versions).at(
        T0 + timedelta(days=2)
    )
