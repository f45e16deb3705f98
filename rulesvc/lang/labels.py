"""Chinese names of actions and their parameters, for what people read (diffs, case changes, reports).

The YAML keeps the English action names (they are the contract with ticket tools); people reviewing a
change read `分派（审批组: 浦东分行信贷审批A组）` rather than `assign(group: …)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rulesvc.model import to_jsonable

ACTIONS = {
    "assign": "分派",
    "set_approval_level": "设定审批级别",
    "request_review": "发起会审",
    "auto_approve": "自动审批",
    "trigger_payment": "触发付款",
    "notify": "通知",
    "escalate": "升级",
    "start_timer": "启动计时",
    "cancel_timer": "停止计时",
    "pause_timer": "暂停计时",
    "resume_timer": "恢复计时",
    "assert": "认定事实",
}
PARAMS = {
    "group": "审批组",
    "level": "审批级别",
    "reviewer": "审核方",
    "amount": "金额",
    "to": "对象",
    "channels": "渠道",
    "message": "消息",
    "timer": "计时器",
    "duration": "时长",
    "calendar": "日历",
    "warnings": "预警",
    "fact": "事实",
    "with": "字段",
}


def _value(value: Any) -> str:
    value = to_jsonable(value)
    if isinstance(value, list):
        return "、".join(_value(v) for v in value)
    if isinstance(value, dict):
        return "，".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


def action_label(action_type: str, params: Mapping[str, Any]) -> str:
    """`分派（审批组: 浦东分行信贷审批A组）`; an action without parameters is its name alone."""
    name = ACTIONS.get(action_type, action_type)
    body = "，".join(f"{PARAMS.get(k, k)}: {_value(v)}" for k, v in params.items())
    return f"{name}（{body}）" if body else name
