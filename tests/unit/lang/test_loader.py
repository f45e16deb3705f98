"""`rulesvc check` diagnostics: every authoring error kind, positioned as `file:line:col: message`.

Each test writes a small rules folder (kinds/<kind>.yaml + one ruleset) into tmp_path and loads it with
`load_folder`. Expected positions are computed from the YAML text itself (`pos(text, needle)`: 1-based line
and column of the first character of `needle`, counting characters, so Chinese text counts one per char).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rulesvc.errors import InvalidRulesetError, RulesetError
from rulesvc.lang.loader import load_folder
from rulesvc.rulebook import RuleBook

EXPENSE_KIND = """\
kind: expense
description: 费用报销
enums:
  职级: [员工, 主管, 部门经理, 总监, 副总经理, 总经理]
fields:
  id: string
  expense_type: string
  amount: number
  applicant_rank: 职级
  applicant: string
"""

LOAN_KIND = """\
kind: loan
description: 贷款申请
enums:
  信用评级: [C, B, BB, BBB, A, AA, AAA]
fields:
  region: string
  amount: number
  credit_rating: 信用评级
  owner: string
  stage: string
"""


def write_folder(
    root: Path, ruleset: str, *, name: str = "r.yaml", kinds: dict[str, str] | None = None
) -> Path:
    """A rules folder with the expense and loan kinds and one ruleset file; returns the ruleset's path."""
    (root / "kinds").mkdir(exist_ok=True)
    for kind, text in (kinds or {"expense": EXPENSE_KIND, "loan": LOAN_KIND}).items():
        (root / "kinds" / f"{kind}.yaml").write_text(text, encoding="utf-8")
    path = root / name
    path.write_text(textwrap.dedent(ruleset), encoding="utf-8")
    return path


def check(
    root: Path, ruleset: str, *, name: str = "r.yaml", kinds: dict[str, str] | None = None
) -> tuple[Path, str, list[RulesetError]]:
    """Write the folder, load it; returns (ruleset path, ruleset text as written, every error)."""
    path = write_folder(root, ruleset, name=name, kinds=kinds)
    _folder, errors = load_folder([root])
    return path, path.read_text(encoding="utf-8"), errors


def pos(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, col) of the `occurrence`-th appearance of `needle` in `text`."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def the(errors: list[RulesetError], code: str) -> RulesetError:
    found = [e for e in errors if e.code == code]
    assert len(found) == 1, f"expected exactly one {code!r}, got: {[str(e) for e in errors]}"
    return found[0]


def assert_at(error: RulesetError, file: Path, line: int, col: int) -> None:
    assert str(error).startswith(f"{file}:{line}:{col}: "), str(error)
    assert (error.location.file, error.location.line, error.location.col) == (str(file), line, col)


def rule(when: str | None = None, then: str = "[{auto_approve: {}}]", on: str = "[ticket.created]") -> str:
    lines = ["ruleset: r", "kind: expense", "rules:", "  - id: 规则1", f"    on: {on}"]
    if when is not None:
        lines.append(f"    when: {when}")
    lines.append(f"    then: {then}")
    return "\n".join(lines) + "\n"


# ---- YAML syntax ----------------------------------------------------------------------------------------


def test_yaml_syntax_unquoted_comparison_cell(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: 报销审批
            on: [ticket.created]
            inputs: {职级: ticket.applicant_rank}
            rows:
              - 职级: >= 部门经理
                then: [{auto_approve: {}}]
            default: {then: []}
        """,
    )
    error = the(errors, "yaml.syntax")
    line, col = pos(text, ">= 部门经理")
    # ruamel reads `>` as a folded-scalar indicator and stops at the `=` that follows it
    assert_at(error, path, line, col + 1)
    assert error.message.startswith("YAML 语法错误（")  # the parser's English words follow, for logs
    assert error.hint is not None and "要加引号" in error.hint
    assert len(errors) == 1


def test_yaml_syntax_colon_space_inside_value(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        rules:
          - id: 规则1
            on: [ticket.created]
            then:
              - escalate:
                  to: owner
                  message: 注意: 金额
        """,
    )
    error = the(errors, "yaml.syntax")
    line, col = pos(text, ": 金额")
    assert_at(error, path, line, col)
    assert "mapping values are not allowed" in error.message


# ---- schema: fields, types, enums -----------------------------------------------------------------------


def test_unknown_field_with_suggestion(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule("ticket.amout > 5000"))
    error = the(errors, "unknown_field")
    assert_at(error, path, *pos(text, "ticket.amout"))
    assert str(error) == f"{path}:6:11: 未知字段 ticket.amout（提示：是不是 ticket.amount？）"


def test_unknown_field_in_table_input(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            inputs:
              金额: ticket.amout
            rows:
              - 金额: "< 5000"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "unknown_field")
    assert_at(error, path, *pos(text, "ticket.amout"))
    assert error.hint is not None and "ticket.amount" in error.hint


def test_type_mismatch_string_field_vs_number(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule("ticket.expense_type == 5000"))
    error = the(errors, "type_mismatch")
    assert_at(error, path, *pos(text, "5000"))
    assert "ticket.expense_type（string）" in error.message and "（number）" in error.message
    assert error.hint is not None and '"5000"' in error.hint


def test_type_mismatch_number_field_vs_string(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule('ticket.amount > "五千"'))
    error = the(errors, "type_mismatch")
    assert_at(error, path, *pos(text, '"五千"'))
    assert "ticket.amount（number）" in error.message and "（string）" in error.message


def test_type_mismatch_in_table_cell(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            inputs: {金额: ticket.amount}
            rows:
              - 金额: 差旅费
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "type_mismatch")
    assert_at(error, path, *pos(text, "差旅费"))


def test_unknown_enum_value_with_suggestion(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule('ticket.applicant_rank >= "部门经里"'))
    error = the(errors, "unknown_enum_value")
    assert_at(error, path, *pos(text, '"部门经里"'))
    assert "部门经里" in error.message and "职级" in error.message
    assert error.hint is not None and "部门经理" in error.hint and "是不是" in error.hint


def test_unknown_enum_value_in_table_cell(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            inputs: {职级: ticket.applicant_rank}
            rows:
              - 职级: ">= 部门经里"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "unknown_enum_value")
    assert_at(error, path, *pos(text, "部门经里"))
    assert error.hint is not None and "部门经理" in error.hint


# ---- actions ----------------------------------------------------------------------------------------------


def test_unknown_action_with_suggestion(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule(then="[{auto_aprove: {}}]"))
    error = the(errors, "unknown_action")
    assert_at(error, path, *pos(text, "auto_aprove"))
    assert "auto_aprove" in error.message
    assert error.hint == "是不是 'auto_approve'？"


def test_missing_parameter(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule(then="[{assign: {}}]"))
    error = the(errors, "missing_param")
    line, col = pos(text, "assign: {}")
    assert_at(error, path, line, col + len("assign: "))
    assert error.message == "动作 assign 需要参数 'group'"


def test_unknown_parameter_with_suggestion(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule(then="[{assign: {group: 费用审批岗, grup: x}}]"))
    error = the(errors, "unknown_param")
    assert_at(error, path, *pos(text, "grup"))
    assert error.message == "动作 assign 没有参数 'grup'"
    assert error.hint == "是不是 'group'？"


def test_duplicate_rule_id(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        rules:
          - id: 自动审批
            on: [ticket.created]
            then: [{auto_approve: {}}]
          - id: 自动审批
            on: [ticket.updated]
            then: [{auto_approve: {}}]
        """,
    )
    error = the(errors, "duplicate_id")
    assert_at(error, path, *pos(text, "自动审批", occurrence=2))
    assert "自动审批" in error.message and "第 4 行" in error.message


@pytest.mark.parametrize("fact", ["input", "ticket", "timer"])
def test_reserved_fact_names(tmp_path: Path, fact: str) -> None:
    """`input` is the engine's name for the event's own fact; the others are expression roots."""
    path, text, errors = check(
        tmp_path,
        f"""\
        ruleset: r
        kind: expense
        facts:
          {fact}: {{n: number}}
        rules:
          - id: 自动审批
            on: [ticket.created]
            then: [{{auto_approve: {{}}}}]
        """,
    )
    error = the(errors, "reserved_name")
    assert_at(error, path, *pos(text, f"{fact}: {{n"))


# ---- decision tables: shadowed / overlapping rows, and no false positives ---------------------------------


def test_shadowed_row_under_first(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: 报销审批
            on: [ticket.created]
            hit: first
            inputs: {金额: ticket.amount, 职级: ticket.applicant_rank}
            rows:
              - id: 小额
                金额: "< 5000"
                then: [{auto_approve: {}}]
              - id: 更小额高职级
                金额: "< 1000"
                职级: ">= 部门经理"
                then: [{auto_approve: {}}]
            default: {then: []}
        """,
    )
    error = the(errors, "unreachable_row")
    line, col = pos(text, "- id: 更小额高职级")
    assert_at(error, path, line, col + 2)
    assert "更小额高职级" in error.message and "小额" in error.message and "第 9 行" in error.message


def test_row_whose_cell_accepts_nothing_is_unreachable(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            inputs: {金额: ticket.amount}
            rows:
              - 金额: "> 5000 and < 3000"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "unreachable_row")
    line, col = pos(text, '金额: "> 5000')
    assert_at(error, path, line, col)
    assert "不接受任何值" in error.message


def test_overlapping_rows_under_unique(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: 金额分段
            on: [ticket.created]
            hit: unique
            inputs: {金额: ticket.amount}
            rows:
              - id: 低
                金额: "[0..1000]"
                then: []
              - id: 中
                金额: "[1000..5000)"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "overlapping_rows")
    line, col = pos(text, "- id: 中")
    assert_at(error, path, line, col + 2)
    assert "'低'" in error.message and "'中'" in error.message and "unique" in error.message


def test_overlapping_rows_under_unique_with_enum_order(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: loan
        tables:
          - id: 评级
            on: [ticket.created]
            hit: unique
            inputs: {评级: ticket.credit_rating}
            rows:
              - id: 好
                评级: ">= A"
                then: []
              - id: 中
                评级: "[BBB..AA]"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "overlapping_rows")
    assert_at(error, path, *pos(text, "id: 中"))


def test_disjoint_unique_rows_and_ordered_first_rows_are_not_reported(tmp_path: Path) -> None:
    _path, _text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: loan
        tables:
          - id: 评级分段
            on: [ticket.created]
            hit: unique
            inputs: {评级: ticket.credit_rating}
            rows:
              - 评级: ">= A"
                then: []
              - 评级: "< A"
                then: []
            default: {then: []}
          - id: 金额分段
            on: [ticket.created]
            hit: unique
            inputs: {金额: ticket.amount, 地区: ticket.region}
            rows:
              - 金额: "[0..1000)"
                then: []
              - 金额: "[1000..5000)"
                then: []
              - 金额: ">= 5000"
                地区: 上海浦东
                then: []
              - 金额: ">= 5000"
                地区: 北京海淀
                then: []
              - 金额: "< 0"
                then: []
            default: {then: []}
          - id: 审批级别
            on: [ticket.created]
            hit: first
            inputs: {金额: ticket.amount, 评级: ticket.credit_rating}
            rows:
              - 金额: "< 1000000"
                评级: ">= A"
                then: []
              - 金额: "< 10000000"
                评级: ">= BBB"
                then: []
              - 评级: "< BBB"
                then: []
              - 金额: ">= 10000000"
                then: []
            default: {then: []}
          - id: 地区分派
            on: [ticket.created]
            hit: first
            inputs: {地区: ticket.region}
            rows:
              - 地区: 上海浦东
                then: []
              - 地区: "in [上海浦东, 北京海淀]"
                then: []
              - 地区: "not in [上海浦东, 北京海淀]"
                then: []
            default: {then: []}
        """,
    )
    assert errors == []


def test_collect_tables_may_overlap(tmp_path: Path) -> None:
    _path, _text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            hit: collect
            inputs: {金额: ticket.amount}
            rows:
              - 金额: "< 5000"
                then: []
              - 金额: "< 1000"
                then: []
            default: {then: []}
        """,
    )
    assert errors == []


def test_missing_default_row(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: loan
        tables:
          - id: 地区分派
            on: [ticket.created]
            inputs: {地区: ticket.region}
            rows:
              - 地区: 上海浦东
                then: [{assign: {group: 浦东分行信贷审批A组}}]
        """,
    )
    error = the(errors, "missing_default")
    line, col = pos(text, "- id: 地区分派")
    assert_at(error, path, line, col + 2)
    assert error.hint is not None and "default: {then: []}" in error.hint


def test_unknown_column_in_row(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.created]
            inputs: {金额: ticket.amount}
            rows:
              - 金钱: "< 5000"
                then: []
            default: {then: []}
        """,
    )
    error = the(errors, "unknown_column")
    assert_at(error, path, *pos(text, "金钱"))
    assert error.hint == "是不是 '金额'？"


# ---- events, calendars, durations, kinds --------------------------------------------------------------------


def test_unknown_event_type_in_on(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule(on="[ticket.created, ticket.create]"))
    error = the(errors, "unknown_event")
    assert_at(error, path, *pos(text, "ticket.create]"))
    assert error.hint == "是不是 'ticket.created'？"


def test_unknown_calendar(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path, rule(then="[{start_timer: {timer: 审批, duration: 4h, calendar: cnn}}]")
    )
    error = the(errors, "unknown_calendar")
    assert_at(error, path, *pos(text, "cnn"))
    assert "cnn" in error.message
    assert error.hint is not None and "24x7" in error.hint


@pytest.mark.parametrize("duration", ["4 hours", "0h", "90", "2x"])
def test_bad_duration(tmp_path: Path, duration: str) -> None:
    path, text, errors = check(
        tmp_path, rule(then=f"[{{start_timer: {{timer: 审批, duration: {duration}}}}}]")
    )
    error = the(errors, "bad_duration")
    assert_at(error, path, *pos(text, duration + "}"))
    assert error.message.startswith("不是时长：")
    assert error.hint is not None and "90m" in error.hint


def test_duration_in_chinese_units_is_accepted(tmp_path: Path) -> None:
    _path, _text, errors = check(tmp_path, rule(then="[{start_timer: {timer: 审批, duration: 4小时}}]"))
    assert errors == []


def test_bad_warning_duration(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path, rule(then="[{start_timer: {timer: 审批, duration: 2h, warnings: {预警: soon}}}]")
    )
    error = the(errors, "bad_duration")
    assert_at(error, path, *pos(text, "soon"))


def test_unknown_ticket_kind(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, "ruleset: r\nkind: expens\nrules: []\n")
    error = the(errors, "unknown_kind")
    assert_at(error, path, *pos(text, "expens\n"))
    assert error.hint == "是不是 'expense'？"


def test_unknown_type_in_kind_file(tmp_path: Path) -> None:
    bad_kind = EXPENSE_KIND.replace("amount: number", "amount: numbr")
    write_folder(tmp_path, "ruleset: r\nkind: expense\nrules: []\n", kinds={"expense": bad_kind})
    _folder, errors = load_folder([tmp_path])
    error = the(errors, "unknown_type")
    kind_file = tmp_path / "kinds" / "expense.yaml"
    assert_at(error, kind_file, *pos(bad_kind, "numbr"))
    assert error.hint == "是不是 'number'？"


# ---- expression syntax: the exact column inside `when:` ---------------------------------------------------


def test_expression_syntax_error_in_plain_when(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule("ticket.amount > > 5000"))
    error = the(errors, "expr_syntax")
    assert_at(error, path, *pos(text, "> 5000"))  # the second `>`, where a value was expected
    assert error.message == "'>' 后面应有一个值"


def test_expression_syntax_error_in_quoted_when(tmp_path: Path) -> None:
    path, text, errors = check(tmp_path, rule('"ticket.amount < 5000 and ) "'))
    error = the(errors, "expr_syntax")
    assert_at(error, path, *pos(text, ")"))
    assert "'and' 后面" in error.message


def test_expression_syntax_error_on_first_line_of_block_when(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        rules:
          - id: 规则1
            on: [ticket.created]
            when: |
              ticket.amount < 5000 and )
            then: [{auto_approve: {}}]
        """,
    )
    error = the(errors, "expr_syntax")
    assert_at(error, path, *pos(text, ")"))


def test_expression_syntax_error_on_later_line_of_block_when(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        rules:
          - id: 规则1
            on: [ticket.created]
            when: |
              ticket.amount < 5000 and
                ticket.expense_type == "差旅费" == "x"
            then: [{auto_approve: {}}]
        """,
    )
    error = the(errors, "expr_syntax")
    assert_at(error, path, *pos(text, '== "x"'))


def test_expression_syntax_error_on_later_line_of_folded_when(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        rules:
          - id: 规则1
            on: [ticket.created]
            when: >
              ticket.amount < 5000 and
              ticket.amount > > 3
            then: [{auto_approve: {}}]
        """,
    )
    error = the(errors, "expr_syntax")
    assert_at(error, path, *pos(text, "> 3"))


def test_expression_error_inside_action_template_and_expression(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        rule(
            then='[{escalate: {to: owner, message: "报销 {ticket.amout} 元"}}, '
            '{trigger_payment: {amount: "= ticket.amount * "}}]'
        ),
    )
    unknown = the(errors, "unknown_field")
    assert_at(unknown, path, *pos(text, "ticket.amout"))
    syntax = the(errors, "expr_syntax")
    assert_at(syntax, path, *pos(text, '* "'))


# ---- everything at once ---------------------------------------------------------------------------------


def test_all_errors_of_a_file_reported_at_once_sorted_by_position(tmp_path: Path) -> None:
    path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: t
            on: [ticket.creatd]
            inputs: {金额: ticket.amount}
            rows:
              - 金钱: "< 5000"
                then: []
        rules:
          - id: a
            on: [ticket.created]
            when: ticket.amout > 5
            then: [{auto_aprove: {}}]
          - id: b
            on: [ticket.created]
            when: ticket.applicant_rank >= "部门经里"
            then: [{assign: {grup: x}}]
          - id: a
            on: [ticket.created]
            when: ticket.amount > > 5
            then: [{start_timer: {timer: t, duration: 2x, calendar: cnn}}]
        """,
    )
    expected = [
        ("missing_default", pos(text, "id: t")),
        ("unknown_event", pos(text, "ticket.creatd")),
        ("unknown_column", pos(text, "金钱")),
        ("unknown_field", pos(text, "ticket.amout")),
        ("unknown_action", pos(text, "auto_aprove")),
        ("unknown_enum_value", pos(text, '"部门经里"')),
        ("missing_param", pos(text, "{grup")),
        ("unknown_param", pos(text, "grup")),
        ("duplicate_id", pos(text, "a\n", occurrence=2)),
        ("expr_syntax", pos(text, "> 5\n", occurrence=2)),
        ("bad_duration", pos(text, "2x")),
        ("unknown_calendar", pos(text, "cnn")),
    ]
    assert [(e.code, (e.location.line, e.location.col)) for e in errors] == expected
    assert all(str(e).startswith(f"{path}:{e.location.line}:{e.location.col}: ") for e in errors)
    keys = [(e.location.line, e.location.col) for e in errors]
    assert keys == sorted(keys)


def test_errors_sorted_across_files_and_rulebook_raises_them_all(tmp_path: Path) -> None:
    write_folder(tmp_path, rule("ticket.amout > 5"), name="b.yaml")
    (tmp_path / "a.yaml").write_text(rule(then="[{auto_aprove: {}}]").replace("ruleset: r", "ruleset: a"))
    _folder, errors = load_folder([tmp_path])
    assert [(Path(e.location.file).name, e.code) for e in errors] == [
        ("a.yaml", "unknown_action"),
        ("b.yaml", "unknown_field"),
    ]
    with pytest.raises(InvalidRulesetError) as caught:
        RuleBook.load([tmp_path])
    assert [e.code for e in caught.value.errors] == ["unknown_action", "unknown_field"]
    assert str(caught.value).splitlines() == [str(e) for e in errors]


def test_valid_folder_has_no_errors(tmp_path: Path) -> None:
    _path, _text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: expense
        tables:
          - id: 报销审批
            on: [ticket.created]
            hit: first
            inputs: {费用类型: ticket.expense_type, 金额: ticket.amount, 职级: ticket.applicant_rank}
            rows:
              - 费用类型: 差旅费
                金额: "< 5000"
                职级: ">= 部门经理"
                then: [{auto_approve: {}}, {trigger_payment: {amount: ticket.amount}}]
            default: {then: [{assign: {group: 费用审批岗}}]}
        rules:
          - id: 提醒
            on: [ticket.created]
            when: |
              ticket.amount >= 5000 and
                ticket.applicant_rank < "部门经理"
            then:
              - notify: {to: owner, channels: [sms, email, in_app], message: "报销 {ticket.id} 待审批"}
              - start_timer: {timer: 审批, duration: 2h, calendar: "24x7", warnings: {预警: 1.5h}}
        """,
    )
    assert errors == []


def test_yaml_duplicate_key_has_its_own_code(tmp_path: Path) -> None:
    _, _, errors = check(tmp_path, "ruleset: r\nkind: expense\nkind: loan\nrules: []\n")
    error = the(errors, "yaml.duplicate_key")
    assert error.message.startswith("同一层级的键重复（") and error.location.line == 3


# ---- on: field changes (enter / leave) ------------------------------------------------------------------------


def test_on_takes_field_changes_beside_event_types(tmp_path: Path) -> None:
    write_folder(
        tmp_path,
        """\
        ruleset: r
        kind: loan
        rules:
          - id: 进入初审
            on: [{enter: {stage: 初审}}, ticket.resumed]
            then:
              - notify: {to: owner, channels: [in_app], message: "m"}
          - id: 离开初审
            on: {leave: {stage: 初审}}
            then:
              - notify: {to: owner, channels: [in_app], message: "m"}
        """,
    )
    folder, errors = load_folder([tmp_path])
    assert errors == []
    enter, leave = folder.rulesets["r"].rules
    assert enter.on == ("ticket.resumed",) and [t.key for t in enter.transitions] == [
        ("enter", "stage", "初审")
    ]
    assert leave.on == () and [t.key for t in leave.transitions] == [("leave", "stage", "初审")]
    assert "ticket.updated" in leave.triggers and "timer.due" not in leave.triggers


def test_bad_field_changes_are_positioned_errors_in_chinese(tmp_path: Path) -> None:
    _path, text, errors = check(
        tmp_path,
        """\
        ruleset: r
        kind: loan
        rules:
          - id: a
            on: [{enter: {stagee: 初审}}, {leave: {amount: 初审}}, {enter: 3}, {move: {stage: x}}, ticket.creatd]
            then:
              - notify: {to: owner, channels: [in_app], message: "m"}
        """,
    )
    by_code = sorted((e.code, (e.location.line, e.location.col)) for e in errors if e.location is not None)
    assert by_code == sorted(
        [
            ("unknown_field", pos(text, "stagee")),
            ("bad_transition", pos(text, "amount")),
            ("bad_transition", pos(text, "3}")),
            ("bad_transition", pos(text, "{move")),
            ("unknown_event", pos(text, "ticket.creatd")),
        ]
    )
    unknown = the(errors, "unknown_field")
    assert "工单没有字段 stagee" in unknown.message and unknown.hint is not None and "stage" in unknown.hint
    assert any("只能看文本字段" in e.message for e in errors)
