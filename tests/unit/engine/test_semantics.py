"""Engine semantics through RuleBook on small rules folders written into tmp_path.

Exact decimals, enum order, forward chaining, priority/conflict policy, determinism, isolation (interleaved
and threaded), table hit policies, large tables and rule sets beyond durable_rules' limits, action
parameter references, the explanation trace and unknown ticket kinds.
"""

from __future__ import annotations

import dataclasses
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rulesvc.engine.compiler import MAX_DERIVED_FACTS
from rulesvc.errors import InvalidEventError, Location, RuleRuntimeError
from rulesvc.events import event_from_json
from rulesvc.lang import parse_cell
from rulesvc.lang.loader import load_folder_or_raise
from rulesvc.lang.model import Row
from rulesvc.model import ConditionTrace, Decision, Event
from rulesvc.rulebook import RuleBook

EXPENSE_KIND = """\
kind: expense
enums:
  职级: [员工, 主管, 部门经理, 总监, 副总经理, 总经理]
fields:
  id: string
  expense_type: string
  amount: number
  applicant_rank: 职级
  applicant: string
  n: number
"""
LOAN_KIND = """\
kind: loan
enums:
  信用评级: [C, B, BB, BBB, A, AA, AAA]
fields:
  region: string
  amount: number
  credit_rating: 信用评级
"""
RANKS = ("员工", "主管", "部门经理", "总监", "副总经理", "总经理")
AT = "2026-11-02T09:00:00+08:00"


def make_book(root: Path, *rulesets: str) -> RuleBook:
    (root / "kinds").mkdir(exist_ok=True)
    (root / "kinds" / "expense.yaml").write_text(EXPENSE_KIND, encoding="utf-8")
    (root / "kinds" / "loan.yaml").write_text(LOAN_KIND, encoding="utf-8")
    for index, text in enumerate(rulesets):
        (root / f"ruleset{index}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return RuleBook.load([root])


def event(kind: str = "expense", *, type: str = "ticket.created", id: str = "E-1", **fields: Any) -> Event:
    return event_from_json(
        {
            "event_id": f"{id}-{type}",
            "type": type,
            "occurred_at": AT,
            "ticket": {"kind": kind, "id": id, **fields},
        }
    )


def actions(decision: Decision) -> list[dict[str, Any]]:
    return decision.actions_json()


def fired(decision: Decision) -> list[str]:
    return [f.rule for f in decision.fired]


# ---- exact decimals and enum order --------------------------------------------------------------------------

AUTO_APPROVE = """\
ruleset: 报销
kind: expense
rules:
  - id: 小额自动审批
    on: [ticket.created]
    when: ticket.amount < 5000 and ticket.applicant_rank >= "部门经理"
    then: [{auto_approve: {}}, {trigger_payment: {amount: ticket.amount}}]
  - id: 精确加法
    on: [ticket.created]
    when: ticket.amount + 0.2 == 0.3
    then: [{assign: {group: 精确}}]
"""


@pytest.fixture(scope="module")
def auto_book(tmp_path_factory: pytest.TempPathFactory) -> RuleBook:
    return make_book(tmp_path_factory.mktemp("auto"), AUTO_APPROVE)


@pytest.mark.parametrize(
    ("amount", "qualifies"),
    [
        (Decimal("4999.99"), True),
        (4999.99, True),  # a JSON float is read as its shortest repr, exactly 4999.99
        ("4999.999999", True),
        (Decimal("5000"), False),
        (5000, False),
        (Decimal("5000.00"), False),
        (5000.001, False),
        (0, True),
    ],
)
def test_exact_decimal_threshold(auto_book: RuleBook, amount: Any, qualifies: bool) -> None:
    value = Decimal(amount) if isinstance(amount, str) else amount
    decision = auto_book.evaluate(event(amount=value, applicant_rank="部门经理"))
    assert ("报销/小额自动审批" in [a["rule"] for a in actions(decision)]) is qualifies
    if qualifies:
        payment = next(a for a in decision.actions if a.type == "trigger_payment")
        assert payment.params["amount"] == Decimal(str(value))


def test_decimal_arithmetic_is_exact(auto_book: RuleBook) -> None:
    assert fired(auto_book.evaluate(event(amount=0.1))) == ["精确加法"]
    assert fired(auto_book.evaluate(event(amount=Decimal("0.1000000001")))) == []


@pytest.mark.parametrize("rank", RANKS)
def test_enum_ordering(auto_book: RuleBook, rank: str) -> None:
    decision = auto_book.evaluate(event(amount=Decimal("100"), applicant_rank=rank))
    assert ("小额自动审批" in fired(decision)) is (RANKS.index(rank) >= RANKS.index("部门经理"))


@pytest.mark.parametrize("rank", [None, "实习生", 3])
def test_missing_or_foreign_enum_value_never_matches(auto_book: RuleBook, rank: Any) -> None:
    fields = {"amount": Decimal("100")} | ({} if rank is None else {"applicant_rank": rank})
    assert fired(auto_book.evaluate(event(**fields))) == []


def test_enum_order_in_table_cells(tmp_path: Path) -> None:
    book = make_book(
        tmp_path,
        """\
        ruleset: 评级
        kind: loan
        tables:
          - id: 评级分段
            on: [ticket.created]
            hit: unique
            inputs: {评级: ticket.credit_rating}
            rows:
              - {id: 好, 评级: ">= A", then: [{set_approval_level: {level: 支行审批}}]}
              - {id: 差, 评级: "< A", then: [{set_approval_level: {level: 总行审批}}]}
            default: {then: [{set_approval_level: {level: 未评级}}]}
        """,
    )
    levels = {
        rating: book.evaluate(event("loan", credit_rating=rating)).actions[0].params["level"]
        for rating in ("C", "B", "BB", "BBB", "A", "AA", "AAA", "D")
    }
    assert levels == {
        "C": "总行审批",
        "B": "总行审批",
        "BB": "总行审批",
        "BBB": "总行审批",
        "A": "支行审批",
        "AA": "支行审批",
        "AAA": "支行审批",
        "D": "未评级",
    }


# ---- forward chaining and priority ----------------------------------------------------------------------------

CHAIN = """\
ruleset: 链
kind: expense
facts:
  X: {金额: number}
  Y: {金额: number, 级别: string}
rules:
  - id: C
    on: [ticket.created]
    when: Y and Y.级别 == "高"
    then:
      - escalate: {to: supervisor, message: "报销 {ticket.id} 金额 {Y.金额}"}
  - id: B
    on: [ticket.created]
    when: X and X.金额 >= 1000
    then:
      - assert: {fact: Y, with: {金额: X.金额, 级别: 高}}
  - id: A
    on: [ticket.created]
    when: ticket.amount > 0
    then:
      - assert: {fact: X, with: {金额: ticket.amount}}
"""


def test_forward_chaining_over_three_steps(tmp_path: Path) -> None:
    book = make_book(tmp_path, CHAIN)
    decision = book.evaluate(event(amount=Decimal("1234.5")))
    assert fired(decision) == ["A", "B", "C"]
    assert actions(decision) == [
        {"type": "escalate", "to": "supervisor", "message": "报销 E-1 金额 1234.5", "rule": "链/C"}
    ]
    # the chain stops where a derived condition fails: X exists but X.金额 < 1000 → no Y, no C
    small = book.evaluate(event(amount=Decimal("999.99")))
    assert fired(small) == ["A"]
    assert actions(small) == []


NEGATED_FACT = """\
ruleset: 否定
kind: expense
facts:
  大额: {金额: number}
rules:
  - id: 认定大额
    on: [ticket.created]
    when: ticket.amount >= 5000
    then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]
  - id: 非大额
    on: [ticket.created]
    when: WHEN
    then: [{assign: {group: 小额组}}]
"""


@pytest.mark.parametrize("when", ["not 大额", "ticket.amount > 0 and not 大额", "大额 or ticket.amount < 10"])
def test_rules_on_an_absent_derived_fact_fire(tmp_path: Path, when: str) -> None:
    book = make_book(tmp_path, NEGATED_FACT.replace("WHEN", when))
    assert "非大额" in fired(book.evaluate(event(amount=Decimal("5"))))


PRIORITY = """\
ruleset: 优先级
kind: expense
rules:
  - id: 普通1
    on: [ticket.created]
    then: [{request_review: {reviewer: 普通1}}]
  - id: 低
    on: [ticket.created]
    priority: -5
    then: [{request_review: {reviewer: 低}}]
  - id: 高
    on: [ticket.created]
    priority: 10
    then: [{request_review: {reviewer: 高1}}, {request_review: {reviewer: 高2}}]
  - id: 普通2
    on: [ticket.created]
    then: [{request_review: {reviewer: 普通2}}]
  - id: 次高
    on: [ticket.created]
    priority: 5
    then: [{request_review: {reviewer: 次高}}]
  - id: 普通3
    on: [ticket.created]
    priority: 0
    then: [{request_review: {reviewer: 普通3}}]
"""


def test_priority_order_then_file_order(tmp_path: Path) -> None:
    book = make_book(tmp_path, PRIORITY)
    decision = book.evaluate(event())
    assert [a.params["reviewer"] for a in decision.actions] == [
        "高1",
        "高2",
        "次高",
        "普通1",
        "普通2",
        "普通3",
        "低",
    ]
    assert fired(decision) == ["高", "次高", "普通1", "普通2", "普通3", "低"]


def test_rulesets_of_one_kind_run_in_name_order(tmp_path: Path) -> None:
    book = make_book(
        tmp_path,
        "ruleset: b-后\nkind: expense\nrules:\n  - {id: r, on: [ticket.created], then: [{assign: {group: 后}}]}\n",
        "ruleset: a-先\nkind: expense\nrules:\n  - {id: r, on: [ticket.created], then: [{assign: {group: 先}}]}\n",
    )
    assert [a["rule"] for a in actions(book.evaluate(event()))] == ["a-先/r", "b-后/r"]


def test_rules_only_fire_on_their_event_types(tmp_path: Path) -> None:
    book = make_book(tmp_path, CHAIN)
    assert fired(book.evaluate(event(type="ticket.updated", amount=Decimal("5000")))) == []


# ---- determinism and isolation ----------------------------------------------------------------------------------

MIXED = """\
ruleset: 混合
kind: expense
facts:
  大额: {金额: number}
tables:
  - id: 分派
    on: [ticket.created]
    hit: first
    inputs: {类型: ticket.expense_type, 金额: ticket.amount}
    rows:
      - {id: 差旅小额, 类型: 差旅费, 金额: "< 5000", then: [{assign: {group: 自动}}]}
      - {id: 差旅, 类型: 差旅费, then: [{assign: {group: 差旅岗}}]}
    default: {then: [{assign: {group: 费用审批岗}}]}
rules:
  - id: 认定大额
    on: [ticket.created]
    when: ticket.amount >= 5000
    then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]
  - id: 大额复核
    on: [ticket.created]
    when: 大额
    then: [{request_review: {reviewer: 财务审核}}]
  - id: 付款
    on: [ticket.created]
    then:
      - trigger_payment: {amount: ticket.amount}
      - notify: {to: owner, channels: [in_app], message: "报销 {ticket.id} 金额 {ticket.amount}"}
"""


@pytest.fixture(scope="module")
def mixed_book(tmp_path_factory: pytest.TempPathFactory) -> RuleBook:
    return make_book(tmp_path_factory.mktemp("mixed"), MIXED)


def expected_for(ticket_id: str, amount: Decimal, expense_type: str) -> list[dict[str, Any]]:
    if expense_type == "差旅费":
        group, row = ("自动", "差旅小额") if amount < 5000 else ("差旅岗", "差旅")
    else:
        group, row = "费用审批岗", "默认"
    result: list[dict[str, Any]] = [{"type": "assign", "group": group, "rule": f"混合/分派#{row}"}]
    if amount >= 5000:
        result.append({"type": "request_review", "reviewer": "财务审核", "rule": "混合/大额复核"})
    result += [
        {
            "type": "trigger_payment",
            "amount": amount,
            "rule": "混合/付款",
        },
        {
            "type": "notify",
            "to": "owner",
            "channels": ["in_app"],
            "message": f"报销 {ticket_id} 金额 {amount}",
            "rule": "混合/付款",
        },
    ]
    return result


def sorted_json(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda a: (a["type"], a["rule"]))


def test_same_event_200_times_gives_identical_decisions(mixed_book: RuleBook) -> None:
    ev = event(id="E-42", amount=Decimal("8000"), expense_type="差旅费")
    first = mixed_book.evaluate(ev)
    assert sorted_json(actions(first)) == sorted_json(expected_for("E-42", Decimal("8000"), "差旅费"))
    for _ in range(199):
        again = mixed_book.evaluate(ev)
        assert actions(again) == actions(first)
        assert again.fired == first.fired
        assert [t.to_json() for t in again.trace] == [t.to_json() for t in first.trace]


def test_interleaved_evaluations_do_not_leak(mixed_book: RuleBook) -> None:
    big = event(id="E-BIG", amount=Decimal("6000000"), expense_type="差旅费")
    small = event(id="E-SMALL", amount=Decimal("4999.99"), expense_type="招待费")
    big_expected = sorted_json(expected_for("E-BIG", Decimal("6000000"), "差旅费"))
    small_expected = sorted_json(expected_for("E-SMALL", Decimal("4999.99"), "招待费"))
    for _ in range(30):
        assert sorted_json(actions(mixed_book.evaluate(big))) == big_expected
        decision = mixed_book.evaluate(small)
        assert sorted_json(actions(decision)) == small_expected
        assert "认定大额" not in fired(decision) and "大额复核" not in fired(decision)


def test_concurrent_evaluations_from_8_threads_are_isolated(mixed_book: RuleBook) -> None:
    cases = []
    for index in range(8):
        amount = Decimal(6000000 + index) if index % 2 else Decimal(f"{index}.01")
        expense_type = "差旅费" if index % 3 else "办公用品费"
        cases.append((f"E-T{index}", amount, expense_type))
    barrier = threading.Barrier(8)

    def worker(case: tuple[str, Decimal, str]) -> list[str]:
        ticket_id, amount, expense_type = case
        ev = event(id=ticket_id, amount=amount, expense_type=expense_type)
        expected = sorted_json(expected_for(ticket_id, amount, expense_type))
        barrier.wait(timeout=30)
        problems = []
        for _ in range(25):
            got = sorted_json(actions(mixed_book.evaluate(ev)))
            if got != expected:
                problems.append(f"{ticket_id}: {got} != {expected}")
        return problems

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [p for result in pool.map(worker, cases) for p in result]
    assert problems == []


# ---- decision tables ------------------------------------------------------------------------------------------

TABLES = """\
ruleset: 表
kind: expense
tables:
  - id: 首条
    on: [ticket.created]
    hit: first
    inputs: {金额: ticket.amount}
    rows:
      - {id: 小, 金额: "< 1000", then: [{assign: {group: 小}}]}
      - {id: 中, 金额: "< 5000", then: [{assign: {group: 中}}]}
    default: {then: [{assign: {group: 大}}]}
  - id: 全部
    on: [ticket.created]
    hit: collect
    inputs: {金额: ticket.amount, 职级: ticket.applicant_rank}
    rows:
      - {id: 金额低, 金额: "< 5000", then: [{request_review: {reviewer: 甲}}]}
      - {id: 职级高, 职级: ">= 总监", then: [{request_review: {reviewer: 乙}}]}
      - {id: 任意, then: [{request_review: {reviewer: 丙}}]}
    default: {then: [{request_review: {reviewer: 不可能}}]}
  - id: 唯一
    on: [ticket.created]
    hit: unique
    inputs: {金额: ticket.amount}
    rows:
      - {id: 区间1, 金额: "[0..1000)", then: [{set_approval_level: {level: 一级}}]}
      - {id: 区间2, 金额: "[1000..5000)", then: [{set_approval_level: {level: 二级}}]}
    default: {then: []}
"""


@pytest.mark.parametrize(
    ("amount", "rank", "expected"),
    [
        ("999.99", "员工", ["首条#小", "全部#金额低", "全部#任意", "唯一#区间1"]),
        ("1000", "员工", ["首条#中", "全部#金额低", "全部#任意", "唯一#区间2"]),
        ("4999.99", "总监", ["首条#中", "全部#金额低", "全部#职级高", "全部#任意", "唯一#区间2"]),
        ("5000", "总经理", ["首条#默认", "全部#职级高", "全部#任意", "唯一#默认"]),
        ("-1", "员工", ["首条#小", "全部#金额低", "全部#任意", "唯一#默认"]),
    ],
)
def test_table_hit_policies_and_default(tmp_path: Path, amount: str, rank: str, expected: list[str]) -> None:
    book = make_book(tmp_path, TABLES)
    decision = book.evaluate(event(amount=Decimal(amount), applicant_rank=rank))
    assert fired(decision) == expected
    assert [a["rule"] for a in actions(decision)] == [f"表/{ref}" for ref in expected if ref != "唯一#默认"]


def test_table_default_applies_when_input_is_missing(tmp_path: Path) -> None:
    book = make_book(tmp_path, TABLES)
    decision = book.evaluate(event(applicant_rank="员工"))
    assert fired(decision) == ["首条#默认", "全部#任意", "唯一#默认"]


def test_unique_table_with_two_matching_rows_at_run_time_is_a_positioned_rule_error(tmp_path: Path) -> None:
    """`check` cannot prove overlaps of string tests; the engine refuses to pick a row silently."""
    book = make_book(
        tmp_path,
        """\
        ruleset: 唯一
        kind: expense
        tables:
          - id: 类型
            on: [ticket.created]
            hit: unique
            inputs: {类型: ticket.expense_type}
            rows:
              - {id: 含差, 类型: 'contains "差"', then: [{assign: {group: 甲}}]}
              - {id: 差旅, 类型: 差旅费, then: [{assign: {group: 乙}}]}
            default: {then: []}
        """,
    )
    assert fired(book.evaluate(event(expense_type="出差补贴"))) == ["类型#含差"]
    with pytest.raises(RuleRuntimeError) as caught:
        book.evaluate(event(expense_type="差旅费"))
    error = caught.value
    assert error.code == "rule.unique_conflict"
    assert (error.ruleset, error.version, error.rule) == ("唯一", 1, "类型#差旅")
    assert error.values == {"table": "类型", "rows": ["类型#含差", "类型#差旅"], "inputs": {"类型": "差旅费"}}
    assert (Path(error.location.file).name, error.location.line) == ("ruleset0.yaml", 10)
    assert str(error).startswith(
        f"{error.location}: 规则集 唯一 第 1 版：决策表 类型（hit: unique）有 2 行同时匹配"
    )


class DeadlineExceeded(BaseException):
    """Not an Exception, so no `except Exception` in the code under test can swallow it."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: raise DeadlineExceeded after `seconds` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise DeadlineExceeded(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def big_table_yaml(rows: int) -> str:
    lines = [
        "ruleset: 大表",
        "kind: expense",
        "tables:",
        "  - id: 编号分派",
        "    on: [ticket.created]",
        "    hit: first",
        "    inputs: {编号: ticket.n}",
        "    rows:",
    ]
    for index in range(rows):
        lines += [f"      - 编号: {index}", "        then: []"]
    lines += ["    default: {then: [{assign: {group: 兜底}}]}", ""]
    return "\n".join(lines)


def check_big_table(book: RuleBook, rows: int) -> None:
    for n, ref in [(0, "行1"), (rows // 2, f"行{rows // 2 + 1}"), (rows - 1, f"行{rows}"), (rows, "默认")]:
        decision = book.evaluate(event(n=Decimal(n)))
        assert fired(decision) == [f"编号分派#{ref}"], n
        if ref != "默认":
            assert decision.trace[0].conditions[0].values == {"ticket.n": Decimal(n)}
    assert actions(book.evaluate(event(n=Decimal(rows)))) == [
        {"type": "assign", "group": "兜底", "rule": "大表/编号分派#默认"}
    ]
    assert fired(book.evaluate(event(n=Decimal("0.5")))) == ["编号分派#默认"]


def test_5000_row_table_compiles_and_evaluates_in_engine(tmp_path: Path) -> None:
    """The engine side alone: a validated 1-row table grown to 5,000 rows in memory, then compiled."""
    (tmp_path / "kinds").mkdir()
    (tmp_path / "kinds" / "expense.yaml").write_text(EXPENSE_KIND, encoding="utf-8")
    (tmp_path / "big.yaml").write_text(big_table_yaml(1), encoding="utf-8")
    folder = load_folder_or_raise([tmp_path])
    ruleset = folder.rulesets["大表"]
    table = ruleset.tables[0]
    template = table.rows[0]
    where = Location("big.yaml", 9, 9)
    rows = tuple(
        Row(f"行{i + 1}", {"编号": parse_cell(str(i), where)}, {"编号": str(i)}, template.then, where, i + 1)
        for i in range(5000)
    )
    table = dataclasses.replace(table, rows=rows)
    folder.rulesets["大表"] = dataclasses.replace(ruleset, tables=(table,))
    started = time.perf_counter()
    book = RuleBook(folder)
    assert time.perf_counter() - started < 10
    check_big_table(book, 5000)


def test_5000_row_table_loads_compiles_and_evaluates(tmp_path: Path) -> None:
    (tmp_path / "kinds").mkdir()
    (tmp_path / "kinds" / "expense.yaml").write_text(EXPENSE_KIND, encoding="utf-8")
    (tmp_path / "big.yaml").write_text(big_table_yaml(5000), encoding="utf-8")
    with deadline(30):
        book = RuleBook.load([tmp_path])
    check_big_table(book, 5000)


def test_600_plain_rules_beyond_durables_511_limit(tmp_path: Path) -> None:
    rules = [
        f"  - {{id: 规则{i}, on: [ticket.created], when: ticket.n == {i}, then: [assign: {{group: 组{i}}}]}}"
        for i in range(600)
    ]
    text = "ruleset: 多规则\nkind: expense\nrules:\n" + "\n".join(rules) + "\n"
    with deadline(60):
        book = make_book(tmp_path, text)
        for n in (0, 1, 300, 510, 511, 512, 599):
            decision = book.evaluate(event(n=Decimal(n)))
            assert actions(decision) == [{"type": "assign", "group": f"组{n}", "rule": f"多规则/规则{n}"}]
        assert actions(book.evaluate(event(n=Decimal(600)))) == []


def test_600_rules_joining_a_derived_fact_run_through_partitioned_durable_networks(tmp_path: Path) -> None:
    rules = [
        f"  - {{id: 规则{i}, on: [ticket.created], when: 标记 and 标记.n == {i}, then: [assign: {{group: 组{i}}}]}}"
        for i in range(600)
    ]
    text = (
        "ruleset: 多规则\nkind: expense\nfacts:\n  标记: {n: number}\nrules:\n"
        "  - {id: 标记, on: [ticket.created], priority: 1, when: ticket.n >= 0,"
        " then: [{assert: {fact: 标记, with: {n: ticket.n}}}]}\n" + "\n".join(rules) + "\n"
    )
    with deadline(60):
        book = make_book(tmp_path, text)
        assert book.compiled["多规则"].networks and not book.compiled["多规则"].single_fact
        for n in (0, 511, 599):
            decision = book.evaluate(event(n=Decimal(n)))
            assert actions(decision) == [{"type": "assign", "group": f"组{n}", "rule": f"多规则/规则{n}"}]
            assert fired(decision) == ["标记", f"规则{n}"]


SINGLE_FACT = """\
ruleset: 单事实
kind: expense
facts:
  大额: {金额: number}
  从未: {n: number}
rules:
  - {id: 普通, on: [ticket.created], when: ticket.amount > 10, then: [{request_review: {reviewer: 普通}}]}
  - {id: 认定大额, on: [ticket.created], priority: 5, when: ticket.amount >= 5000,
     then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]}
  - {id: 非大额, on: [ticket.created], when: not 大额 and ticket.amount > 10, then: [{assign: {group: 小额组}}]}
  - {id: 大额复核, on: [ticket.created], priority: -1, when: 大额 or ticket.applicant_rank >= "总监",
     then: [{request_review: {reviewer: 大额复核}}]}
  - {id: 高级别, on: [ticket.created], priority: 9, when: ticket.applicant_rank >= "副总经理" and ticket.amount < 100000,
     then: [{set_approval_level: {level: 总经理}}]}
  - {id: 差旅, on: [ticket.created, ticket.updated], when: ticket.expense_type == "差旅费", then: [{assign: {group: 差旅组}}]}
"""
# The same rules plus one that joins a fact nobody derives: the network is no longer join-free, so every
# rule goes through durable_rules.
WITH_JOIN = SINGLE_FACT.replace("ruleset: 单事实", "ruleset: 有连接") + (
    "  - {id: 连接, on: [ticket.created, ticket.updated], when: 从未 and 从未.n > 0, then: [{assign: {group: 不会}}]}\n"
)


def test_join_free_rules_decide_exactly_as_through_durable(tmp_path: Path) -> None:
    """Rules joining only the input fact run without durable_rules: same firings, order and actions."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    single = make_book(tmp_path / "a", SINGLE_FACT)
    joined = make_book(tmp_path / "b", WITH_JOIN)
    assert set(single.compiled["单事实"].single_fact) == {"ticket.created", "ticket.updated"}
    assert not single.compiled["单事实"].networks
    assert set(joined.compiled["有连接"].networks) == {"ticket.created", "ticket.updated"}
    cases = 0
    for amount in ("0", "10", "10.01", "4999.99", "5000", "99999.99", "100000"):
        for rank in RANKS:
            for expense_type in ("差旅费", "招待费"):
                for type_ in ("ticket.created", "ticket.updated"):
                    e = event(
                        type=type_, amount=Decimal(amount), applicant_rank=rank, expense_type=expense_type
                    )
                    a, b = single.evaluate(e), joined.evaluate(e)
                    assert fired(a) == fired(b)
                    assert [x.to_json() for x in a.actions] == [
                        {**x.to_json(), "rule": x.to_json()["rule"].replace("有连接", "单事实")}
                        for x in b.actions
                    ]
                    cases += 1
    assert cases == 7 * 6 * 2 * 2


# ---- action parameters, trace, unknown kinds -----------------------------------------------------------------


def test_action_parameter_references(tmp_path: Path) -> None:
    book = make_book(
        tmp_path,
        """\
        ruleset: 参数
        kind: expense
        rules:
          - id: 付款
            on: [ticket.created]
            then:
              - trigger_payment: {amount: ticket.amount}
              - trigger_payment: {amount: "= ticket.amount * 0.5"}
              - trigger_payment: {amount: "= round(ticket.amount * 0.3, 2)"}
              - notify: {to: owner, channels: [sms, email], message: "报销 {ticket.id}（{ticket.applicant}）金额 {ticket.amount} 元"}
              - assign: {group: "ticket.amount"}
              - escalate: {to: 主管}
        """,
    )
    decision = book.evaluate(event(id="E-2026-0007", amount=Decimal("4999.99"), applicant="张三"))
    params = [dict(a.params) for a in decision.actions]
    assert params[0] == {"amount": Decimal("4999.99")}
    assert params[1] == {"amount": Decimal("2499.995")}
    assert params[2] == {"amount": Decimal("1500.00")}
    assert params[3]["message"] == "报销 E-2026-0007（张三）金额 4999.99 元"
    assert params[3]["channels"] == ["sms", "email"]
    assert params[4] == {"group": Decimal("4999.99")}  # a bare field path is a reference, even quoted
    assert params[5] == {"to": "主管"}
    assert actions(decision)[1] == {
        "type": "trigger_payment",
        "amount": Decimal("2499.995"),
        "rule": "参数/付款",
    }


def test_template_with_missing_field_renders_empty(tmp_path: Path) -> None:
    book = make_book(
        tmp_path,
        "ruleset: t\nkind: expense\nrules:\n"
        '  - {id: r, on: [ticket.created], then: [{escalate: {to: x, message: "申请人 {ticket.applicant}。"}}]}\n',
    )
    assert book.evaluate(event()).actions[0].params["message"] == "申请人 。"


def test_trace_lists_matched_conditions_with_values(auto_book: RuleBook) -> None:
    decision = auto_book.evaluate(event(amount=Decimal("4999.99"), applicant_rank="总监"))
    (entry,) = [t for t in decision.trace if t.rule == "小额自动审批"]
    assert (entry.ruleset, entry.version) == ("报销", 1)
    assert (
        ConditionTrace("ticket.amount < 5000", {"ticket.amount": Decimal("4999.99")}, True)
        in entry.conditions
    )
    assert ConditionTrace('ticket.applicant_rank >= "部门经理"', {"ticket.applicant_rank": "总监"}, True) in (
        entry.conditions
    )
    explained = entry.explain()
    assert "ticket.amount < 5000" in explained and "4999.99" in explained and "总监" in explained


def test_trace_of_table_rows(mixed_book: RuleBook) -> None:
    decision = mixed_book.evaluate(event(amount=Decimal("4999.99"), expense_type="差旅费"))
    (entry,) = [t for t in decision.trace if t.rule == "分派#差旅小额"]
    values = {k: v for c in entry.conditions for k, v in c.values.items()}
    assert values == {"ticket.expense_type": "差旅费", "ticket.amount": Decimal("4999.99")}
    assert all(c.result for c in entry.conditions)


def test_unknown_ticket_kind_is_an_invalid_event(auto_book: RuleBook) -> None:
    with pytest.raises(InvalidEventError) as caught:
        auto_book.evaluate(event("mortgage", amount=Decimal(1)))
    assert caught.value.path == "ticket.kind"
    assert [(p.code, p.message) for p in caught.value.problems] == [
        ("validation.unknown_kind", "没有规则集处理工单类型 'mortgage'（有规则集的类型：expense、loan）")
    ]


# ---- refraction: an equal fact re-enables nothing -------------------------------------------------------------

REASSERT = """\
ruleset: 重复认定
kind: expense
facts:
  大额: {金额: number}
rules:
  - id: 认定
    on: [ticket.created]
    when: ticket.amount >= 5000
    then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]
  - id: 再认定
    on: [ticket.created]
    when: 大额
    then:
      - assert: {fact: 大额, with: {金额: 大额.金额}}
      - assign: {group: 大额组}
"""


def test_a_rule_reasserting_an_identical_fact_fires_once(tmp_path: Path) -> None:
    """The issue's example: it used to fire again until "more than 10000 facts"."""
    book = make_book(tmp_path, REASSERT)
    decision = book.evaluate(event(amount=Decimal("6000")))
    assert fired(decision) == ["认定", "再认定"]
    assert [a["group"] for a in actions(decision)] == ["大额组"]


TWO_SOURCES = """\
ruleset: 两处认定
kind: expense
facts:
  大额: {金额: number}
tables:
  - id: 表
    on: [ticket.created]
    hit: first
    inputs: {金额: ticket.amount}
    rows:
      - {金额: ">= 5000", then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]}
    default: {then: []}
rules:
  - id: 规则认定
    on: [ticket.created]
    when: ticket.amount >= 5000
    then: [{assert: {fact: 大额, with: {金额: "= ticket.amount * 1.00"}}}]
  - id: 审核
    on: [ticket.created]
    when: 大额
    then: [{request_review: {reviewer: 法务审核}}]
"""


def test_an_equal_fact_from_a_table_and_a_rule_enables_a_rule_once(tmp_path: Path) -> None:
    """Equal by value (6000 and 6000.00): the second assert is not a new fact, on every path."""
    book = make_book(tmp_path, TWO_SOURCES)
    decision = book.evaluate(event(amount=Decimal("6000")))
    assert [a["reviewer"] for a in actions(decision)] == ["法务审核"]
    assert fired(decision) == ["表#行1", "规则认定", "审核"]


def test_facts_of_one_type_from_a_table_all_reach_the_rules(tmp_path: Path) -> None:
    book = make_book(
        tmp_path,
        TWO_SOURCES.replace("hit: first", "hit: collect").replace(
            '      - {金额: ">= 5000", then: [{assert: {fact: 大额, with: {金额: ticket.amount}}}]}\n',
            '      - {金额: ">= 5000", then: [{assert: {fact: 大额, with: {金额: 1}}}]}\n'
            '      - {金额: ">= 5000", then: [{assert: {fact: 大额, with: {金额: 2}}}]}\n',
        ),
    )
    decision = book.evaluate(event(amount=Decimal("6000")))
    assert [a["reviewer"] for a in actions(decision)] == ["法务审核"] * 3


# ---- runtime rule errors: positioned, naming the ruleset, rule and values ------------------------------------

COUNTER = """\
ruleset: 计数
kind: expense
facts:
  计数: {n: number}
rules:
  - id: 起点
    on: [ticket.created]
    then: [{assert: {fact: 计数, with: {n: 1}}}]
  - id: 累加
    on: [ticket.created]
    when: 计数
    then:
      - assert: {fact: 计数, with: {n: "= 计数.n + 1"}}
"""


def test_a_rule_deriving_new_values_without_end_stops_at_the_loop_limit(tmp_path: Path) -> None:
    book = make_book(tmp_path, COUNTER)
    with pytest.raises(RuleRuntimeError) as caught:
        book.evaluate(event(amount=Decimal("1")))
    error = caught.value
    assert error.code == "rule.loop_limit"
    assert (error.ruleset, error.rule) == ("计数", "累加")
    assert error.values == {"fact": "计数", "with": {"n": Decimal(MAX_DERIVED_FACTS + 1)}, "derived": 1000}
    assert error.location.line == 13  # the assert of 累加
    assert "循环" in error.message


DIVIDE = """\
ruleset: 分摊
kind: expense
rules:
  - id: 按人分摊
    on: [ticket.created]
    when: ticket.amount > 0
    then:
      - trigger_payment: {amount: "= ticket.amount / ticket.n"}
  - id: 条件里除以零只是不成立
    on: [ticket.created]
    when: ticket.amount / ticket.n > 1
    then: [{assign: {group: 不会}}]
"""


def test_arithmetic_without_a_result_in_an_action_is_a_positioned_error(tmp_path: Path) -> None:
    """It used to emit `amount: null`; in a condition it stays a false comparison."""
    book = make_book(tmp_path, DIVIDE)
    assert actions(book.evaluate(event(amount=Decimal("300"), n=Decimal("3"))))[0]["amount"] == Decimal(100)
    assert actions(book.evaluate(event(amount=Decimal("300"))))[0]["amount"] is None  # missing stays missing
    with pytest.raises(RuleRuntimeError) as caught:
        book.evaluate(event(amount=Decimal("300"), n=Decimal("0")))
    error = caught.value
    assert error.code == "rule.arithmetic"
    assert (error.ruleset, error.rule, error.location.line) == ("分摊", "按人分摊", 8)
    assert error.values == {
        "expression": "ticket.amount / ticket.n",
        "left": Decimal(300),
        "right": Decimal(0),
    }
    assert "除数为 0" in error.message


@pytest.mark.parametrize("join", [False, True])
def test_rule_errors_are_the_same_with_and_without_durable(tmp_path: Path, join: bool) -> None:
    text = DIVIDE
    if join:  # a rule joining a derived fact sends the ruleset through durable_rules
        text = text.replace("kind: expense\n", "kind: expense\nfacts: {从未: {n: number}}\n") + (
            "  - {id: 连接, on: [ticket.created], when: 从未, then: [{assign: {group: 不会}}]}\n"
        )
    book = make_book(tmp_path, text)
    assert bool(book.compiled["分摊"].networks) is join
    with pytest.raises(RuleRuntimeError) as caught:
        book.evaluate(event(amount=Decimal("300"), n=Decimal("0")))
    assert (caught.value.code, caught.value.rule) == ("rule.arithmetic", "按人分摊")
