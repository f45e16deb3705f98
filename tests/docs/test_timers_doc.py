"""The webhook receiver example of docs/timers.md verifies what the service signs, and nothing else."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from rulesvc.webhooks import signed_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "timers.md"


def receiver_namespace() -> dict[str, Any]:
    [code] = [
        b
        for b in re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
        if "Receiver" in b
    ]
    namespace: dict[str, Any] = {"__name__": "receiver_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_receiver_example_accepts_genuine_deliveries_only() -> None:
    check = receiver_namespace()["signature_ok"]
    secret = "whsec_doc-example-0123456789"
    body = b'{"delivery_id":"wh_1-1","action":{"type":"notify"}}'
    now = int(time.time())
    headers = signed_headers(secret, now, body, "wh_1-1")
    assert check(headers, body, secret.encode())
    assert not check(headers, body + b" ", secret.encode())
    assert not check(headers, body, b"another-secret")
    assert not check(headers, body, secret.encode(), now=now + 3600)
    assert not check({**headers, "X-Rulesvc-Timestamp": str(now + 1)}, body, secret.encode())
