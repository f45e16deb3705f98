"""A test-only renderer for the subset of Helm's template language the rulesvc chart uses, so that the chart
is rendered and its manifests validated offline where no `helm` binary can be installed.

The subset: `{{ .Values.a.b }}`, `.Release.Name`, `.Release.Namespace`, `.Chart.Name|Version|AppVersion`;
pipelines through `quote`, `toYaml`, `nindent N` and `indent N`; `if` / `else` / `end`; comments; the `{{-`
and `-}}` whitespace trims. Anything else (another function, `range`, `include`, `define`, a missing value)
is an error, never silently rendered: a chart that outgrows the subset fails its test until the test grows
with it (or a real `helm template` replaces this).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(ValueError):
    pass


def render_chart(
    chart: Path, release: str, namespace: str = "default", values: dict[str, Any] | None = None
) -> dict[str, str]:
    """Template file name → rendered text (files whose name starts with `_` and NOTES.txt are skipped)."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    merged = _merge(yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8")) or {}, values or {})
    scope = {
        "Values": merged,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")},
    }
    rendered = {}
    for path in sorted((chart / "templates").glob("*")):
        if path.name.startswith("_") or path.name == "NOTES.txt":
            continue
        try:
            rendered[path.name] = render(path.read_text(encoding="utf-8"), scope)
        except TemplateError as exc:
            raise TemplateError(f"{path.name}: {exc}") from None
    return rendered


def render(text: str, scope: dict[str, Any]) -> str:
    tokens = _tokens(text)
    out, rest = _block(tokens, 0, scope, emit=True)
    if rest != len(tokens):
        raise TemplateError(f"unexpected {{{{ {tokens[rest][1]} }}}}")
    return out


def _tokens(text: str) -> list[tuple[str, str]]:
    """("text", s) and ("action", body) in order, with the trims applied to the text around actions."""
    tokens: list[tuple[str, str]] = []
    position = 0
    trim_next = False
    for match in ACTION.finditer(text):
        before = text[position : match.start()]
        if trim_next:
            before = before.lstrip()
        if match.group(1):
            before = before.rstrip()
        tokens.append(("text", before))
        tokens.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        position = match.end()
    tail = text[position:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    return tokens


def _block(tokens: list[tuple[str, str]], index: int, scope: dict[str, Any], emit: bool) -> tuple[str, int]:
    """Render from `index` up to an `else`/`end` (not consumed) or the end."""
    out: list[str] = []
    while index < len(tokens):
        kind, body = tokens[index]
        if kind == "text":
            if emit:
                out.append(body)
            index += 1
        elif body.startswith("/*") and body.endswith("*/"):
            index += 1
        elif body in ("else", "end"):
            break
        elif body.startswith("if "):
            condition = _truthy(_pipeline(body[3:], scope)) if emit else False
            then, index = _block(tokens, index + 1, scope, emit and condition)
            otherwise = ""
            if index < len(tokens) and tokens[index][1] == "else":
                otherwise, index = _block(tokens, index + 1, scope, emit and not condition)
            if index >= len(tokens) or tokens[index][1] != "end":
                raise TemplateError(f"`{{{{ {body} }}}}` has no `{{{{ end }}}}`")
            index += 1
            out.append(then if condition else otherwise)
        else:
            if emit:
                out.append(_text(_pipeline(body, scope)))
            index += 1
    return "".join(out), index


def _pipeline(body: str, scope: dict[str, Any]) -> Any:
    stages = [stage.strip() for stage in body.split("|")]
    first = stages[0].split()
    if len(first) == 2 and first[0] in ("quote", "toYaml"):  # `toYaml .Values.x` is `.Values.x | toYaml`
        stages[0:1] = [first[1], first[0]]
    value = _operand(stages[0], scope)
    for stage in stages[1:]:
        name, *args = stage.split()
        if name == "quote" and not args:
            value = json.dumps(_text(value), ensure_ascii=False)
        elif name == "toYaml" and not args:
            value = yaml.safe_dump(
                value, default_flow_style=False, sort_keys=True, allow_unicode=True
            ).rstrip("\n")
        elif name in ("indent", "nindent") and len(args) == 1 and args[0].isdigit():
            pad = " " * int(args[0])
            value = "\n".join(pad + line if line else line for line in _text(value).split("\n"))
            if name == "nindent":
                value = "\n" + value
        else:
            raise TemplateError(f"unsupported function `{stage}`")
    return value


def _operand(text: str, scope: dict[str, Any]) -> Any:
    if re.fullmatch(r'"[^"\\]*"', text):
        return text[1:-1]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if not re.fullmatch(r"(\.[A-Za-z_][A-Za-z0-9_]*)+", text):
        raise TemplateError(f"unsupported expression `{text}`")
    value: Any = scope
    for part in text[1:].split("."):
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"`{text}` has no value")
        value = value[part]
    return value


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != {} and value != []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError("a map or list printed without toYaml")
    return str(value)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
