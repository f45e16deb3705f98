"""Type checking: every authoring error positioned, with a stable code and a suggestion."""

from __future__ import annotations

import pytest

from rulesvc.errors import Location, RulesetError
from rulesvc.lang import (
    TypeEnv,
    bind_subject,
    check,
    parse_cell,
    paths,
)
from tests.unit.lang.exprs import ENV, LOC, p


def errors(text: str, env: TypeEnv = ENV) -> list[RulesetError]:
    return check(p(text), env, LOC)


def codes(text: str) -> list[str]:
    return [e.code for e in errors(text)]


# --------------------------------------------------------------------------------------- type check


def test_a_correct_expression_has_no_errors() -> None:
    assert (
        errors(
            'ticket.amount < 5000 and ticket.region == "上海浦东" and ticket.applicant_rank >= "部门经理" '
            'and not 大额贷款 and 大额贷款.金额 > 1 and extra.whatever == 3 and event.type == "ticket.created" '
            "and event.occurred_at - ticket.created_at > 1.5h and timer.late_by < 2h and ticket.vip "
            'and ticket.credit_rating in ["A", "AA"] and ticket.tags contains "VIP" and len(ticket.region) > 2 '
            'and ticket.created_at < "2026-10-01" and ticket.amount != null and round(ticket.amount / 3, 2) > 1'
        )
        == []
    )


def test_unknown_field_suggests_the_closest_declared_path() -> None:
    (error,) = errors("ticket.amout < 5000")
    assert error.code == "unknown_field"
    assert "ticket.amout" in error.message
    assert error.hint == "是不是 ticket.amount？"
    assert error.location == Location("r.yaml", 10, 15)


def test_unknown_fact_suggests_declared_fact_and_bare_words_suggest_quotes() -> None:
    (error,) = errors("大额贷 and true")
    assert error.code == "unknown_field" and error.hint == "是不是 大额贷款？"
    (error,) = errors("ticket.region in [上海浦东]")
    assert error.code == "unknown_field"
    assert error.hint is not None and '"上海浦东"' in error.hint
    assert error.location.col == 15 + 19 - 1


def test_unknown_enum_value_suggests_the_member_and_points_at_the_literal() -> None:
    (error,) = errors('ticket.applicant_rank >= "部门经里"')
    assert error.code == "unknown_enum_value"
    assert error.hint is not None and error.hint.startswith('是不是 "部门经理"？')
    assert error.location == Location("r.yaml", 10, 15 + 26 - 1)
    (error,) = errors('ticket.credit_rating in ["A", "AAAA"]')
    assert error.code == "unknown_enum_value" and error.hint is not None and '"AAA"' in error.hint
    assert codes('"主官" == ticket.applicant_rank') == ["unknown_enum_value"]


@pytest.mark.parametrize(
    ("text", "hint_part"),
    [
        ("ticket.region == 5", 'quote it: "5"'),
        ('ticket.amount < "5000"', "去掉引号：5000"),
        ('ticket.region < "上海"', "有序枚举"),
        ("ticket.region >= ticket.expense_type", "有序枚举"),
        ("ticket.wait > 5", "单位"),
        ("ticket.amount + ticket.region > 1", "数字、时长"),
        ('ticket.amount contains "1"', None),
        ('ticket.amount startswith "1"', None),
        ("ticket.amount and 大额贷款", "请写成比较"),
        ("大额贷款 or ticket.region", "请写成比较"),
        ("not ticket.amount", "请写成比较"),
        ("ticket.amount in ticket.region", "contains"),
        ("ticket.vip < true", None),
        ("ticket.amount < null", "== null"),
        ("-ticket.region == 1", None),
        ('ticket.created_at < "下周一"', "ISO 8601"),
        ("len(ticket.amount) > 1", None),
        ("ticket.applicant_rank == ticket.credit_rating", None),
    ],
)
def test_type_mismatches(text: str, hint_part: str | None) -> None:
    found = errors(text)
    assert [e.code for e in found] == ["type_mismatch"], found
    if hint_part is not None:
        assert found[0].hint is not None and hint_part in found[0].hint, found[0].hint


def test_functions_unknown_and_bad_arity() -> None:
    (error,) = errors("lenght(ticket.region) > 1")
    assert error.code == "unknown_function" and error.hint is not None and "len()" in error.hint
    assert codes("round(ticket.amount, 1, 2) > 1") == ["bad_call"]
    assert codes("len() > 1") == ["bad_call"]
    assert codes('ticket.region matches "(abc"') == ["bad_regex"]


def test_check_collects_all_errors_sorted_by_position() -> None:
    found = errors('ticket.amout < 1 and ticket.region == 5 and ticket.applicant_rank > "总jian" and foo()')
    assert [e.code for e in found] == [
        "unknown_field",
        "type_mismatch",
        "unknown_enum_value",
        "unknown_function",
    ]
    assert [e.location.col for e in found] == sorted(e.location.col for e in found)


def test_check_condition_flag_requires_a_boolean() -> None:
    assert check(p("ticket.amount"), ENV, LOC) == []  # a value expression (table input, action param)
    (error,) = check(p("ticket.amount"), ENV, LOC, condition=True)
    assert error.code == "type_mismatch"
    assert check(p("ticket.vip"), ENV, LOC, condition=True) == []


def test_paths_lists_every_referenced_path() -> None:
    assert paths(p("ticket.amount < len(x.y) and 大额贷款 or [a.b] == c")) == {
        ("ticket", "amount"),
        ("x", "y"),
        ("大额贷款",),
        ("a", "b"),
        ("c",),
    }


def test_cell_errors_point_into_the_cell() -> None:
    cell_loc = Location("t.yaml", 30, 9)
    bound = bind_subject(parse_cell(">= 部门经里", cell_loc), p("ticket.applicant_rank"))
    (error,) = check(bound, ENV, cell_loc)
    assert error.code == "unknown_enum_value" and error.location == Location("t.yaml", 30, 12)
    assert error.hint is not None and error.hint.startswith('是不是 "部门经理"？')
    bound = bind_subject(parse_cell("上海浦东", cell_loc), p("ticket.amount"))
    (error,) = check(bound, ENV, cell_loc)
    assert error.code == "type_mismatch" and error.location == Location("t.yaml", 30, 9)
    bound = bind_subject(parse_cell("x, < 5", cell_loc), p("ticket.regin"))
    assert {(e.code, e.location) for e in check(bound, ENV, cell_loc)} == {
        ("unknown_field", Location("t.yaml", 30, 9)),
        ("unknown_field", Location("t.yaml", 30, 12)),  # unknown subject: no further type errors
    }
    bound = bind_subject(parse_cell("[1..5)", cell_loc), p("ticket.amout"))
    assert [e.code for e in check(bound, ENV, cell_loc)] == ["unknown_field"]
