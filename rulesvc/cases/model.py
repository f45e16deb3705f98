"""Compliance case files: given events and a clock, expected actions (subset match) and forbidden ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rulesvc.errors import InvalidEventError, Location, RulesetError
from rulesvc.events import event_from_json, parse_time
from rulesvc.lang.model import KindSchema
from rulesvc.model import Event
from rulesvc.validation import read_event
from rulesvc.yamlpos import load_yaml, plain

CASE_KEYS = ("name", "description", "given", "until", "expect", "expect_not")


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    location: Location
    events: tuple[Event, ...]
    until: datetime
    expect: tuple[Mapping[str, Any], ...]
    expect_not: tuple[Mapping[str, Any], ...] = ()
    description: str = ""


def load_case_text(
    file: str, text: str, kinds: Mapping[str, KindSchema] | None = None, now: datetime | None = None
) -> tuple[list[Case], list[RulesetError]]:
    """Cases of one file. With `kinds`, every event is validated against its ticket kind as ingest does
    (an invalid event is a `case.bad_event` error listing its problems); `now` bounds event times (default: now)."""
    src, errors = load_yaml(file, text)
    if src is None:
        return [], errors
    data = src.data
    raw_cases = data.get("cases") if isinstance(data, Mapping) else None
    if not isinstance(raw_cases, list):
        return [], [
            RulesetError("case.bad_file", "样例文件需要 `cases:`（样例的列表）", Location(file, 1, 1))
        ]
    cases: list[Case] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_cases):
        where = src.item_loc(raw_cases, index)
        if not isinstance(raw, Mapping):
            errors.append(
                RulesetError("case.not_mapping", "每个样例须是一个映射（name、given、expect …）", where)
            )
            continue
        for key in raw:
            if key not in CASE_KEYS:
                errors.append(
                    RulesetError(
                        "case.unknown_key",
                        f"样例中有未知的键 {key!r}（可用：{'、'.join(sorted(CASE_KEYS))}）",
                        src.key_loc(raw, key),
                    )
                )
        name = str(raw.get("name") or f"case {index + 1}")
        if name in names:
            errors.append(RulesetError("case.duplicate_name", f"样例名 {name!r} 重复", where))
        names.add(name)
        events: list[Event] = []
        given = raw.get("given") or []
        for event_index, raw_event in enumerate(given if isinstance(given, list) else []):
            event_loc = src.item_loc(given, event_index)
            try:
                body = dict(plain(raw_event))
                body.setdefault("event_id", f"{name}#{event_index + 1}")
                if kinds is None:
                    events.append(event_from_json(body))
                else:
                    # refused as on ingest, or routed by the kind's `invalid:` policy (event.problems)
                    events.append(read_event(body, kinds, now=now or datetime.now(UTC)).event)
            except (InvalidEventError, TypeError, ValueError) as exc:
                errors.append(RulesetError("case.bad_event", f"事件不合格：{exc}", event_loc))
        if not events:
            errors.append(
                RulesetError("case.no_events", f"样例 {name!r} 的 `given` 下至少要有一个事件", where)
            )
            continue
        try:
            until = (
                parse_time(raw["until"], "until") if raw.get("until") else max(e.occurred_at for e in events)
            )
        except InvalidEventError as exc:
            errors.append(RulesetError("case.bad_until", str(exc), src.value_loc(raw, "until")))
            continue
        cases.append(
            Case(
                name=name,
                file=file,
                location=where,
                events=tuple(events),
                until=until,
                expect=tuple(_expectations(raw.get("expect"))),
                expect_not=tuple(_expectations(raw.get("expect_not"))),
                description=str(raw.get("description", "")),
            )
        )
    return cases, errors


def _expectations(raw: Any) -> Sequence[Mapping[str, Any]]:
    if not isinstance(raw, list):
        return []
    return [plain(item) for item in raw if isinstance(item, Mapping)]


def load_case_files(
    files: Sequence[Path], kinds: Mapping[str, KindSchema] | None = None
) -> tuple[list[Case], list[RulesetError]]:
    cases: list[Case] = []
    errors: list[RulesetError] = []
    for file in files:
        found, file_errors = load_case_text(str(file), file.read_text(encoding="utf-8"), kinds)
        cases.extend(found)
        errors.extend(file_errors)
    return cases, errors
