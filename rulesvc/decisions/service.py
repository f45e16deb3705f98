"""Use cases of the decision service: decide an event (idempotently), read decisions, the action feed,
verify the audit chain, simulate, and manage API keys.

Depends only on ports: an evaluator (the `RuleBook`), a `DecisionStore`/`KeyStore`, a `Clock` and a
`MaskPolicy`. No HTTP here; `api/` maps these results and errors to responses.

`decide` (awaitable, what `POST /v1/events` calls) contract:
- the event is validated (`InvalidEventError` with a field path) and evaluated outside any database lock;
- the decision, its actions (feed) and its audit entry are committed in one transaction;
- `event_id` is unique: the same event again (same canonical body) returns the original decision and
  stores nothing new; a different body under a known `event_id` raises `IdempotencyConflictError`; racing
  twins are settled under the chain-head lock, so exactly one decision is stored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from rulesvc import exactjson
from rulesvc.apikeys import Principal, Role, generate_key, hash_key, key_id_of, matches
from rulesvc.audit.chain import (
    KIND_CLEAR_READ,
    KIND_KEY,
    BrokenEntry,
    VerifyResult,
    canonical,
    check_record,
    sha256_hex,
    verify_chain,
)
from rulesvc.audit.chain import Problem as ChainProblem
from rulesvc.audit.checkpoints import Checkpoint, CheckpointError, CheckpointKeeper
from rulesvc.audit.evidence import EvidenceReader, check_feed, verify_rows
from rulesvc.decisions.ports import DecisionStore, KeyStore, NewDecision, StoredDecision
from rulesvc.decisions.record import DecisionRecorder, decision_payload, record_json
from rulesvc.decisions.search import MAX_LIMIT, RULE_TERM, Cursor, DecisionQuery
from rulesvc.decisions.ticket_reports import TicketReport
from rulesvc.decisions.ticket_timeline import ticket_timeline
from rulesvc.decisions.ticket_work import EventTicketWork, touches_timers
from rulesvc.delivery.notify import ACTIONS, TIMERS, Notifier
from rulesvc.entropy import uuid4
from rulesvc.errors import InvalidEventError, Problem, RulesvcError
from rulesvc.fieldclasses import ClassMasking
from rulesvc.lang.model import KindSchema
from rulesvc.masking import MaskPolicy
from rulesvc.model import Decision, Event
from rulesvc.opsstate import LATE_AFTER
from rulesvc.people.access import key_principal
from rulesvc.people.model import ApiKeyRecord
from rulesvc.people.ports import KIND_USER
from rulesvc.sla.clock import Clock
from rulesvc.sla.ticket_timers import TIMER_ACTIONS
from rulesvc.tracing import DECIDE, EVALUATE, NO_TRACING, STORE, Span, Tracer
from rulesvc.validation import DEFAULT_LIMITS, CheckedEvent, Limits, read_event, same_meaning


class Evaluator(Protocol):
    def evaluate(self, event: Event) -> Decision: ...

    def book_for(self, event: Event) -> Evaluator:
        """The evaluator for this event (the ruleset versions in force at its time), used for the whole
        decision: evaluation and the versions recorded."""
        ...

    def versions(self) -> dict[str, int]: ...

    @property
    def kinds(self) -> Mapping[str, KindSchema]:
        """The ticket kinds (schemas) events are validated against."""
        ...


DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock an event's `occurred_at` may be (Settings.event_clock_skew)."""

# rulesvc.sla.simulation.simulate: (book, events, until) -> a timeline with `to_json()` (or the JSON itself).
Simulator = Callable[[Any, Sequence[Event], datetime], Any]


class IdempotencyConflictError(RulesvcError):
    """The event_id is known but arrived with a different body."""

    code = "idempotency_conflict"

    def __init__(self, event_id: str, decision_id: str) -> None:
        self.event_id = event_id
        self.decision_id = decision_id
        super().__init__(f"event_id {event_id!r} 已用于另一个不同内容的事件（决策 {decision_id}）")


class ClockSkewError(InvalidEventError):
    """`occurred_at` further ahead of the server's clock than the tolerated skew."""

    code = "event.clock_skew"

    def __init__(self, occurred_at: datetime, now: datetime, tolerance: timedelta) -> None:
        self.occurred_at = occurred_at
        self.now = now
        self.tolerance = tolerance
        self.ahead_seconds = ahead = (occurred_at - now).total_seconds()
        super().__init__(
            f"occurred_at 比服务器时间超前 {ahead:.0f} 秒，超过允许的时钟偏差 {tolerance.total_seconds():.0f} 秒"
            f"（RULESVC_EVENT_CLOCK_SKEW）；请校准发送方时钟（NTP）",
            "occurred_at",
        )


class DecisionNotFoundError(RulesvcError):
    code = "not_found"

    def __init__(self, decision_id: str) -> None:
        self.decision_id = decision_id
        super().__init__(f"决策 {decision_id!r} 不存在")


@dataclass(frozen=True)
class EventOutcome:
    """The answer to one event; `created` is False for an idempotent replay."""

    decision_id: str
    event_id: str
    ticket_id: str
    actions: list[dict[str, Any]]
    fired: list[dict[str, Any]]
    created: bool
    ahead_seconds: float | None = None
    """How far the event's `occurred_at` was ahead of the server's clock when decided (negative: behind,
    i.e. delivered late or from a slow clock); None for a replay. For the clock-skew metric."""

    def to_json(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "event_id": self.event_id,
            "ticket_id": self.ticket_id,
            "actions": self.actions,
            "fired": self.fired,
        }


@dataclass(frozen=True)
class PreparedEvent:
    """An evaluated event whose decision is ready to be stored."""

    new: NewDecision
    clear_text: str
    fired: list[dict[str, Any]]
    body: Mapping[str, Any]
    ahead_seconds: float | None = None
    timed: bool = False
    """The ticket's timers decided the final actions (`touches_timers`): answer what the store recorded."""


@dataclass(frozen=True)
class FeedItem:
    cursor: int
    at: datetime
    ticket_id: str
    decision_id: str
    action: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "at": self.at.isoformat(),
            "ticket_id": self.ticket_id,
            "decision_id": self.decision_id,
            "action": self.action,
        }


class DecisionService:
    def __init__(
        self,
        store: DecisionStore,
        keys: KeyStore,
        book: Evaluator,
        clock: Clock,
        masking: MaskPolicy,
        simulator: Simulator | None = None,
        key_cache_seconds: float = 1.0,
        engine_lock: threading.Lock | None = None,
        notifier: Notifier | None = None,
        limits: Limits = DEFAULT_LIMITS,
        evidence: EvidenceReader | None = None,
        checkpoints: CheckpointKeeper | None = None,
        more_checks: Sequence[Callable[[], list[ChainProblem]]] = (),
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        evaluate_in_thread: bool = False,
        classes: ClassMasking | None = None,
        tracer: Tracer = NO_TRACING,
    ) -> None:
        """`evaluate_in_thread`: `decide` evaluates in a worker thread rather than on the event loop
        (Settings.evaluate_in_thread). `evidence`: feed records are checked against the chain before they are served, and `verify`
        checks the feed and webhook bodies; `checkpoints` are made on demand and held against the chain;
        `more_checks` add other tables' problems (ruleset versions) to `verify`."""
        self.limits = limits
        self.store = store
        self.evidence = evidence
        self.checkpoints = checkpoints
        self._more_checks = tuple(more_checks)
        self.clock_skew = clock_skew
        self.evaluate_in_thread = evaluate_in_thread
        self.notifier = notifier
        self.keys = keys
        self.book = book
        self.clock = clock
        self.masking = masking
        self.classes = classes or ClassMasking(masking)
        """Field classes: what each reader gets masked (`rulesvc.fieldclasses`)."""
        self._simulator = simulator
        # The engine may keep per-process state (durable_rules does); evaluate one event at a time, also
        # across services of one process that share this lock (the timer service).
        self._engine_lock = engine_lock or threading.Lock()
        self._key_cache: dict[str, tuple[float, Principal | None]] = {}
        self._key_cache_seconds = key_cache_seconds
        self.tracer = tracer
        """Spans `rulesvc.decide` > `rulesvc.evaluate`, `rulesvc.store` (`rulesvc.tracing`)."""

    # -- events -------------------------------------------------------------------------------------------

    async def decide(self, body: Mapping[str, Any]) -> EventOutcome:
        """Decide one event: validate, evaluate (on the loop, or in a thread), store, answer.

        The store's commit is awaited without holding a thread when it commits in the background (group
        commit): the event loop goes on serving other requests meanwhile."""
        tracer = self.tracer
        with tracer.span(DECIDE) as span:
            if self.evaluate_in_thread:
                prepared = await asyncio.to_thread(self.prepare_event, body)
            else:
                prepared = self.prepare_event(body)
            with tracer.span(STORE) as stored_span:
                stored, created = await self._append(prepared.new)
                stored_span.set("rulesvc.created", created)
            outcome = self.finish_event(prepared, stored, created)
            if tracer.enabled:
                self._describe(span, outcome)
            return outcome

    def handle_event(self, body: Mapping[str, Any]) -> EventOutcome:
        """`decide` for callers without an event loop (the same steps, the commit waited for in place)."""
        tracer = self.tracer
        with tracer.span(DECIDE) as span:
            prepared = self.prepare_event(body)
            with tracer.span(STORE) as stored_span:
                stored, created = self.store.append_decision(prepared.new)
                stored_span.set("rulesvc.created", created)
            outcome = self.finish_event(prepared, stored, created)
            if tracer.enabled:
                self._describe(span, outcome)
            return outcome

    def _describe(self, span: Span, outcome: EventOutcome) -> None:
        """A decide span's attributes: ids (masked as in the feed), rulesets fired with their versions, the
        number of actions; `rulesvc.replay` for an event answered from its stored decision."""
        mask = self.masking.mask_text
        span.set("rulesvc.event_id", mask(outcome.event_id))
        span.set("rulesvc.ticket_id", mask(outcome.ticket_id))
        span.set("rulesvc.decision_id", outcome.decision_id)
        span.set("rulesvc.action_count", len(outcome.actions))
        span.set("rulesvc.replay", not outcome.created)
        versions = {str(f.get("ruleset")): int(f.get("version") or 0) for f in outcome.fired}
        span.set("rulesvc.ruleset", sorted(versions))
        span.set("rulesvc.ruleset_version", [versions[name] for name in sorted(versions)])

    async def _append(self, new: NewDecision) -> tuple[StoredDecision, bool]:
        store = self.store
        if not store.commits_in_background:
            return await asyncio.to_thread(store.append_decision, new)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[StoredDecision, bool]] = loop.create_future()

        def settle(result: tuple[StoredDecision, bool] | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            elif result is not None:
                future.set_result(result)

        def from_writer(result: tuple[StoredDecision, bool] | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, result, error)

        store.append_decision_later(new, from_writer)
        return await future

    def prepare_event(self, body: Mapping[str, Any]) -> PreparedEvent:
        """Validate and evaluate an event and build its record (CPU only, no I/O): step 1 of `decide`.

        No read-before-write: a replay is rare, and the store settles it under the chain lock anyway.
        """
        checked = self.read_event(body)
        event = checked.event
        ahead = event.occurred_at - self.clock.now()
        if ahead > self.clock_skew:
            raise ClockSkewError(event.occurred_at, self.clock.now(), self.clock_skew)
        clear_text = record_json(body)
        book = self.book.book_for(event)  # in force at the event's time; kept for the whole decision
        with self.tracer.span(EVALUATE) as span:
            with self._engine_lock:  # a ticket breaking its schema is routed by its kind's policy (RuleBook)
                decision = book.evaluate(event)
            span.set("rulesvc.kind", event.kind)
        decision_id, decided_at, versions = str(uuid4()), self.clock.now(), book.versions()

        record = DecisionRecorder(  # the masked event and trace made once, if timers change the record too
            decision_id=decision_id,
            body=body,
            event=event,
            decided_at=decided_at,
            versions=versions,
            masking=self.masking,
            clear_text=clear_text,
            problems=[p.to_json() for p in checked.problems],
        )
        new = record(decision)
        # The store runs this under the ticket's lock: timer changes, snapshot, final record (rulesvc.decisions.ticket_work).
        work = EventTicketWork(event, decision, getattr(self.book, "calendars", {}), record, new)
        return PreparedEvent(
            replace(new, ticket_work=work),
            clear_text,
            decision.fired_json(),
            body,
            ahead.total_seconds(),
            touches_timers(decision),
        )

    def read_event(self, body: Any, *, default_id: bool = False) -> CheckedEvent:
        """Validate `body` against its ticket kind (raises `InvalidEventError` listing every problem)."""
        return read_event(
            body, self.book.kinds, now=self.clock.now(), limits=self.limits, default_id=default_id
        )

    def finish_event(self, prepared: PreparedEvent, stored: StoredDecision, created: bool) -> EventOutcome:
        """Step 3 of `decide`, after the store answered `append_decision(prepared.new)`."""
        if not created:
            return self._replay(stored, prepared.clear_text, prepared.body)
        new = prepared.new
        actions = [dict(a) for a in new.actions]
        fired = prepared.fired
        if prepared.timed:  # the store may have set a resume's due_at, added corrections, dropped actions
            record = exactjson.loads(stored.record_text)
            actions = [_action_order(a) for a in record["actions"]]
            fired = record["fired"]
        if not {a.get("type") for a in actions}.isdisjoint(TIMER_ACTIONS):
            self._notify(TIMERS)
        if actions:
            self._notify(ACTIONS)
        return EventOutcome(
            new.decision_id,
            new.event_id,
            new.ticket_id,
            actions,
            fired,
            True,
            prepared.ahead_seconds,
        )

    def _notify(self, topic: str) -> None:
        if self.notifier is not None:
            self.notifier.publish(topic)

    def _replay(self, stored: StoredDecision, clear_text: str, body: Mapping[str, Any]) -> EventOutcome:
        digest = stored.input_digest
        # Inputs stored before records were written by orjson hold the `json` canonical text.
        if (
            sha256_hex(stored.input_salt + clear_text) != digest
            and sha256_hex(stored.input_salt + _legacy_text(body)) != digest
            and not self._same_event(stored.decision_id, body)
        ):
            raise IdempotencyConflictError(stored.event_id, stored.decision_id)
        record = exactjson.loads(stored.record_text)
        actions = [_action_order(a) for a in record["actions"]]
        fired = [{k: f[k] for k in ("ruleset", "version", "rule") if k in f} for f in record["fired"]]
        return EventOutcome(stored.decision_id, stored.event_id, stored.ticket_id, actions, fired, False)

    def _same_event(self, decision_id: str, body: Mapping[str, Any]) -> bool:
        """The retried body means what the stored one meant (same instant, same decimal values), however
        it is spelt (`Z` or `+08:00`, `4999.990` or `4999.99`)."""
        clear = self.store.get_clear_input(decision_id)
        if clear is None:
            return False
        try:
            before = self.read_event(exactjson.loads(clear)).event
        except (InvalidEventError, ValueError):
            return False
        return same_meaning(before, self.read_event(body).event)

    # -- reads --------------------------------------------------------------------------------------------

    def get_decision(self, decision_id: str, principal: Principal) -> dict[str, Any]:
        """The stored decision; personal data masked unless the caller has clearance (then the read is logged)."""
        stored = self.store.get_decision(decision_id)
        if stored is None:
            raise DecisionNotFoundError(decision_id)
        return self._shown(stored, principal)

    def decision_timers(self, decision_id: str, max_decisions: int = 1000) -> dict[str, Any]:
        """The SLA timers of the decision's ticket on a timeline (`rulesvc.decisions.ticket_timeline`),
        read from the ticket's latest `max_decisions` stored decisions. Timer names, points and times only:
        no personal data, so the same for every reader."""
        stored = self.store.get_decision(decision_id)
        if stored is None:
            raise DecisionNotFoundError(decision_id)
        found: list[StoredDecision] = []
        after: Cursor | None = None
        while stored.ticket_id and len(found) < max_decisions:
            page = self.store.search_decisions(
                DecisionQuery(ticket_id=stored.ticket_id, limit=MAX_LIMIT, after=after)
            )
            found.extend(page)
            if len(page) < MAX_LIMIT:
                break
            after = Cursor(page[-1].decided_at, page[-1].chain_seq)
        records = [exactjson.loads(d.record_text) for d in reversed(found[:max_decisions])]
        return {
            "decisions": len(records),
            "truncated": len(found) > max_decisions or len(found) == max_decisions,
            "timezone": "Asia/Shanghai",
            "timers": ticket_timeline(records, stored.ticket_id),
        }

    def search_decisions(self, query: DecisionQuery, principal: Principal) -> dict[str, Any]:
        """`{"records", "next_after"}`: a page of stored decisions, newest first, each exactly as
        `get_decision` shows it (masked unless the caller has clearance; each clear read logged).
        `next_after` is the cursor of the next page, None after the last one."""
        found = self.store.search_decisions(replace(query.checked(), limit=query.limit + 1))
        page = found[: query.limit]
        more = len(found) > query.limit
        return {
            "records": [self._shown(stored, principal) for stored in page],
            "next_after": Cursor(page[-1].decided_at, page[-1].chain_seq).encode() if more else None,
        }

    def rule_hits(self, start: datetime, end: datetime, ruleset: str | None = None) -> dict[str, Any]:
        """Decisions in [start, end) that fired each rule and table row of the rulesets in force (those
        never fired included, with 0), newest versions' rules only; `never_fired` lists them."""
        refs_of = getattr(self.book, "all_refs", None)
        refs: list[str] = list(refs_of()) if callable(refs_of) else []
        if ruleset:
            refs = [ref for ref in refs if ref.split("/", 1)[0] == ruleset]
        counts = self.store.term_counts([RULE_TERM + ref for ref in refs], start, end)
        groups = []
        for ref in refs:
            name, rule = ref.split("/", 1)
            hits = counts.get(RULE_TERM + ref, 0)
            groups.append({"key": {"ruleset": name, "rule": rule}, "hits": hits, "fired": hits > 0})
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "ruleset": ruleset or "",
            "timezone": "Asia/Shanghai",
            "groups": groups,
            "never_fired": [ref for ref in refs if not counts.get(RULE_TERM + ref)],
        }

    def timers_due_report(
        self, within: timedelta, ruleset: str | None = None, group: str | None = None
    ) -> dict[str, Any]:
        """Timer points falling due within `within` from now and those overdue (not fired `LATE_AFTER`
        after their time), by ruleset, routing group, timer and point; `total` sums them."""
        now = self.clock.now()
        groups = self.store.timers_due(now, now + within, LATE_AFTER, ruleset, group)
        groups.sort(key=lambda g: (g["next_at"] or "", *g["key"].values()))
        return {
            "now": now.isoformat(),
            "until": (now + within).isoformat(),
            "ruleset": ruleset or "",
            "group": group or "",
            "timezone": "Asia/Shanghai",
            "groups": groups,
            "total": {
                "due_soon": sum(g["due_soon"] for g in groups),
                "overdue": sum(g["overdue"] for g in groups),
            },
        }

    def late_fires_report(
        self, start: datetime, end: datetime, ruleset: str | None = None, group: str | None = None
    ) -> dict[str, Any]:
        """Timer points fired in [start, end) of decision time and how many of them late (`late_by` ≥
        `LATE_AFTER`, as `rulesvc_timer_late_fires_total` counts), by ruleset, group, timer and point."""
        groups = self.store.late_fires(start, end, LATE_AFTER, ruleset, group)
        groups.sort(key=lambda g: tuple(g["key"].values()))
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "ruleset": ruleset or "",
            "group": group or "",
            "timezone": "Asia/Shanghai",
            "groups": groups,
            "total": {"fired": sum(g["fired"] for g in groups), "late": sum(g["late"] for g in groups)},
        }

    def ticket_reports(self, asked: Sequence[TicketReport]) -> list[dict[str, Any]]:
        """Each ticket report asked for, over the facts of the decisions of its period."""
        return [self.store.ticket_report(one) for one in asked]

    def _shown(self, stored: StoredDecision, principal: Principal) -> dict[str, Any]:
        decision_id = stored.decision_id
        record = exactjson.loads(stored.record_text)
        if principal.clearance:
            clear = self.store.get_clear_input(decision_id)
            if clear is not None:
                record["event"] = exactjson.loads(clear)
            self.store.append_audit(
                self.clock.now().isoformat(),
                KIND_CLEAR_READ,
                decision_id,
                {"decision_id": decision_id, "key_id": principal.key_id, "roles": sorted(principal.roles)},
            )
        else:
            # Every part by what it is, ids included (`event_id` and `ticket_id` may carry personal data),
            # and every field of a class the reader is not granted.
            # The event as the ticket's data, the actions as the rules' output (`MaskPolicy.mask_record`).
            policy = self.classes.for_roles(principal.roles, self.book.kinds) or self.masking
            record = policy.mask_record(record)
        ordered = {key: record[key] for key in _RECORD_ORDER if key in record}
        ordered.update(record)  # anything a newer writer added
        ordered["actions"] = [_action_order(a) for a in record["actions"]]
        ordered["masked"] = not principal.clearance
        ordered["chain"] = {"seq": stored.chain_seq, "hash": stored.chain_hash}
        return ordered

    def list_actions(self, after: int, limit: int) -> list[FeedItem]:
        """The feed after `after`; every action is checked against its decision's chained record first
        (`EvidenceError` stops the read at the first that is not vouched for)."""
        records = self.store.list_actions(after, limit)
        if self.evidence is not None:
            actions = check_feed(self.evidence, records)
        else:
            actions = [exactjson.loads(r.action_text) for r in records]
        # No role that reads the feed holds clearance: ids and actions leave masked by what they are, and
        # fields of a class the feed's role (ingest) is not granted are masked too.
        policy = self.classes.for_roles((Role.INGEST.value,), self.book.kinds) or self.masking
        return [
            FeedItem(r.cursor, r.at, policy.mask_text(r.ticket_id), r.decision_id, policy.mask_action(action))
            for r, action in zip(records, actions, strict=True)
        ]

    # -- audit --------------------------------------------------------------------------------------------

    def verify_audit(self) -> VerifyResult:
        """The chain and decisions, held against every signed checkpoint; then the feed, webhook bodies and
        the other tables the chain vouches for."""
        checked = self.checkpoints.checked() if self.checkpoints is not None else ([], [])
        return verify_all(self.store, self.evidence, checked, self._more_checks, self.masking)

    def administration(self, limit: int = 200) -> list[dict[str, Any]]:
        """Key and user administration as the chain recorded it, newest first: each entry's position and
        time, what changed (`created`, `updated`, `revoked`, `rotated`, `locked`, ...), who did it (`by`)
        and what the row became (name, roles, status; never a secret or its digest)."""
        entries = self.store.latest_audit_entries((KIND_KEY, KIND_USER), limit)
        history = []
        for entry in entries:
            payload = exactjson.loads(entry.payload_text)
            shown = {k: v for k, v in payload.items() if not k.endswith("_sha256")}
            if "kind" in shown:  # a user entry's person / service account
                shown["user_kind"] = shown.pop("kind")
            history.append(
                {**shown, "seq": entry.seq, "at": entry.at, "kind": entry.kind, "subject": entry.subject}
            )
        return history

    def make_checkpoint(self) -> Checkpoint:
        if self.checkpoints is None:
            raise CheckpointError(
                "audit.checkpoints_unconfigured", "未配置检查点目录（RULESVC_CHECKPOINT_DIR）"
            )
        return self.checkpoints.make()

    def latest_checkpoint(self) -> Checkpoint | None:
        if self.checkpoints is None:
            raise CheckpointError(
                "audit.checkpoints_unconfigured", "未配置检查点目录（RULESVC_CHECKPOINT_DIR）"
            )
        return self.checkpoints.latest()

    # -- simulation ---------------------------------------------------------------------------------------

    def simulate(
        self, bodies: Sequence[Mapping[str, Any]], until: datetime, book: Any = None
    ) -> Mapping[str, Any]:
        """Run events and due timers on a virtual clock (on `book`, default the service's); stores nothing."""
        events: list[Event] = []
        problems: list[Problem] = []
        for index, body in enumerate(bodies):
            try:
                checked = self.read_event(body)
            except InvalidEventError as exc:
                found: Sequence[Problem] = exc.problems
            else:  # problems tolerated by the kind's `invalid:` policy are routed, as on ingest
                found = ()
                events.append(checked.event)
            problems.extend(replace(p, path=f"events.{index}.{p.path}".rstrip(".")) for p in found)
        if problems:
            raise InvalidEventError.of(problems)
        simulator = self._simulator or _default_simulator()
        with self._engine_lock:
            result: Any = simulator(book or self.book, events, until)
        timeline = dict(result.to_json() if hasattr(result, "to_json") else result)
        failed = getattr(result, "error", None)
        if failed is not None:  # a rule error: the entries before it travel with the error
            failed.error.timeline = timeline["timeline"]
            raise failed.error
        return timeline

    # -- API keys -----------------------------------------------------------------------------------------

    def forget_keys(self) -> None:
        """Drop cached key answers (a key was revoked, or an owner disabled or stripped of a role)."""
        self._key_cache.clear()

    def cached_principal(self, key: str) -> tuple[bool, Principal | None]:
        """(True, principal) when the answer for this key is known without the database."""
        if key_id_of(key) is None:
            return True, None
        cached = self._key_cache.get(hash_key(key))
        if cached is not None and cached[0] > time.monotonic():
            return True, cached[1]
        return False, None

    def authenticate(self, key: str) -> Principal | None:
        """The principal of an active key whose owner is enabled, or None. Results are cached briefly;
        revoking a key or disabling its owner drops every replica's cache at once (`forget_keys`)."""
        if key_id_of(key) is None:
            return None
        key_hash = hash_key(key)
        now = time.monotonic()
        cached = self._key_cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = self.keys.find_key_by_hash(key_hash)
        if record is not None and not matches(key, record.key_hash):  # constant time, whatever the lookup did
            record = None
        principal = key_principal(record, self.clock.now())
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[key_hash] = (now + self._key_cache_seconds, principal)
        return principal


def verify_all(
    store: DecisionStore,
    evidence: EvidenceReader | None,
    checkpoints: tuple[Sequence[tuple[int, str]], Sequence[ChainProblem]] = ((), ()),
    more_checks: Sequence[Callable[[], list[ChainProblem]]] = (),
    masking: MaskPolicy | Sequence[MaskPolicy] | None = None,
) -> VerifyResult:
    """One verify over everything: the chain (held against the signed checkpoints' (seq, hash) pairs,
    with the problems found reading them), decisions, feed, webhook bodies (masked with `masking`) and
    `more_checks`."""
    pairs, problems = checkpoints[0], list(checkpoints[1])
    result = verify_store(store, pairs)
    if evidence is not None:
        problems.extend(verify_rows(evidence, masking))
    for check in more_checks:
        problems.extend(check())
    return result.with_problems(problems)


def verify_store(store: DecisionStore, checkpoints: Sequence[tuple[int, str]] = ()) -> VerifyResult:
    """Recompute the chain (which must still hold every signed checkpoint given), then check every
    decision row against the digests its entry holds."""
    chain = verify_chain(store.audit_entries(), store.chain_head(), checkpoints)
    candidates: list[BrokenEntry] = [chain.broken] if chain.broken else []
    for evidence in store.decision_evidence():
        if chain.broken is not None and evidence.entry.seq >= chain.broken.seq:
            break
        entry = evidence.entry
        if evidence.record_text is None:
            candidates.append(
                BrokenEntry(
                    entry.seq,
                    "record_missing",
                    f"第 {entry.seq} 条日志对应的决策记录被删除",
                    entry.subject,
                )
            )
            break
        problem = check_record(
            entry,
            decision_payload(
                entry.subject,
                evidence.event_id or "",
                evidence.ticket_id or "",
                sha256_hex(evidence.record_text),
                sha256_hex((evidence.input_salt or "") + (evidence.clear_input_text or "")),
            ),
        )
        if problem is not None:
            candidates.append(problem)
            break
    for decision_id, seq in store.unlogged_decisions()[:1]:
        candidates.append(
            BrokenEntry(
                seq,
                "unlogged_decision",
                f"决策 {decision_id} 不在日志链中（被直接写入数据库）",
                decision_id,
            )
        )
    if not candidates:
        return chain
    first = min(candidates, key=lambda b: b.seq)
    return VerifyResult(
        False, max(0, min(chain.checked, first.seq - 1)), first, chain.problems, chain.checkpoints
    )


def create_api_key(keys: KeyStore, roles: frozenset[Role], clock: Clock, label: str = "") -> tuple[str, str]:
    """Create a key with these roles; returns (key_id, key). The key itself is never stored."""
    key_id, key = generate_key()
    keys.create_key(ApiKeyRecord(key_id, hash_key(key), roles, label, clock.now(), None))
    return key_id, key


# Records are stored as canonical JSON (sorted keys); answers use the contract's reading order.
_RECORD_ORDER = (
    "decision_id",
    "event_id",
    "ticket_id",
    "decided_at",
    "event",
    "actions",
    "fired",
    "versions",
)


def _action_order(action: Mapping[str, Any]) -> dict[str, Any]:
    """`type` first and `rule` last, as the decision answered them."""
    rest = {k: v for k, v in action.items() if k not in ("type", "rule")}
    return {"type": action.get("type"), **rest, "rule": action.get("rule")}


def _legacy_text(body: Mapping[str, Any]) -> str:
    """Inputs stored before records were written by orjson hold the `json` canonical text."""
    try:
        return canonical(body)
    except (TypeError, ValueError):
        return ""


def _default_simulator() -> Simulator:
    from rulesvc.sla.simulation import simulate

    return simulate
