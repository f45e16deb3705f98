"""Random tickets through every evaluation path: all must decide alike.

The loan approval level with its parallel reviews and the expense auto-approval (docs/domain.md, scenarios 2
and 5) are written three ways (`bench/paths/rules/`): as decision tables (`table`), as rules that join no
derived fact and so never reach durable_rules (`rules`), and as rules forward-chained over derived facts in a
durable_rules network, whose amount conditions also become durable's float prefilters (`durable`). The shipped
rulesets decide the same tickets through the simulator (`simulate`) and through `POST /v1/events` (`http`).

Every path gets the same JSON body text and reads it as ingest does (`rulesvc.exactjson`, then validation
against the ticket kind); a body the kind refuses must be refused by every path with the same problem codes.
A decision is compared by its outcome: the loan's level and reviews, the expense's auto-approval, the payment
amount *as JSON text* (its digits) and whether it went to a person.

`python -m bench.paths [--count 100000] [--seed 1]` runs the full count and prints the disagreements (0 is
the target); tests/unit/test_paths.py runs a bounded sample drawn by hypothesis.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rulesvc import exactjson
from rulesvc.errors import InvalidEventError
from rulesvc.model import Decision
from rulesvc.rulebook import RuleBook
from rulesvc.sla.simulation import simulate
from rulesvc.validation import read_event

REPO = Path(__file__).resolve().parents[2]
RULES = Path(__file__).resolve().parent / "rules"
OCCURRED_AT = "2026-11-02T09:00:00+08:00"
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)

RATINGS = ("C", "B", "BB", "BBB", "A", "AA", "AAA")
RANKS = ("员工", "主管", "部门经理", "总监", "副总经理", "总经理")
EXPENSE_TYPES = ("差旅费", "招待费", "办公用品费")
LOAN_THRESHOLDS = (Decimal(1_000_000), Decimal(5_000_000), Decimal(10_000_000))
EXPENSE_THRESHOLDS = (Decimal(5000),)
STEPS = (*(Decimal(1).scaleb(-n) for n in (0, 2, 6, 12, 18, 22, 27)), Decimal(0))
BAD_AMOUNTS = ("6,000,000", "¥5000", "5000元", "", "1e5x", "NaN")

Outcome = tuple[Any, ...]
PATHS = ("table", "rules", "durable", "simulate", "http")


def books(rules_root: Path = REPO / "rulesets") -> dict[str, RuleBook]:
    """The three rewritings of the decisions, each on the kinds and calendars of `rules_root`."""
    found = {}
    for name in ("table", "rules", "durable"):
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            shutil.copytree(rules_root / "kinds", folder / "kinds")
            shutil.copytree(rules_root / "calendars", folder / "calendars")
            for file in sorted((RULES / name).glob("*.yaml")):
                shutil.copy(file, folder / file.name)
            found[name] = RuleBook.load([folder])
    assert all(compiled.networks for compiled in found["durable"].compiled.values()), "durable must join"
    assert not any(compiled.networks for compiled in found["rules"].compiled.values())
    return found


# ---- random bodies ----------------------------------------------------------------------------------------


def amount_spelling(value: Decimal, style: int) -> Any:
    """The same value as a JSON number with all its digits (0), a plain decimal string (1), or a string with
    trailing zeros (2)."""
    if style == 1:
        return f"{value:f}"
    if style == 2:
        text = f"{value:f}"
        return text + ("00" if "." in text else ".00")
    return value


def near(thresholds: Sequence[Decimal], rnd: random.Random) -> Decimal:
    """A threshold ± a tiny step, or a plain random amount with a long fraction."""
    if rnd.random() < 0.8:
        base = rnd.choice(thresholds)
        step = rnd.choice(STEPS)
        return base + step if rnd.random() < 0.5 else base - step
    whole = rnd.randint(1, 20_000_000)
    return Decimal(whole) + Decimal(rnd.randint(0, 10**18)).scaleb(-18)


def random_ticket(rnd: random.Random, index: int) -> dict[str, Any]:
    """One ticket as a ticket tool sends it: mostly valid, sometimes with a value the kind refuses."""
    if rnd.random() < 0.5:
        amount: Any = amount_spelling(near(LOAN_THRESHOLDS, rnd), rnd.randrange(3))
        rating: Any = rnd.choice(RATINGS)
        if rnd.random() < 0.03:
            amount = rnd.choice(BAD_AMOUNTS)
        if rnd.random() < 0.03:
            rating = rnd.choice(("aa", "D", "AAA ", "", 3))
        return {"kind": "loan", "id": f"L-{index}", "amount": amount, "credit_rating": rating}
    amount = amount_spelling(near(EXPENSE_THRESHOLDS, rnd), rnd.randrange(3))
    if rnd.random() < 0.03:
        amount = rnd.choice((*BAD_AMOUNTS, "-100"))
    ticket: dict[str, Any] = {
        "kind": "expense",
        "id": f"E-{index}",
        "expense_type": rnd.choice(EXPENSE_TYPES),
        "amount": amount,
    }
    if rnd.random() < 0.9:
        ticket["applicant_rank"] = rnd.choice(RANKS) if rnd.random() > 0.02 else "董事长"
    return ticket


def body_text(ticket: Mapping[str, Any], index: int) -> str:
    """The JSON text a ticket tool sends; Decimal amounts are written as JSON numbers with all their digits."""
    body = {
        "event_id": f"paths-{index}",
        "type": "ticket.created",
        "occurred_at": OCCURRED_AT,
        "ticket": ticket,
    }
    return exactjson.dumps(body)


def random_bodies(count: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    for index in range(count):
        yield body_text(random_ticket(rnd, index), index)


# ---- outcomes ----------------------------------------------------------------------------------------------


def outcome(kind: str, actions: Sequence[Mapping[str, Any]]) -> Outcome:
    """What a decision means for the business, independent of how the rules are written."""
    types = [str(a.get("type")) for a in actions]
    if kind == "loan":
        levels = [a["level"] for a in actions if a.get("type") == "set_approval_level"]
        reviews = sorted(str(a["reviewer"]) for a in actions if a.get("type") == "request_review")
        return ("loan", tuple(levels), tuple(reviews))
    payments = [exactjson.dumps(a.get("amount")) for a in actions if a.get("type") == "trigger_payment"]
    to_person = any(a.get("type") == "assign" and a.get("group") == "费用审批岗" for a in actions)
    return ("expense", types.count("auto_approve"), tuple(payments), to_person)


def refused(exc: InvalidEventError) -> Outcome:
    return ("refused", tuple(sorted(f"{p.path}:{p.code}" for p in exc.problems)))


def in_process(book: RuleBook) -> Callable[[str], Outcome]:
    def decide(text: str) -> Outcome:
        try:
            event = read_event(exactjson.loads(text), book.kinds, now=NOW).event
        except InvalidEventError as exc:
            return refused(exc)
        return outcome(event.kind, _json_actions(book.evaluate(event)))

    return decide


def simulated(book: RuleBook) -> Callable[[str], Outcome]:
    def decide(text: str) -> Outcome:
        try:
            event = read_event(exactjson.loads(text), book.kinds, now=NOW).event
        except InvalidEventError as exc:
            return refused(exc)
        timeline = simulate(book, [event], event.occurred_at)
        actions = [a for entry in timeline.entries for a in _json_actions(entry.decision)]
        return outcome(event.kind, actions)

    return decide


def _json_actions(decision: Decision) -> list[dict[str, Any]]:
    """The actions as a client reads them (Decimals through their JSON text)."""
    return [exactjson.loads(exactjson.dumps(action)) for action in decision.actions_json()]


def http_outcome(kind: str, status: int, answer: Mapping[str, Any]) -> Outcome:
    if status == 422:
        return ("refused", tuple(sorted(f"{d['path']}:{d['code']}" for d in answer["details"])))
    assert status == 200, answer
    return outcome(kind, answer["actions"])
