"""`rulesvc check | test | simulate` through typer's CliRunner on the real `cli.app`."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from typer.testing import CliRunner, Result

import cli
from cli import authoring as cli_authoring
from cli import ops as cli_ops

RULESETS = Path(__file__).resolve().parents[3] / "rulesets"
POSITIONED = re.compile(r"^(?P<file>[^:]+\.yaml):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def _registered() -> set[str]:
    return {c.name or (c.callback.__name__ if c.callback else "") for c in cli.app.registered_commands}


if "check" not in _registered():
    cli_authoring.register(cli.app)
if "serve" not in _registered():
    cli_ops.register(cli.app)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def small_copy(root: Path, *rulesets: str, cases: tuple[str, ...] = ()) -> Path:
    """A copy of some shipped rulesets (with their kinds and the named case files); no cn calendar to load."""
    (root / "kinds").mkdir(parents=True)
    (root / "cases").mkdir()
    for name in rulesets:
        shutil.copy(RULESETS / f"{name}.yaml", root / f"{name}.yaml")
    for kind in ("complaint", "expense", "loan"):
        shutil.copy(RULESETS / "kinds" / f"{kind}.yaml", root / "kinds" / f"{kind}.yaml")
    for name in cases:
        shutil.copy(RULESETS / "cases" / f"{name}.yaml", root / "cases" / f"{name}.yaml")
    return root


# ---- check ----------------------------------------------------------------------------------------------------


def test_check_shipped_rulesets_exits_0() -> None:
    result = run("check", RULESETS)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("检查通过：5 个规则集")
    assert "51 个样例" in result.stdout


def test_check_broken_folder_exits_1_with_positioned_errors(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "expense-approval")
    expense = root / "expense-approval.yaml"
    text = expense.read_text(encoding="utf-8")
    text = text.replace('职级: ">= 部门经理"', '职级: ">= 部门经里"').replace(
        "ticket.amount}", "ticket.amout}"
    )
    expense.write_text(text, encoding="utf-8")
    (root / "cases" / "broken.yaml").write_text("cases:\n  - name: x\n    given: []\n", encoding="utf-8")
    result = run("check", root)
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 3, result.stdout
    parsed = [POSITIONED.match(line) for line in lines]
    assert all(parsed), lines
    names = [Path(m["file"]).name for m in parsed if m]
    assert names == ["broken.yaml", "expense-approval.yaml", "expense-approval.yaml"]
    assert "样例 'x' 的 `given` 下至少要有一个事件" in lines[0]
    source = text.splitlines()
    enum_line = next(i for i, line in enumerate(source, 1) if "部门经里" in line)
    field_line = next(i for i, line in enumerate(source, 1) if "ticket.amout" in line)
    assert parsed[1] is not None and parsed[2] is not None
    assert (int(parsed[1]["line"]), int(parsed[1]["col"])) == (
        enum_line,
        source[enum_line - 1].index("部门经里") + 1,
    )
    assert "部门经里" in lines[1] and "部门经理" in lines[1]
    assert (int(parsed[2]["line"]), int(parsed[2]["col"])) == (
        field_line,
        source[field_line - 1].index("ticket.amout") + 1,
    )
    assert "未知字段 ticket.amout" in lines[2] and "是不是 ticket.amount？" in lines[2]
    assert "共 3 处错误" in result.output


SELF_ENABLING = """\
ruleset: 自我触发
kind: expense
facts:
  计数: {n: number}
  其他: {n: number}
rules:
  - id: 起点
    on: [ticket.created]
    then: [{assert: {fact: 计数, with: {n: 1}}}]
  - id: 累加
    on: [ticket.created]
    when: 计数 and 计数.n < 100
    then:
      - assert: {fact: 计数, with: {n: "= 计数.n + 1"}}
  - id: 甲
    on: [ticket.created]
    when: 其他
    then: [{assert: {fact: 其他, with: {n: 其他.n}}}]
  - id: 无关
    on: [ticket.updated]
    when: 计数
    then: [{assign: {group: 甲}}]
"""


def test_check_warns_about_a_rule_whose_assert_can_enable_it_again(tmp_path: Path) -> None:
    """Positioned at the assert, on stderr, not fatal."""
    root = small_copy(tmp_path, "expense-approval")
    (root / "loop.yaml").write_text(SELF_ENABLING, encoding="utf-8")
    result = run("check", root)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("检查通过：2 个规则集")
    warnings = [line for line in result.stderr.splitlines() if "chaining" in line or "规则" in line]
    assert len(warnings) == 2, result.stderr
    parsed = [POSITIONED.match(line) for line in warnings]
    assert all(parsed), warnings
    source = SELF_ENABLING.splitlines()
    lines = [int(m["line"]) for m in parsed if m]
    assert [source[n - 1].strip()[:20] for n in lines] == [
        "- assert: {fact: 计数,",
        "then: [{assert: {fac",
    ]
    assert "警告：规则 累加 推出的事实 计数 会再次满足它自己的条件" in warnings[0]


# ---- test ----------------------------------------------------------------------------------------------------


def test_test_shipped_rulesets_with_junit(tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = run("test", RULESETS, "--junit", junit, "--min-coverage", "100")
    assert result.exit_code == 0, result.output
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASS 通过 ")]
    assert len(passed) == 51  # every case on its own line, led by the stable token
    assert "未通过 0 个" in result.stdout and "\nFAIL " not in result.stdout
    assert "通过 51 个，未通过 0 个；覆盖 23/23 条规则与决策表行（100%）" in result.stdout
    root = ElementTree.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("51", "0", "0")
    assert len(root.findall("testcase")) == 51
    assert [p.get("value") for p in root.iter("property") if p.get("name") == "coverage"] == ["1.0000"]


def test_test_broken_case_exits_1_with_fail_and_diff(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "complaint-sla", cases=("complaint-sla",))
    cases = root / "cases" / "complaint-sla.yaml"
    text = cases.read_text(encoding="utf-8")
    wrong = "{type: escalate, at: 2026-11-02T11:30:00+08:00, to: supervisor}"
    text = text.replace("{type: escalate, at: 2026-11-02T11:00:00+08:00, to: supervisor}", wrong, 1)
    cases.write_text(text, encoding="utf-8")
    result = run("test", root)
    assert result.exit_code == 1
    out = result.stdout
    assert "FAIL 未通过 始终未受理1.5小时预警2小时升级" in out
    assert "期望 {type: escalate, at: 2026-11-02T11:30:00+08:00, to: supervisor}，但没有这样的动作" in out
    block = out[out.index("FAIL 未通过 始终未受理") :].split("\nPASS ")[0]
    assert "实际动作：" in block
    assert "2026-11-02T11:00:00+08:00  escalate(to=supervisor" in block
    assert "2026-11-02T10:30:00+08:00  notify(to=owner" in block
    assert "通过 9 个，未通过 1 个" in out


def test_test_lists_uncovered_rules_and_enforces_min_coverage(tmp_path: Path) -> None:
    root = small_copy(tmp_path, "complaint-sla", "expense-approval", "loan-routing", cases=("complaint-sla",))
    result = run("test", root)
    assert result.exit_code == 0, result.output
    assert "覆盖 6/11 条规则与决策表行（55%）" in result.stdout
    uncovered = result.stdout[result.stdout.index("没有样例触发的规则与决策表行：") :].splitlines()[1:]
    assert uncovered == [
        "  - expense-approval/报销审批#差旅费小额自动审批",
        "  - expense-approval/报销审批#默认",
        "  - loan-routing/地区分派#上海浦东",
        "  - loan-routing/地区分派#北京海淀",
        "  - loan-routing/地区分派#默认",
    ]
    assert run("test", root, "--min-coverage", "100").exit_code == 1


# ---- simulate ------------------------------------------------------------------------------------------------

COMPLAINT_EVENTS = [
    {
        "event_id": "evt-1",
        "type": "ticket.created",
        "occurred_at": "2026-11-02T09:00:00+08:00",
        "ticket": {"kind": "complaint", "id": "C-2026-0042", "owner": "王五", "channel": "电话"},
    }
]


def timeline_actions(stdout: str) -> list[tuple[datetime, dict[str, Any]]]:
    data = json.loads(stdout)
    assert list(data) == ["timeline"]
    return [(datetime.fromisoformat(e["at"]), a) for e in data["timeline"] for a in e["actions"]]


def test_simulate_complaint_prints_the_timeline(tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    events.write_text(json.dumps(COMPLAINT_EVENTS, ensure_ascii=False), encoding="utf-8")
    result = run("simulate", events, "--until", "2026-11-02T12:00:00+08:00", "--rulesets", RULESETS)
    assert result.exit_code == 0, result.output
    got = [(at.isoformat(), a["type"]) for at, a in timeline_actions(result.stdout)]
    assert got == [
        ("2026-11-02T09:00:00+08:00", "start_timer"),
        ("2026-11-02T10:30:00+08:00", "notify"),
        ("2026-11-02T11:00:00+08:00", "escalate"),
    ]
    (_, notify) = timeline_actions(result.stdout)[1]
    assert sorted(notify["channels"]) == ["email", "in_app", "sms"] and notify["to"] == "owner"
    assert notify["rule"] == "complaint-sla/投诉超时预警"


def test_simulate_accepts_a_yaml_events_file_and_stops_after_acceptance(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(
        "events:\n"
        "  - {type: ticket.created, at: '2026-11-02T09:00:00+08:00', ticket: {kind: complaint, id: C-1, owner: 王五}}\n"
        "  - {type: ticket.accepted, at: '2026-11-02T10:00:00+08:00', ticket: {kind: complaint, id: C-1}}\n",
        encoding="utf-8",
    )
    result = run("simulate", events, "--until", "2026-11-02T18:00:00+08:00", "--rulesets", RULESETS)
    assert result.exit_code == 0, result.output
    got = [(at.isoformat(), a["type"]) for at, a in timeline_actions(result.stdout)]
    assert got == [
        ("2026-11-02T09:00:00+08:00", "start_timer"),
        ("2026-11-02T10:00:00+08:00", "cancel_timer"),
    ]


def test_simulate_rejects_a_bad_event(tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    events.write_text(
        json.dumps([{**COMPLAINT_EVENTS[0], "occurred_at": "2026-11-02T09:00:00"}]), encoding="utf-8"
    )
    result = run("simulate", events, "--until", "2026-11-02T12:00:00+08:00", "--rulesets", RULESETS)
    assert result.exit_code == 2
    assert (
        "events.0.occurred_at: 时间必须带时区偏移" in result.output
        and "[validation.naive_time]" in result.output
    )


UNIQUE_CONFLICT = """\
ruleset: 唯一分派
kind: complaint
tables:
  - id: 渠道
    on: [ticket.created]
    hit: unique
    inputs: {渠道: ticket.channel}
    rows:
      - {id: 含电话, 渠道: 'contains "电话"', then: [{assign: {group: 甲}}]}
      - {id: 电话银行, 渠道: 电话银行, then: [{assign: {group: 乙}}]}
    default: {then: []}
"""


def _conflicting_folder(root: Path) -> Path:
    folder = small_copy(root, "complaint-sla")
    (folder / "唯一分派.yaml").write_text(UNIQUE_CONFLICT, encoding="utf-8")
    return folder


def test_simulate_keeps_the_timeline_up_to_a_rule_error_and_exits_1(tmp_path: Path) -> None:
    """The issue's example: a unique-table conflict ended `rulesvc simulate` with a raw traceback and the
    whole timeline was lost."""
    folder = _conflicting_folder(tmp_path)
    events = tmp_path / "events.json"
    second = {
        **COMPLAINT_EVENTS[0],
        "event_id": "C-2",
        "occurred_at": "2026-11-02T09:20:00+08:00",
        "ticket": {"kind": "complaint", "id": "C-2", "owner": "李四", "channel": "电话银行"},
    }
    events.write_text(json.dumps([COMPLAINT_EVENTS[0], second], ensure_ascii=False), encoding="utf-8")
    result = run("simulate", events, "--until", "2026-11-02T12:00:00+08:00", "--rulesets", folder)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    data = json.loads(result.stdout)
    assert [entry["trigger"] for entry in data["timeline"]] == ["evt-1"]
    assert data["error"]["code"] == "rule.unique_conflict" and data["error"]["trigger"] == "C-2"
    assert data["error"]["rule"] == "渠道#电话银行"
    (line,) = result.stderr.strip().splitlines()
    parsed = POSITIONED.match(line)
    assert parsed is not None and Path(parsed["file"]).name == "唯一分派.yaml" and parsed["line"] == "10"
    assert (
        "决策表 渠道（hit: unique）有 2 行同时匹配：含电话、电话银行" in line
        and "Traceback" not in result.output
    )


def test_test_reports_a_rule_error_with_the_actions_before_it(tmp_path: Path) -> None:
    folder = _conflicting_folder(tmp_path)
    (folder / "cases" / "唯一分派.yaml").write_text(
        "cases:\n"
        "  - name: 电话银行投诉\n"
        "    given:\n"
        "      - {type: ticket.created, at: '2026-11-02T09:00:00+08:00',"
        " ticket: {kind: complaint, id: C-1, owner: 王五, channel: 电话银行}}\n"
        "    expect:\n"
        "      - {type: assign, group: 乙}\n",
        encoding="utf-8",
    )
    result = run("test", folder)
    assert result.exit_code == 1
    assert "FAIL 未通过 电话银行投诉" in result.stdout
    assert "运行出错 [rule.unique_conflict]：电话银行投诉#1 @ 2026-11-02T09:00:00+08:00：" in result.stdout
    assert "唯一分派.yaml:10:" in result.stdout and "Traceback" not in result.output


# ---- simulate and test validate as ingest does ---------------------------------------------------------------

INVALID_LOAN = {
    "event_id": "L-9",
    "type": "ticket.created",
    "occurred_at": "2026-11-02T09:30:00+08:00",
    "ticket": {"kind": "loan", "id": "L-9", "amount": "6,000,000", "credit_rating": "aa"},
}


def test_simulate_refuses_invalid_tickets_as_ingest_does(tmp_path: Path) -> None:
    """It used to simulate `"6,000,000"` / `aa` as a missing amount and decide 总行审批."""
    events = tmp_path / "events.json"
    events.write_text(json.dumps([COMPLAINT_EVENTS[0], INVALID_LOAN], ensure_ascii=False), encoding="utf-8")
    result = run("simulate", events, "--until", "2026-11-02T12:00:00+08:00", "--rulesets", RULESETS)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{events}: events.1.ticket.amount: " in result.stderr
    assert "[validation.not_a_number]" in result.stderr
    assert "是否应为 AA？ [validation.not_in_enum]" in result.stderr


def test_simulate_keeps_the_digits_of_json_numbers(tmp_path: Path) -> None:
    """It used to read 4999.999999999999999 as the float 5000.0: not auto-approved."""
    events = tmp_path / "events.json"
    events.write_text(
        '[{"event_id": "E-1", "type": "ticket.created", "occurred_at": "2026-11-02T09:00:00+08:00", "ticket":'
        ' {"kind": "expense", "id": "E-1", "expense_type": "差旅费", "amount": 4999.999999999999999,'
        ' "applicant_rank": "总监"}}]',
        encoding="utf-8",
    )
    result = run("simulate", events, "--until", "2026-11-02T10:00:00+08:00", "--rulesets", RULESETS)
    assert result.exit_code == 0, result.output
    assert '"amount": 4999.999999999999999' in result.stdout
    assert [a["type"] for _, a in timeline_actions(result.stdout)] == ["auto_approve", "trigger_payment"]


def _routing_folder(root: Path) -> Path:
    folder = small_copy(root, "loan-approval", "loan-routing")
    kind = folder / "kinds" / "loan.yaml"
    kind.write_text(kind.read_text(encoding="utf-8") + "invalid: {assign: 数据核查岗}\n", encoding="utf-8")
    return folder


def test_simulate_routes_invalid_tickets_under_the_kinds_policy(tmp_path: Path) -> None:
    folder = _routing_folder(tmp_path)
    events = tmp_path / "events.json"
    events.write_text(json.dumps([INVALID_LOAN], ensure_ascii=False), encoding="utf-8")
    result = run("simulate", events, "--until", "2026-11-02T12:00:00+08:00", "--rulesets", folder)
    assert result.exit_code == 0, result.output
    ((_, action),) = timeline_actions(result.stdout)
    assert (action["type"], action["group"], action["rule"]) == ("assign", "数据核查岗", "loan/invalid")
    assert [e["path"] for e in action["errors"]] == ["ticket.amount", "ticket.credit_rating"]


def test_a_case_with_invalid_input_is_routed_under_the_kinds_policy(tmp_path: Path) -> None:
    """Without a policy such a case is a `case.bad_event` error; with one, the case sees the routing ingest does."""
    folder = _routing_folder(tmp_path)
    (folder / "cases" / "invalid.yaml").write_text(
        "cases:\n"
        "  - name: 金额写成带逗号的文本\n"
        "    given:\n"
        "      - {type: ticket.created, at: '2026-11-02T09:00:00+08:00',"
        " ticket: {kind: loan, id: L-9, amount: '6,000,000', credit_rating: aa}}\n"
        "    expect:\n"
        "      - {type: assign, group: 数据核查岗}\n"
        "    expect_not:\n"
        "      - {type: set_approval_level}\n",
        encoding="utf-8",
    )
    result = run("test", folder, "-v")
    assert "PASS 通过 金额写成带逗号的文本" in result.stdout, result.output
    assert "assign(group=数据核查岗, errors=" in result.stdout
    plain = small_copy(tmp_path / "plain", "loan-approval", "loan-routing")
    shutil.copy(folder / "cases" / "invalid.yaml", plain / "cases" / "invalid.yaml")
    refused = run("test", plain)
    assert refused.exit_code == 1 and "事件不合格：事件不合法（2 处问题）" in refused.stdout
