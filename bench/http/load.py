"""Load generators: wrk (Debian package `wrk`) when installed, else a small asyncio HTTP/1.1 client.

Both keep `connections` keep-alive connections busy for `seconds`, every request a POST of a distinct
event (a new `event_id`, so every request decides and persists), and report requests/s and latency
percentiles. The asyncio client is much lighter than httpx, so the client is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WRK_SCRIPT = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1]
  templates = {}
  for i = 2, #args do templates[#templates + 1] = args[i] end
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local id = prefix .. "-" .. tid .. "-" .. counter
  local body = string.gsub(templates[(counter % #templates) + 1], "@ID@", id)
  return wrk.format("POST", "/v1/events", nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\nBENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"errors\": %d, \"p50_us\": %d, \"p99_us\": %d}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run_wrk(
    url: str, key: str, bodies: list[str], prefix: str, connections: int, seconds: float
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
                "--",
                prefix,
                *bodies,
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"BENCH_KEY": key, "PATH": "/usr/bin:/bin"},
        ).stdout
    finally:
        Path(script.name).unlink()
    data = json.loads(out.split("BENCH_JSON", 1)[1])
    return LoadResult(
        "wrk",
        data["requests"],
        data["duration_us"] / 1e6,
        data["errors"],
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
    )


async def _asyncio_load(
    url: str, key: str, bodies: list[str], prefix: str, connections: int, seconds: float
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        count = 0
        while time.perf_counter() < deadline:
            count += 1
            body = bodies[count % len(bodies)].replace("@ID@", f"{prefix}-{n}-{count}").encode()
            head = (
                f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return LoadResult("asyncio", len(latencies), elapsed, errors, pick(0.50), pick(0.99))


def run_load(
    url: str,
    key: str,
    bodies: list[dict[str, Any]],
    prefix: str,
    connections: int,
    seconds: float,
    tool: str = "auto",
) -> LoadResult:
    templates = [json.dumps(b, ensure_ascii=False) for b in bodies]
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        return run_wrk(url, key, templates, prefix, connections, seconds)
    return asyncio.run(_asyncio_load(url, key, templates, prefix, connections, seconds))
