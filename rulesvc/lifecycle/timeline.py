"""Which ruleset versions are in force when, and the compiled books for each period.

Rule: at instant T the version in force of a ruleset is its highest-numbered version whose `effective_at`
is at or before T. A version published later but effective earlier than a still-pending one therefore
supersedes it, and the pending one never takes effect (every draft is based on the latest version, so
the newer version already contains or deliberately undoes the pending one's change). Versions imported at
first start are effective since `EPOCH`: events that occurred before the import still get decided.

`BookTimeline` is immutable: a request that picked a book keeps deciding on it even if the registry swaps
in a new timeline meanwhile.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rulesvc.errors import InvalidRulesetError, RulesetError
from rulesvc.lang.loader import RulesFolder, load_ruleset_sources
from rulesvc.lang.model import Ruleset
from rulesvc.lifecycle.ports import VersionRecord
from rulesvc.model import Decision, Event
from rulesvc.rulebook import RuleBook
from rulesvc.sla.calendar import BusinessCalendar

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DRAFT_VERSION = 0
"""The version number a draft carries while it is tested or simulated (`fired[].version == 0`)."""

_BOOK_CACHE_SIZE = 64


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def in_force(versions: Iterable[VersionRecord], at: datetime) -> dict[str, VersionRecord]:
    """name → the version in force at `at` (rulesets with no version effective yet are absent)."""
    chosen: dict[str, VersionRecord] = {}
    for record in versions:
        if record.effective_at <= at:
            current = chosen.get(record.name)
            if current is None or record.version > current.version:
                chosen[record.name] = record
    return chosen


def latest(versions: Iterable[VersionRecord]) -> dict[str, VersionRecord]:
    """name → its highest-numbered version, effective or not."""
    chosen: dict[str, VersionRecord] = {}
    for record in versions:
        current = chosen.get(record.name)
        if current is None or record.version > current.version:
            chosen[record.name] = record
    return chosen


IN_FORCE, SCHEDULED, SUPERSEDED, ROLLED_BACK = "in_force", "scheduled", "superseded", "rolled_back"
STATE_LABELS = {IN_FORCE: "生效中", SCHEDULED: "待生效", SUPERSEDED: "已被取代", ROLLED_BACK: "已回滚"}


@dataclass(frozen=True)
class VersionState:
    """Where a version stands at an instant.

    `in_force`: it decides now. `scheduled`: it will decide from its effective time. `superseded`: a later
    version took its place (`never_in_force` when that happened before it ever took effect). `rolled_back`:
    superseded by a rollback to a version before it.
    """

    state: str
    superseded_by: int | None = None
    never_in_force: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "state_label": STATE_LABELS[self.state]
            + ("（从未生效）" if self.never_in_force and self.state != SCHEDULED else ""),
            "superseded_by": self.superseded_by,
            "never_in_force": self.never_in_force,
        }


def version_states(versions: Iterable[VersionRecord], at: datetime) -> dict[tuple[str, int], VersionState]:
    """(name, version) → its state at `at`, for every version given (all versions of a ruleset are needed
    to tell whether one was superseded)."""
    by_name: dict[str, list[VersionRecord]] = {}
    for record in versions:
        by_name.setdefault(record.name, []).append(record)
    states: dict[tuple[str, int], VersionState] = {}
    for name, records in by_name.items():
        records.sort(key=lambda r: r.version)
        current = in_force(records, at).get(name)
        # a version takes effect only if no later version is effective at or before its own effective time
        never = {
            r.version: any(w.version > r.version and w.effective_at <= r.effective_at for w in records)
            for r in records
        }
        for record in records:
            key = (name, record.version)
            if current is not None and record.version == current.version:
                states[key] = VersionState(IN_FORCE)
                continue
            if record.effective_at > at and not never[record.version]:
                states[key] = VersionState(SCHEDULED)
                continue
            later = [w for w in records if w.version > record.version]
            if never[record.version]:
                successor = min((w for w in later if w.effective_at <= record.effective_at), key=_number)
            else:  # the first later version that took effect after it
                successor = min(
                    (w for w in later if record.effective_at < w.effective_at <= at and not never[w.version]),
                    key=lambda w: w.effective_at,
                )
            rollback = successor.source == "rollback" and (successor.rollback_of or 0) < record.version
            states[key] = VersionState(
                ROLLED_BACK if rollback else SUPERSEDED, successor.version, never[record.version]
            )
    return states


def _number(record: VersionRecord) -> int:
    return record.version


class BookFactory:
    """Parses stored ruleset texts once per (name, version, content) and builds `RuleBook`s from them.

    Kinds and calendars come from the deployment's rules folder; rulesets come from the database.
    Thread-safe; books are cached (LRU) by the exact combination of ruleset versions they hold.
    """

    def __init__(self, folder: RulesFolder) -> None:
        self.kinds = folder.kinds
        self.calendars: Mapping[str, BusinessCalendar] = dict(folder.calendars)
        self._rulesets: dict[tuple[str, int, str], Ruleset] = {}
        self._books: OrderedDict[tuple[tuple[str, int, str], ...], RuleBook] = OrderedDict()
        self._lock = threading.RLock()

    def parse(
        self, name: str, text: str, version: int = DRAFT_VERSION
    ) -> tuple[Ruleset | None, list[RulesetError]]:
        """The ruleset, or every authoring error (`file:line:col` in `<name>.yaml`)."""
        key = (name, version, content_hash(text))
        with self._lock:
            cached = self._rulesets.get(key)
        if cached is not None:
            return cached, []
        rulesets, errors = load_ruleset_sources({name: (text, version)}, self.kinds, self.calendars)
        if errors or name not in rulesets:
            return None, errors
        with self._lock:
            self._rulesets[key] = rulesets[name]
        return rulesets[name], []

    def ruleset(self, name: str, text: str, version: int = DRAFT_VERSION) -> Ruleset:
        ruleset, errors = self.parse(name, text, version)
        if ruleset is None:
            raise InvalidRulesetError(errors)
        return ruleset

    def stored(self, record: VersionRecord) -> Ruleset:
        return self.ruleset(record.name, record.content, record.version)

    def book(self, rulesets: Mapping[str, Ruleset]) -> RuleBook:
        key = tuple(sorted((name, r.version, r.content_hash) for name, r in rulesets.items()))
        with self._lock:
            cached = self._books.get(key)
            if cached is not None:
                self._books.move_to_end(key)
                return cached
            book = RuleBook(
                RulesFolder(
                    kinds=self.kinds, calendars=dict(self.calendars), rulesets=dict(rulesets), case_files=[]
                )
            )
            self._books[key] = book
            while len(self._books) > _BOOK_CACHE_SIZE:
                self._books.popitem(last=False)
            return book

    def book_of(self, records: Mapping[str, VersionRecord]) -> RuleBook:
        return self.book({name: self.stored(record) for name, record in records.items()})


class BookTimeline:
    """The compiled books of every period between effective times; pure and immutable once built.

    Also an evaluator (for simulation): `evaluate(event)` decides on the book in force at the event's
    `occurred_at`, pending future versions included.
    """

    def __init__(
        self,
        generation: int,
        calendars: Mapping[str, BusinessCalendar],
        versions: Sequence[VersionRecord],
        starts: Sequence[datetime],
        books: Sequence[RuleBook],
        empty: RuleBook,
    ) -> None:
        self.generation = generation
        self.calendars = calendars
        self.versions = tuple(versions)
        self._starts = tuple(starts)
        self._books = tuple(books)
        self._empty = empty

    def at(self, instant: datetime) -> RuleBook:
        index = bisect.bisect_right(self._starts, instant) - 1
        return self._books[index] if index >= 0 else self._empty

    def in_force(self, instant: datetime) -> dict[str, VersionRecord]:
        return in_force(self.versions, instant)

    def latest(self) -> dict[str, VersionRecord]:
        return latest(self.versions)

    @property
    def periods(self) -> list[tuple[datetime, dict[str, int]]]:
        return [(start, book.versions()) for start, book in zip(self._starts, self._books, strict=True)]

    def evaluate(self, event: Event) -> Decision:
        return self.at(event.occurred_at).evaluate(event)


def build_timeline(factory: BookFactory, versions: Sequence[VersionRecord]) -> BookTimeline:
    """Compile every period; raises InvalidRulesetError if a stored version no longer compiles (e.g. the
    deployment's kinds changed incompatibly): a replica must not decide on a partial history."""
    starts: list[datetime] = []
    books: list[RuleBook] = []
    errors: list[RulesetError] = []
    for record in versions:
        _, found = factory.parse(record.name, record.content, record.version)
        errors.extend(found)
    if errors:
        raise InvalidRulesetError(errors)
    for start in sorted({record.effective_at for record in versions}):
        book = factory.book_of(in_force(versions, start))
        if books and books[-1] is book:
            continue  # e.g. a superseded version's start: nothing changes
        starts.append(start)
        books.append(book)
    generation = max((record.seq for record in versions), default=0)
    return BookTimeline(generation, factory.calendars, versions, starts, books, factory.book({}))
