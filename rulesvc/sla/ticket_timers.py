"""One ticket's SLA timers during one unit of work (an event, or a poll firing due points).

Pure. The ticket's timers are the `rulesvc.sla.event_time.replay` of its journal (event time, not arrival
order); this module adds what durability needs: the journal and the points already *emitted* (fired as
decisions) kept on the ticket row, the stored form of each timer (its next point to fire), the SLA figures
to write, and corrections. After a unit of work:
- a point the timeline reaches but that was not emitted yet is due now (the poller fires it at once);
- a point that was emitted but that the timeline no longer reaches (a late event changed the past) is
  *retracted*: the unit of work's decision gets an `sla_corrected` action naming the decisions it
  supersedes, and the timer's SLA figure is rewritten (the decision is chained like every decision).
The simulation runs the same class on a virtual clock, so service and simulation move deadlines identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from rulesvc.model import Action, Decision
from rulesvc.sla.calendar import BusinessCalendar
from rulesvc.sla.calendar_versions import CalendarTimeline
from rulesvc.sla.coverage import provisional_fields
from rulesvc.sla.event_time import (
    RESTORE,
    TIMER_ACTIONS,
    JournalEntry,
    Reached,
    Replay,
    RestoredTimer,
    entry_from_json,
    entry_to_json,
    journal_of,
    outcome_to_json,
    replay,
    restore,
)
from rulesvc.sla.outcomes import SlaOutcome
from rulesvc.sla.timers import CANCELLED, RUNNING, TimerState, resumed_warnings

SNAPSHOT_AT = "snapshot_at"
"""Timeline key: the `occurred_at` the ticket's stored snapshot is as of (`rulesvc.decisions.ticket_work`)."""
CORRECTED = "sla_corrected"
RESCHEDULE = "reschedule_timer"


@dataclass(frozen=True)
class ScheduledTimer:
    """A timer as stored: its state, generation and the next point the scheduler must fire.

    `next_fire_at`/`next_point` are None when nothing is left to fire; `due_at` is the deadline of a
    running timer; `stopped_at` is set once a breached timer was stopped (its breach is closed).
    `provisional` is true when a pending point lies past the calendar's confirmed coverage;
    `calendar_version` is the calendar version its points were computed on.
    """

    state: TimerState
    generation: int
    next_fire_at: datetime | None = None
    next_point: str | None = None
    due_at: datetime | None = None
    stopped_at: datetime | None = None
    provisional: bool = False
    calendar_version: int | None = None

    @property
    def name(self) -> str:
        return self.state.name


def schedule(
    state: TimerState, generation: int, calendar: BusinessCalendar, stopped_at: datetime | None = None
) -> ScheduledTimer:
    """The stored form of `state`, with its next point computed on its calendar."""
    points = state.pending_points(calendar)
    next_at, next_point = points[0] if points else (None, None)
    due_at = state.due_at(calendar) if state.status == RUNNING else None
    provisional = any(calendar.is_provisional(at) for at, _ in points)
    return ScheduledTimer(
        state, generation, next_at, next_point, due_at, stopped_at, provisional, calendar.version
    )


def reschedule(stored: ScheduledTimer, due: datetime, planned: BusinessCalendar, now: datetime) -> Action:
    """The `reschedule_timer` action of a running timer whose deadline moved from its stored one to
    `due` on `planned` (`late` when already past at `now`)."""
    assert stored.due_at is not None
    params: dict[str, Any] = {
        "timer": stored.name,
        "due_at": due,
        "previous_due_at": stored.due_at.astimezone(planned.tz),
        "calendar": stored.state.calendar,
        "calendar_version": planned.version,
        "previous_calendar_version": stored.calendar_version,
    }
    if due <= now:
        params["late"] = True
    if planned.is_provisional(due):
        params["provisional"] = True
    return Action(RESCHEDULE, params, stored.state.rule)


@dataclass(frozen=True)
class Emission:
    """A timer point fired as a decision (`retracted` once the timeline no longer reaches it)."""

    timer: str
    origin: str
    generation: int
    point: str
    at: datetime
    decision_id: str
    retracted: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.timer, self.origin, self.point)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "timer": self.timer,
            "origin": self.origin,
            "generation": self.generation,
            "point": self.point,
            "at": self.at.isoformat(),
            "decision_id": self.decision_id,
        }
        if self.retracted:
            data["retracted"] = True
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Emission:
        return Emission(
            str(data["timer"]),
            str(data["origin"]),
            int(data["generation"]),
            str(data["point"]),
            datetime.fromisoformat(data["at"]),
            str(data.get("decision_id", "")),
            bool(data.get("retracted", False)),
        )


class TicketTimers:
    """A working copy of one ticket's timers; `now` is the horizon up to which points are reached."""

    def __init__(
        self,
        ticket_id: str,
        timers: Iterable[ScheduledTimer],
        calendars: Mapping[str, BusinessCalendar],
        timeline: Mapping[str, Any] | None = None,
    ) -> None:
        self.ticket_id = ticket_id
        self._stored = {timer.name: timer for timer in timers}
        self._cache: tuple[datetime | None, Replay] | None = None
        timeline = timeline or {}
        self.snapshot_at: str | None = timeline.get(SNAPSHOT_AT)
        """Kept in the timeline as it is (the unit of work on the snapshot sets it)."""
        self._all = calendars
        # The calendar versions this ticket's timers are planned on (see `rebind`): the newest of the one
        # recorded in the timeline and those its stored timers were planned on (a re-plan moves the open
        # timers' rows to a new version without rewriting the timeline: both are sealed), else the latest
        # (a new ticket).
        self._bound: dict[str, int] = {
            str(name): int(version) for name, version in (timeline.get("calendars") or {}).items()
        }
        for timer in self._stored.values():
            if timer.calendar_version is not None:
                calendar = timer.state.calendar
                self._bound[calendar] = max(self._bound.get(calendar, 0), timer.calendar_version)
        self._calendars = self._bind()
        if "journal" in timeline:
            self._journal = [entry_from_json(e) for e in timeline["journal"]]
            self._emitted = [Emission.from_json(e) for e in timeline.get("emitted", ())]
            self._old_outcomes: dict[tuple[str, int], dict[str, Any]] = {
                (str(o["timer"]), int(o["generation"])): {k: v for k, v in o.items()}
                for o in timeline.get("outcomes", ())
            }
        else:  # timers stored without a journal (imported, or written by an older version)
            self._journal = [_restore_entry(timer) for timer in self._stored.values()]
            restored = Replay()
            for entry in self._journal:  # what each stored timer had fired and recorded
                restore(restored, entry, self._calendars)
            self._emitted = [
                Emission(r.timer, r.origin, r.generation, r.point, r.at, "") for r in restored.reached
            ]
            self._old_outcomes = {key: _outcome_json(o) for key, o in restored.outcomes.items()}
        self._stored_figures = {
            key: {k: v for k, v in o.items() if k not in ("timer", "generation")}
            for key, o in self._old_outcomes.items()
        }

    # -- reads --------------------------------------------------------------------------------------------

    def replay(self, now: datetime | None) -> Replay:
        return self._replay_at(now)

    def state(self, name: str, now: datetime | None) -> TimerState | None:
        run = self._replay_at(now).timers.get(name)
        return run.state if run is not None else None

    def generation(self, name: str, now: datetime | None) -> int:
        run = self._replay_at(now).timers.get(name)
        return run.generation if run is not None else 0

    def outcomes(self, now: datetime | None) -> list[SlaOutcome]:
        return [o for _, o in sorted(self._replay_at(now).outcomes.items())]

    def next_due(self, now: datetime) -> Reached | None:
        """The earliest point the timeline reaches by `now` that was not emitted yet."""
        emitted = {e.key for e in self._emitted if not e.retracted}
        for reached in self._replay_at(now).reached:
            if reached.key not in emitted:
                return reached
        return None

    def emissions(self, reached: Reached) -> int:
        """How often this timer's point of this generation was emitted before (retracted ones included)."""
        return sum(
            1
            for e in self._emitted
            if (e.timer, e.generation, e.point) == (reached.timer, reached.generation, reached.point)
        )

    # -- calendar versions --------------------------------------------------------------------------------

    def _bind(self) -> dict[str, BusinessCalendar]:
        return {
            name: calendar.upto(self._bound.get(name)) if isinstance(calendar, CalendarTimeline) else calendar
            for name, calendar in self._all.items()
        }

    def rebind(self, calendar: str, now: datetime) -> list[Action]:
        """Re-plan the timers on `calendar` on its latest version: the working time each consumed so far
        stays (it was measured on the versions then in force), the points after the new version takes
        effect move. Returns a `reschedule_timer` action per running timer whose deadline moved (a paused
        timer stays paused with no deadline; a deadline now past fires at the next poll, marked late)."""
        latest = self._all.get(calendar)
        if latest is None:
            return []
        self._bound[calendar] = latest.version
        self._calendars = self._bind()
        self._cache = None
        actions = []
        # the journal's end state (no point fired past its last entry): a deadline now past is still due
        for name, run in sorted(replay(self.ticket_id, self._journal, self._calendars, None).timers.items()):
            stored = self._stored.get(name)
            if run.state.calendar != calendar or run.state.status != RUNNING or stored is None:
                continue
            if stored.state.status != RUNNING:
                continue
            planned = self._calendars[calendar]
            due = run.state.due_at(planned)
            if stored.due_at is None or stored.due_at == due:
                continue
            actions.append(reschedule(stored, due, planned, now))
        return actions

    # -- changes ------------------------------------------------------------------------------------------

    def apply(self, decision: Decision, at: datetime, now: datetime) -> Decision:
        """Journal the decision's timer actions at `at` (its event's `occurred_at`, or a timer point's time)
        and recompute the timeline up to `now`. Returns the decision without the timer actions that changed
        nothing where they take effect in event time (a stop of a timer never started, a resume of a timer
        already fired or stopped, a second creation's start: `Replay.effective`; they stay in the journal,
        where an event arriving later may give them an effect), with resume actions carrying their new
        `due_at` (only when the timer then runs: never a deadline in the past) and an `sla_corrected` action
        per timer whose emitted points or recorded figure this changed. An action of a rule that waits for
        a field change (`Action.on`) stands only where that change happens in event time; the event's
        values of such fields (`Decision.watched`) are journaled with it."""
        actions = journal_of(decision.actions)
        if not (actions or decision.watched) or any(
            e.source == decision.event.event_id for e in self._journal
        ):
            return decision
        if decision.event.ticket_id != self.ticket_id:
            raise ValueError(
                f"decision for ticket {decision.event.ticket_id!r} applied to {self.ticket_id!r}"
            )
        source = decision.event.event_id
        entry = JournalEntry(at, source, decision.event.type, actions, fields=dict(decision.watched))
        self._journal.append(entry)
        self._cache = None
        result = self._replay_at(now)
        answered: list[Action] = []
        index = -1
        happened = result.changes.get(source, frozenset())
        for action in decision.actions:
            if action.type in TIMER_ACTIONS:
                index += 1
                if (source, index) not in result.effective:
                    continue
            elif action.on and happened.isdisjoint(action.on):
                continue
            answered.append(action)
        self._journal[-1] = replace(
            entry, answered=frozenset(i for i in range(len(actions)) if (source, i) in result.effective)
        )
        answered.extend(self._now_effective(result))
        # a rule waiting for a field change that did not happen here did not fire
        stood = [f for f in decision.fired if not (f.on and happened.isdisjoint(f.on))]
        dropped = {(f.ruleset, f.rule) for f in decision.fired} - {(f.ruleset, f.rule) for f in stood}
        trace = tuple(t for t in decision.trace if (t.ruleset, t.rule) not in dropped)
        enriched = []
        for action in answered:
            if action.type == "start_timer" and "due_at" in action.params:
                action = self._planned_start(action, result)
            if action.type == "resume_timer":
                run = result.timers.get(str(action.params.get("timer", "")))
                params = {k: v for k, v in action.params.items() if k != "due_at"}
                if run is not None and run.state.status == RUNNING:
                    calendar = self._calendars[run.state.calendar]
                    due = run.state.due_at(calendar)
                    warnings = resumed_warnings(run.state, calendar)
                    if warnings:
                        params["warnings"] = warnings
                    points = [due, *(w["at"] for w in warnings)]
                    params.update({"due_at": due, **provisional_fields(calendar, points)})
                action = replace(action, params=params)
            enriched.append(action)
        enriched.extend(self._corrections(now))
        return replace(decision, actions=tuple(enriched), fired=tuple(stood), trace=trace)

    def _now_effective(self, result: Replay) -> list[Action]:
        """Timer actions of earlier decisions that changed nothing when they were decided and do now that
        this decision's event took its place before them (a resume that arrived before its pause, a stop
        before its start): answered with this decision, once, naming their own event and time."""
        late: list[tuple[tuple[datetime, int, str], int, Action]] = []
        for position, entry in enumerate(self._journal):
            found = [
                i
                for i in range(len(entry.actions))
                if entry.unanswered(i) and (entry.source, i) in result.effective
            ]
            if not found:
                continue
            assert entry.answered is not None
            self._journal[position] = replace(entry, answered=entry.answered | set(found))
            for i in found:
                data = dict(entry.actions[i])
                kind, rule = str(data.pop("type")), str(data.pop("rule", ""))
                params = {**data, "event_id": entry.source, "occurred_at": entry.at}
                late.append((entry.sort_key(), i, Action(kind, params, rule)))
        return [action for _, _, action in sorted(late, key=lambda item: item[:2])]

    def _planned_start(self, action: Action, result: Replay) -> Action:
        """A start whose deadline the timer does not follow (a calendar version published after the event
        occurred takes effect before the deadline) carries the deadline the timer follows: the working time
        up to the new version's effective time counts on the old version, the rest on the new one."""
        run = result.timers.get(str(action.params.get("timer", "")))
        calendar = self._calendars.get(run.state.calendar) if run is not None else None
        if run is None or calendar is None or not isinstance(calendar, CalendarTimeline):
            return action
        if run.state.started_at != action.params.get("started_at", run.state.started_at):
            return action
        due = run.state.due_at(calendar)
        if due == action.params["due_at"] or run.state.status != RUNNING:
            return action
        params = {k: v for k, v in action.params.items() if k not in ("provisional", "calendar_version")}
        params.update(
            {"due_at": due, "calendar_version": calendar.version, **provisional_fields(calendar, [due])}
        )
        return replace(action, params=params)

    def fire(self, reached: Reached, decision_id: str) -> None:
        """Record that `reached` was emitted as decision `decision_id`."""
        self._emitted.append(
            Emission(
                reached.timer, reached.origin, reached.generation, reached.point, reached.at, decision_id
            )
        )

    def _corrections(self, now: datetime) -> list[Action]:
        result = self._replay_at(now)
        reached = {r.key for r in result.reached}
        retracted: dict[str, list[Emission]] = {}
        for index, emission in enumerate(self._emitted):
            if not emission.retracted and emission.key not in reached:
                self._emitted[index] = replace(emission, retracted=True)
                retracted.setdefault(emission.timer, []).append(emission)
        changed: dict[str, list[tuple[int, dict[str, Any] | None, SlaOutcome | None]]] = {}
        for key, old in self._old_outcomes.items():
            new = result.outcomes.get(key)
            # a final figure (stopped) that changed, or any figure of a timer whose points were retracted;
            # an open breach nobody was told about yet (its point not emitted) is silently re-decided
            final = old.get("stopped_at") is not None or key[0] in retracted
            if final and _is_correction(old, new):
                changed.setdefault(key[0], []).append((key[1], old, new))
        actions = []
        for timer in sorted(set(retracted) | set(changed)):
            run = result.timers.get(timer)
            tz = self._calendars[run.state.calendar].tz if run is not None else None
            params: dict[str, Any] = {
                "timer": timer,
                "supersedes": [
                    {"decision_id": e.decision_id, "point": e.point, "at": e.at.astimezone(tz)}
                    for e in retracted.get(timer, ())
                ],
                "figures": [
                    {
                        "generation": generation,
                        "was": _figure(old, tz),
                        "now": _figure(_outcome_json(new) if new is not None else None, tz),
                    }
                    for generation, old, new in changed.get(timer, ())
                ],
            }
            actions.append(Action(CORRECTED, params, run.state.rule if run is not None else ""))
        # the corrections are recorded: the next unit of work compares with these figures
        self._old_outcomes = {key: _outcome_json(o) for key, o in result.outcomes.items()}
        return actions

    def changes(self, now: datetime) -> list[ScheduledTimer]:
        """Every timer whose stored form differs from what the timeline says at `now`."""
        result = self._replay_at(now)
        emitted = {e.key for e in self._emitted if not e.retracted}
        due: dict[str, Reached] = {}
        for reached in result.reached:
            if reached.key not in emitted and reached.timer not in due:
                due[reached.timer] = reached
        rows = []
        for name, run in sorted(result.timers.items()):
            timer = schedule(run.state, run.generation, self._calendars[run.state.calendar], run.stopped_at)
            if name in due:
                timer = replace(timer, next_fire_at=due[name].at, next_point=due[name].point)
            later = result.next_entry_at
            if later is not None and (timer.next_fire_at is None or later < timer.next_fire_at):
                timer = replace(timer, next_fire_at=later, next_point=None)  # look again when it counts
            if self._stored.get(name) != timer:
                rows.append(timer)
        for name, stored in sorted(self._stored.items()):
            if name not in result.timers and (
                stored.next_fire_at is not None or stored.state.status != CANCELLED
            ):
                state = replace(stored.state, status=CANCELLED)
                rows.append(ScheduledTimer(state, stored.generation, stopped_at=stored.stopped_at))
        return rows

    def sla_changes(self, now: datetime) -> tuple[list[SlaOutcome], list[SlaOutcome], list[tuple[str, int]]]:
        """(figures to insert, figures to update, (timer, generation) of figures to delete) relative to the
        figures stored before this unit of work."""
        stored = self._stored_figures
        current = self._replay_at(now).outcomes
        inserts = [o for key, o in sorted(current.items()) if key not in stored]
        updates = [
            o for key, o in sorted(current.items()) if key in stored and stored[key] != _outcome_json(o)
        ]
        deletes = sorted(key for key in stored if key not in current)
        return inserts, updates, deletes

    def timeline_json(self, now: datetime) -> dict[str, Any]:
        """The ticket's stored timeline: journal, emitted points and the SLA figures recorded at `now`."""
        used = {run.state.calendar for run in self._replay_at(now).timers.values()}
        bound = {
            name: self._calendars[name].version
            for name in sorted(used)
            if isinstance(self._calendars.get(name), CalendarTimeline)
        }
        return {
            **({"calendars": bound} if bound else {}),
            **({SNAPSHOT_AT: self.snapshot_at} if self.snapshot_at is not None else {}),
            "journal": [entry_to_json(e) for e in sorted(self._journal, key=JournalEntry.sort_key)],
            "emitted": [e.to_json() for e in self._emitted],
            "outcomes": [
                {"timer": timer, "generation": generation, **_outcome_json(o)}
                for (timer, generation), o in sorted(self._replay_at(now).outcomes.items())
            ],
        }

    def _replay_at(self, now: datetime | None) -> Replay:
        if self._cache is None or self._cache[0] != now:
            self._cache = (now, replay(self.ticket_id, self._journal, self._calendars, now))
        return self._cache[1]


def _restore_entry(timer: ScheduledTimer) -> JournalEntry:
    source = f"{RESTORE}:{timer.name}:{timer.generation}"
    return JournalEntry(
        timer.state.started_at,
        source,
        RESTORE,
        restored=RestoredTimer(timer.state, timer.generation, timer.stopped_at),
    )


def _outcome_json(outcome: SlaOutcome) -> dict[str, Any]:
    return outcome_to_json(outcome)


def _is_correction(old: Mapping[str, Any], new: SlaOutcome | None) -> bool:
    """A recorded figure the timeline now contradicts (closing an open breach is not a correction)."""
    if new is None:
        return True
    fresh = _outcome_json(new)
    if old["outcome"] != fresh["outcome"] or old["due_at"] != fresh["due_at"]:
        return True
    return old.get("stopped_at") is not None and any(
        old.get(k) != fresh[k] for k in ("stopped_at", "remaining_us", "breach_us")
    )


def _figure(data: Mapping[str, Any] | None, tz: tzinfo | None) -> dict[str, Any] | None:
    """A recorded SLA figure as the correction shows it (times in the timer calendar's zone)."""
    if data is None:
        return None

    def local(text: str) -> str:
        return datetime.fromisoformat(text).astimezone(tz).isoformat()

    figure: dict[str, Any] = {"outcome": data["outcome"], "due_at": local(data["due_at"])}
    if data.get("stopped_at") is not None:
        figure["stopped_at"] = local(data["stopped_at"])
    if data["outcome"] == "met":
        figure["remaining_seconds"] = data["remaining_us"] / 1e6
    elif data.get("stopped_at") is not None:
        figure["breach_seconds"] = data["breach_us"] / 1e6
    return figure


__all__ = [
    "CORRECTED",
    "RESCHEDULE",
    "TIMER_ACTIONS",
    "Emission",
    "ScheduledTimer",
    "TicketTimers",
    "reschedule",
    "schedule",
]
