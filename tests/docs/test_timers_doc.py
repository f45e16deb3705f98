"""The webhook receiver example of docs/timers.md verifies what the service signs, and nothing else."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

from rulesvc.delivery.webhooks import signed_headers

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


def test_the_receiver_example_handles_a_delivery_once_when_copies_arrive_together() -> None:
    import threading

    dedup = receiver_namespace()["Deduplicator"]()
    calls: list[str] = []
    gate = threading.Barrier(8)

    def handle() -> None:
        calls.append("paid")
        time.sleep(0.05)  # copies arriving meanwhile must not handle it again

    def receive() -> None:
        gate.wait()
        dedup.handle_once("wh_1-42", handle)

    threads = [threading.Thread(target=receive) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert calls == ["paid"]

    def fails() -> None:
        raise RuntimeError("payment system down")

    with contextlib.suppress(RuntimeError):
        dedup.handle_once("wh_1-43", fails)
    dedup.handle_once("wh_1-43", lambda: calls.append("retried"))
    assert calls == ["paid", "retried"]  # a failed handling is not remembered: the retry handles it
