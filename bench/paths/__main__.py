"""`python -m bench.paths [--count 100000] [--seed 1] [--http-count N]`: random tickets through every path.

Prints, per path, how many bodies it decided and how many disagreed with the table path, the first few
disagreements, and the time per body. Exit status 1 on any disagreement. `POST /v1/events` runs in process
(FastAPI's TestClient) on a scratch SQLite database with the shipped rulesets; `--http-count` (default: all)
bounds how many bodies take that path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.paths import PATHS, REPO, books, http_outcome, in_process, random_bodies, simulated
from rulesvc import exactjson
from rulesvc.rulebook import RuleBook


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paths")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--http-count", type=int, default=None)
    args = parser.parse_args()
    http_count = args.count if args.http_count is None else min(args.http_count, args.count)

    from fastapi.testclient import TestClient

    from api.app import create_app
    from rulesvc.apikeys import Role
    from rulesvc.decisions.service import create_api_key
    from rulesvc.settings import Settings
    from rulesvc.sla.clock import SystemClock
    from rulesvc.storage import make_engine
    from rulesvc.storage.engine import migrate

    shipped = RuleBook.load([REPO / "rulesets"])
    variants = books()
    deciders = {
        "table": in_process(variants["table"]),
        "rules": in_process(variants["rules"]),
        "durable": in_process(variants["durable"]),
        "simulate": simulated(shipped),
    }
    seconds: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    disagreements: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    shown: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'paths.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        app = create_app(
            Settings(database_url=url, rulesets=REPO / "rulesets", access_log=False), book=shipped
        )
        key = create_api_key(app.state.runtime.service.keys, frozenset(Role), SystemClock(), "paths")[1]
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        with TestClient(app) as client:
            for index, text in enumerate(random_bodies(args.count, args.seed)):
                results = {}
                for name, decide in deciders.items():
                    started = time.perf_counter()
                    results[name] = decide(text)
                    seconds[name] += time.perf_counter() - started
                    decided[name] += 1
                if index < http_count:
                    started = time.perf_counter()
                    response = client.post("/v1/events", content=text.encode(), headers=headers)
                    kind = str(exactjson.loads(text)["ticket"].get("kind"))
                    results["http"] = http_outcome(
                        kind, response.status_code, exactjson.loads(response.content)
                    )
                    seconds["http"] += time.perf_counter() - started
                    decided["http"] += 1
                reference = results["table"]
                outcomes[reference[0] if reference[0] == "refused" else f"{reference[0]} decided"] += 1
                for name, result in results.items():
                    if result != reference:
                        disagreements[name] += 1
                        if len(shown) < 10:
                            shown.append(f"  {name}: {result} != table {reference}\n    body {text}")
    print(f"bench.paths: {args.count} random tickets, seed {args.seed}")
    print("  " + ", ".join(f"{name} {n}" for name, n in sorted(outcomes.items())))
    for name in PATHS:
        per = seconds[name] / decided[name] * 1e6 if decided[name] else 0.0
        print(
            f"  {name:<9} decided {decided[name]:>7}   disagreements {disagreements[name]:>5}   {per:8.1f} µs/body"
        )
    total = sum(disagreements.values())
    print(f"disagreements: {total}")
    for line in shown:
        print(line)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
