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
from rulesvc.sla.calendar_file import parse_calendar_text
from rulesvc.sla.calendar_versions import CalendarTimeline

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
    """Parses stored ruleset and calendar texts once per (name, version, content) and builds `RuleBook`s.

    Kinds come from the deployment's rules folder; rulesets and calendars from the database (a calendar
    no version exists of, such as the built-in `24x7`, from the folder). Thread-safe; books are cached
    (LRU) by the exact combination of ruleset and calendar versions they hold.
    """

    def __init__(self, folder: RulesFolder) -> None:
        self.kinds = folder.kinds
        self.folder_calendars: Mapping[str, BusinessCalendar] = dict(folder.calendars)
        self.calendars: Mapping[str, BusinessCalendar] = dict(folder.calendars)
        """The calendars rulesets are checked against: the folder's and the latest stored versions."""
        self._rulesets: dict[tuple[str, int, str], Ruleset] = {}
        self._calendars: dict[tuple[str, int, str], BusinessCalendar] = {}
        self._books: OrderedDict[tuple[tuple[tuple[str, int, str], ...], ...], RuleBook] = OrderedDict()
        self._lock = threading.RLock()

    def parse_calendar(
        self, name: str, text: str, version: int = DRAFT_VERSION
    ) -> tuple[BusinessCalendar | None, list[RulesetError]]:
        """The calendar numbered `version`, or every authoring error (`file:line:col` in `<name>.yaml`);
        the file's `name:` must be `name`."""
        key = (name, version, content_hash(text))
        with self._lock:
            cached = self._calendars.get(key)
        if cached is not None:
            return cached, []
        calendar, errors, where = parse_calendar_text(f"{name}.yaml", text, version)
        if calendar is not None and calendar.name != name:
            errors = [
                RulesetError(
                    "calendar.name_mismatch",
                    f"文件中的日历名称 {calendar.name!r} 与 {name!r} 不一致",
                    where,
                    f"写成 name: {name}",
                )
            ]
        if errors or calendar is None:
            return None, errors
        with self._lock:
            self._calendars[key] = calendar
        return calendar, []

    def stored_calendar(self, record: VersionRecord) -> BusinessCalendar:
        calendar, errors = self.parse_calendar(record.name, record.content, record.version)
        if calendar is None:
            raise InvalidRulesetError(errors)
        return calendar

    def use_calendars(self, records: Iterable[VersionRecord]) -> None:
        """Check rulesets against the folder's calendars and the latest stored version of each calendar."""
        self.calendars = {
            **self.folder_calendars,
            **{name: self.stored_calendar(r) for name, r in latest(records).items()},
        }

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

    def book(
        self, rulesets: Mapping[str, Ruleset], calendars: Mapping[str, BusinessCalendar] | None = None
    ) -> RuleBook:
        """A book of `rulesets` on `calendars` (default: the ones rulesets are checked against)."""
        calendars = self.calendars if calendars is None else calendars
        key = (
            tuple(sorted((name, r.version, r.content_hash) for name, r in rulesets.items())),
            tuple(sorted((name, c.version, str(id(c))) for name, c in calendars.items())),
        )
        with self._lock:
            cached = self._books.get(key)
            if cached is not None:
                self._books.move_to_end(key)
                return cached
            book = RuleBook(
                RulesFolder(
                    kinds=self.kinds, calendars=dict(calendars), rulesets=dict(rulesets), case_files=[]
                )
            )
            self._books[key] = book
            while len(self._books) > _BOOK_CACHE_SIZE:
                self._books.popitem(last=False)
            return book

    def book_of(
        self, records: Mapping[str, VersionRecord], calendars: Mapping[str, VersionRecord] | None = None
    ) -> RuleBook:
        """The book of these ruleset versions on the folder's calendars with `calendars` versions in place."""
        on = {
            **self.folder_calendars,
            **{name: self.stored_calendar(r) for name, r in (calendars or {}).items()},
        }
        return self.book({name: self.stored(record) for name, record in records.items()}, on)


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
        calendar_versions: Sequence[VersionRecord] = (),
        planning: Mapping[str, BusinessCalendar] | None = None,
    ) -> None:
        self.generation = generation
        self.calendars = calendars
        """The calendars of the last period (simulation's timers run on them)."""
        self.versions = tuple(versions)
        self.calendar_versions = tuple(calendar_versions)
        self.planning: Mapping[str, BusinessCalendar] = planning if planning is not None else calendars
        """What timers are planned on: each versioned calendar as a `CalendarTimeline` of its versions."""
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


def build_timeline(
    factory: BookFactory,
    versions: Sequence[VersionRecord],
    calendar_versions: Sequence[VersionRecord] = (),
) -> BookTimeline:
    """Compile every period (a period starts whenever a ruleset or calendar version takes effect); raises
    InvalidRulesetError if a stored version no longer compiles (e.g. the deployment's kinds changed
    incompatibly): a replica must not decide on a partial history."""
    starts: list[datetime] = []
    books: list[RuleBook] = []
    errors: list[RulesetError] = []
    for record in calendar_versions:
        errors.extend(factory.parse_calendar(record.name, record.content, record.version)[1])
    if errors:
        raise InvalidRulesetError(errors)
    factory.use_calendars(calendar_versions)
    for record in versions:
        _, found = factory.parse(record.name, record.content, record.version)
        errors.extend(found)
    if errors:
        raise InvalidRulesetError(errors)
    instants = {record.effective_at for record in versions}
    instants |= {record.effective_at for record in calendar_versions}
    for start in sorted(instants):
        book = factory.book_of(in_force(versions, start), in_force(calendar_versions, start))
        if books and books[-1] is book:
            continue  # e.g. a superseded version's start: nothing changes
        starts.append(start)
        books.append(book)
    generation = max((record.seq for record in (*versions, *calendar_versions)), default=0)
    empty = factory.book({})
    by_name: dict[str, list[tuple[datetime, BusinessCalendar]]] = {}
    for record in calendar_versions:
        by_name.setdefault(record.name, []).append((record.effective_at, factory.stored_calendar(record)))
    planning = {
        **factory.folder_calendars,
        **{name: CalendarTimeline.of(items) for name, items in by_name.items()},
    }
    return BookTimeline(
        generation,
        books[-1].calendars if books else empty.calendars,
        versions,
        starts,
        books,
        empty,
        calendar_versions,
        planning,
    )
