"""The ruleset lifecycle API seen from a client: HTTP calls (httpx), and rules folders read and written
for import/export. Used by `rulesvc rulesets ...`; no rule logic here, the server decides everything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

CASES = "cases"
NOT_RULESETS = ("kinds", "calendars", CASES)
MANIFEST = ".rulesvc-export.json"
"""Written by `export` next to the files: which version each file is based on (sent back on push/import)."""


class RefusedError(Exception):
    """The server refused (4xx/5xx): `code`, `message` and `details` of its error body."""

    def __init__(self, status: int, code: str, message: str, details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class UnreachableError(Exception):
    pass


@dataclass
class RulesetsClient:
    url: str
    key: str | None
    timeout: float = 60.0

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            response = httpx.request(
                method, self.url.rstrip("/") + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise UnreachableError(f"连不上服务 {self.url}：{exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            body = body if isinstance(body, dict) else {}
            raise RefusedError(
                response.status_code,
                str(body.get("code", response.status_code)),
                str(body.get("message", response.reason_phrase)),
                body.get("details"),
            )
        return body

    @staticmethod
    def path(name: str, *parts: str) -> str:
        return "/v1/rulesets/" + "/".join(quote(p, safe="") for p in (name, *parts))


def read_folder(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(ruleset name → YAML, case file stem → YAML) of a rules folder; kinds and calendars stay with the
    server's deployment."""
    rulesets: dict[str, str] = {}
    cases: dict[str, str] = {}
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        text = path.read_text(encoding="utf-8")
        if path.parent.name == CASES:
            cases[path.stem] = text
        elif path.parent.name not in NOT_RULESETS:
            rulesets[ruleset_name(text) or path.stem] = text
    return rulesets, cases


def ruleset_name(text: str) -> str | None:
    """The `ruleset:` of a file (None if the file does not say; the server reports what is wrong)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text)
    except YAMLError:
        return None
    value = data.get("ruleset") if isinstance(data, dict) else None
    return str(value) if value else None


def write_folder(folder: Path, rulesets: dict[str, str], cases: dict[str, str]) -> list[Path]:
    written = []
    for name, text in sorted(rulesets.items()):
        written.append(_write(folder / f"{name}.yaml", text))
    for name, text in sorted(cases.items()):
        written.append(_write(folder / CASES / f"{name}.yaml", text))
    return written


def write_manifest(folder: Path, exported: dict[str, Any]) -> Path:
    manifest = {
        "as_of": exported["as_of"],
        "rulesets": {
            name: {"version": entry["version"], "content_sha256": entry["content_sha256"]}
            for name, entry in exported["rulesets"].items()
        },
    }
    return _write(folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The export manifest of the folder holding `path` (a ruleset file, a case file or the folder)."""
    start = path if path.is_dir() else path.parent
    for folder in (start, start.parent):
        candidate = folder / MANIFEST
        if candidate.is_file():
            value = json.loads(candidate.read_text(encoding="utf-8"))
            return value if isinstance(value, dict) else None
    return None


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
