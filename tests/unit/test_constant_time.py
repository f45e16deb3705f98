"""Secrets are compared in constant time: no `==` / `!=` between a presented and a stored key hash, token,
CSRF token, state, nonce or password in the code that authenticates (`hmac.compare_digest` instead); the
key store's lookup by SHA-256 is followed by a constant-time comparison of the hash found."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from rulesvc.decisions.service import DecisionService

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "rulesvc/apikeys.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rulesvc" / "people").glob("*.py")),
    "rulesvc/decisions/service.py",
    "api/deps.py",
    "api/routes/auth.py",
    "api/routes/oidc.py",
    "rulesvc/delivery/webhooks.py",
]
SECRET = re.compile(
    r"^(key|key_hash|stored_hash|token|csrf_token|sent|secret|client_secret|nonce|state|cookie_state|"
    r"password_hash|code_verifier|verifier|signature|session_hash|totp|code)$"
)
"""Names holding a presented or stored credential (integrity digests of stored rows are not secrets)."""


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return None


def test_no_equality_between_secrets() -> None:
    found = []
    for name in FILES:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare) or not any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                continue
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Constant) for side in sides):
                continue  # a literal (None, "", a status word) is not a secret
            names = [_name(side) or "" for side in sides]
            if any(SECRET.search(n) for n in names):
                found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


def test_the_key_found_by_its_hash_is_compared_in_constant_time() -> None:
    source = inspect.getsource(DecisionService.authenticate)
    assert "matches(key, record.key_hash)" in source
    assert "compare_digest" in inspect.getsource(__import__("rulesvc.apikeys", fromlist=["matches"]).matches)
