"""Fuzz triage and parse with hostile mutants of every seed transcript; print the slowest inputs.

    python3 bench/bench_fuzz.py                  # 100,000 mutants (issue 18's scale), one process
    python3 bench/bench_fuzz.py --count 2000 --save /tmp/found

Each mutant is decoded as a file would be, triaged, parsed and encoded as the parse JSON document
(tests/_fuzz.py: the mutators and the run). The report: how many inputs ended ok, with the project's
own error, or with any other exception (a bug, each kind with an example); the median cost (CPU
seconds per KiB + 1) and the slowest inputs as multiples of it (the goal: none over 100x; an input
over it is measured twice more and keeps its fastest time, so a scheduler hiccup is not counted).
A run stalled past --hang seconds is stopped and reported as an exception. --save writes every
input that raised or was over 100x the median, for fixtures/errors/.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from _fuzz import Outcome, cost, hang_guard, mutants, outliers, run_one  # noqa: E402

FACTOR = 100


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100_000, help="mutants to run (default 100,000)")
    ap.add_argument("--seed", type=int, default=18, help="random seed (default 18)")
    ap.add_argument("--hang", type=float, default=10.0, help="seconds after which one input counts as a hang")
    ap.add_argument("--top", type=int, default=15, help="slowest inputs to list")
    ap.add_argument("--save", type=Path, help="directory for the inputs that raised or were over 100x the median")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    rows: list[tuple[str, bytes, Outcome]] = []
    start = time.monotonic()
    with hang_guard(args.hang) as guard:
        for k, (desc, data) in enumerate(mutants(rng, args.count), 1):
            rows.append((desc, data, run_one(data, f"m{k}", guard)))
            if k % 10_000 == 0:
                print(f"  {k:,} mutants, {time.monotonic() - start:,.0f} s", file=sys.stderr, flush=True)
        wall = time.monotonic() - start

        kinds = collections.Counter(o.kind for _, _, o in rows)
        timed = [(i, cost(o, len(d))) for i, (_, d, o) in enumerate(rows) if o.seconds > 0]
        med, over = outliers(timed, FACTOR)
        costs = dict(timed)
        for i in over:  # measured twice more; the fastest of three stands
            desc, data, first = rows[i]
            again = [run_one(data, "again", guard) for _ in range(2)]
            costs[i] = min([costs[i]] + [cost(o, len(data)) for o in again if o.kind == first.kind])
        slow = [i for i in over if costs[i] > FACTOR * med]

    sizes = sorted(len(d) for _, d, _ in rows)
    print(f"mutants: {len(rows):,} (sizes {sizes[0]:,} to {sizes[-1]:,} bytes, median {sizes[len(sizes) // 2]:,}); "
          f"wall {wall:,.0f} s, seed {args.seed}")
    print(f"outcomes: ok {kinds['ok']:,}, dumpscope error {kinds['error']:,}, other exception {kinds['exception']:,}")
    bugs = collections.Counter(o.detail.split(":")[0] if o.detail.startswith("hang") else o.detail[:80]
                               for _, _, o in rows if o.kind == "exception")
    for detail, n in bugs.most_common():
        example = next(desc for desc, _, o in rows if o.kind == "exception" and o.detail.startswith(detail[:40]))
        print(f"  {n:6,}  {detail}   e.g. {example}")
    print(f"median cost: {med * 1e3:.3f} ms CPU per KiB+1; over {FACTOR}x the median: {len(slow)} "
          f"(of {len(over)} before measuring again)")
    print(f"slowest {args.top}:")
    print(f"  {'x median':>9}  {'CPU s':>7}  {'bytes':>8}  mutant")
    for i in sorted(costs, key=lambda i: -costs[i])[:args.top]:
        desc, data, o = rows[i]
        print(f"  {costs[i] / med:9.1f}  {o.seconds:7.3f}  {len(data):8,}  {desc}")

    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        found = [i for i, (_, _, o) in enumerate(rows) if o.kind == "exception"] + slow
        for i in found:
            desc, data, o = rows[i]
            (args.save / f"found-{i:06d}.txt").write_bytes(data)
            (args.save / f"found-{i:06d}.why").write_text(f"{desc}\n{o.kind}: {o.detail} ({o.seconds:.3f} s)\n")
        print(f"saved {len(found)} inputs to {args.save}")
    return 1 if kinds["exception"] or slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
