"""CPU per ticket event on the timer path, before / after: `python -m bench.timers.events [--base DIR]`.

Draws random complaint and loan histories (`bench.event_time`: creations, re-sent creations, stage changes
into and out of 初审, pauses, resumes, acceptances) and runs each through the service's units of work in
memory, in `occurred_at` order with a poll before each event (`bench.event_time.served`: validation,
evaluation, the ticket work the store runs under the ticket's lock, timer points fired). Prints the
microseconds per event of this checkout and, with `--base DIR` (a checkout of an earlier commit, e.g.
`git worktree add --detach ../base <commit>`), of that one, each measured in a child process, alternating
for `--rounds` rounds in the same run, and the ratio after / before of the medians. Each checkout decides
on its own shipped rulesets. Beside it, the microseconds per event spent masking (`MaskPolicy.mask`: the
stored records' event and trace, the feed's bodies), measured in a second pass in the same child so that
the timing wrapper does not weigh on the main figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from bench import event_time

HERE = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys, time
from bench import event_time
histories = json.load(sys.stdin)
events = sum(len(h) for h in histories)
started = time.process_time()
for history in histories:
    event_time.served(history, None)
total = (time.process_time() - started) / events * 1e6
from rulesvc.masking import MaskPolicy
spent = [0.0]
mask = MaskPolicy.mask
def timed(self, value):
    at = time.process_time()
    try:
        return mask(self, value)
    finally:
        spent[0] += time.process_time() - at
MaskPolicy.mask = timed
for history in histories:
    event_time.served(history, None)
print(json.dumps([total, spent[0] / events * 1e6]))
"""


def measure(tree: Path, histories: list[list[dict[str, object]]]) -> tuple[float, float]:
    """Microseconds of CPU per event in a child process importing `tree`, and of it masking."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(histories),
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
        check=True,
    )
    total, masking = json.loads(done.stdout.strip().splitlines()[-1])
    return float(total), float(masking)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", type=Path, help="checkout of the earlier commit to compare with")
    parser.add_argument("--histories", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = {
        "complaint": [event_time.random_history(rng, f"C-{i}") for i in range(args.histories)],
        "loan": [event_time.random_loan_history(rng, f"L-{i}") for i in range(args.histories)],
    }
    for kind, histories in kinds.items():
        after: list[float] = []
        before: list[float] = []
        masked_after: list[float] = []
        masked_before: list[float] = []
        for _ in range(args.rounds):
            if args.base is not None:
                total, masking = measure(args.base.resolve(), histories)
                before.append(total)
                masked_before.append(masking)
            total, masking = measure(HERE, histories)
            after.append(total)
            masked_after.append(masking)
        events = sum(len(h) for h in histories)
        line = (
            f"{kind}: {len(histories)} histories, {events} events; after {statistics.median(after):.0f} us/event"
            f" (masking {statistics.median(masked_after):.0f})"
        )
        if before:
            ratio = statistics.median(after) / statistics.median(before)
            line += (
                f", before {statistics.median(before):.0f} us/event (masking"
                f" {statistics.median(masked_before):.0f}), after/before {ratio:.2f}"
            )
        print(line + f" (rounds: after {[round(a) for a in after]}, before {[round(b) for b in before]})")


if __name__ == "__main__":
    main()
