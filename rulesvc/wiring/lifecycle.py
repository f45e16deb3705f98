"""Composition root of the lifecycle: one call gives a process its ruleset registry, live evaluator,
reload watcher and use cases. Used by the HTTP app and the background worker alike.

On the first start against an empty database the rules folder's rulesets (and their `cases/<name>.yaml`)
become version 1; afterwards the database is the source of truth and the folder only supplies the ticket
kinds and the case files no version has replaced. Calendars follow the same lifecycle: the folder's calendar
files become version 1 of each calendar the first time the database holds none.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from rulesvc.delivery.notify import Notifier, RedisNotifier
from rulesvc.lang.loader import load_folder_or_raise
from rulesvc.lifecycle.calendar_artifact import CalendarArtifact
from rulesvc.lifecycle.gate import shipped_cases
from rulesvc.lifecycle.ports import KIND_CALENDAR
from rulesvc.lifecycle.registry import BookRegistry, LiveBook
from rulesvc.lifecycle.reload import TOPIC, ReloadWatcher
from rulesvc.lifecycle.service import LifecycleService
from rulesvc.lifecycle.timeline import BookFactory
from rulesvc.masking import MaskPolicy
from rulesvc.sla.calendar_file import parse_calendar_text
from rulesvc.sla.clock import Clock
from rulesvc.storage.ruleset_store import SqlRulesetStore


@dataclass
class Lifecycle:
    service: LifecycleService
    calendars: LifecycleService
    """The same lifecycle for calendars (`/v1/calendars`)."""
    registry: BookRegistry
    book: LiveBook
    watcher: ReloadWatcher
    notifier: Notifier | None

    def close(self) -> None:
        self.watcher.close()
        if self.notifier is not None:
            notifier, self.notifier = self.notifier, None
            notifier.close()


def build_lifecycle(
    engine: Engine,
    rules_folder: Path,
    clock: Clock,
    masking: MaskPolicy,
    *,
    redis_url: str | None = None,
    engine_lock: threading.Lock | None = None,
    poll_seconds: float = 1.0,
    bootstrap: bool = True,
) -> Lifecycle:
    """Everything wired and the watcher running; raises InvalidRulesetError if the folder or a stored
    version does not compile (a replica must not start deciding on a partial history)."""
    folder = load_folder_or_raise([rules_folder])
    store = SqlRulesetStore(engine)
    calendar_store = SqlRulesetStore(engine, KIND_CALENDAR)
    registry = BookRegistry(store, BookFactory(folder), calendar_store)
    notifier: Notifier | None = RedisNotifier(redis_url, topics=(TOPIC,)) if redis_url else None
    watcher = ReloadWatcher(registry, notifier, poll_seconds)
    cases = shipped_cases(folder)
    service = LifecycleService(
        store,
        registry,
        clock,
        masking,
        shipped_cases=cases,
        announce=watcher.announce,
        engine_lock=engine_lock,
    )
    calendars = LifecycleService(
        calendar_store,
        registry,
        clock,
        masking,
        shipped_cases=cases,
        announce=watcher.announce,
        engine_lock=engine_lock,
        artifact=CalendarArtifact(registry, cases, clock.now, engine_lock),
    )
    try:
        if bootstrap:
            rulesets = {name: r.source_text for name, r in folder.rulesets.items()}
            service.bootstrap(rulesets, {n: t for n, t in cases.items() if n in rulesets})
            calendars.bootstrap(calendar_sources(rules_folder), {})
        else:
            registry.refresh()
    except Exception:
        if notifier is not None:
            notifier.close()
        raise
    watcher.start()
    return Lifecycle(service, calendars, registry, LiveBook(registry, clock), watcher, notifier)


def calendar_sources(rules_folder: Path) -> dict[str, str]:
    """name → file text of the folder's calendars (they become version 1 of each calendar at first start)."""
    sources: dict[str, str] = {}
    for path in sorted(rules_folder.rglob("*.yaml")) if rules_folder.is_dir() else []:
        if path.parent.name == "calendars":
            text = path.read_text(encoding="utf-8")
            calendar, _, _ = parse_calendar_text(str(path), text)
            if calendar is not None:
                sources[calendar.name] = text
    return sources
