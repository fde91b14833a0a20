"""Benchmark of the cyclic-model exploration: state counts and times against same-run baselines."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

try:
    from dumpscope.cyclic import Config, initial
    from dumpscope.explore import explore
except ModuleNotFoundError:  # run from a checkout without installing: python bench/bench_explore.py
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dumpscope.cyclic import Config, initial
    from dumpscope.explore import explore

__all__ = ["main"]

REPEAT = 5  # best-of runs per measurement, to keep noise out of the ratios


def _best(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _trivial_bfs(n: int) -> int:
    # Baseline: a plain BFS over a counter graph (i → i+1, i+2) with a visited set, n nodes.
    seen = {0}
    todo = deque([0])
    while todo:
        i = todo.popleft()
        for j in (i + 1, i + 2):
            if j < n and j not in seen:
                seen.add(j)
                todo.append(j)
    return len(seen)


def main() -> None:
    """Print, per configuration, schedules, distinct states, time, and ratios to the baselines."""
    rows = []
    for pending in (1, 2, 3):
        for fixed in (False, True):
            e = explore(fixed=fixed, pending=pending)
            t = _best(lambda f=fixed, p=pending: explore(fixed=f, pending=p))  # type: ignore[misc]
            rows.append((pending, e.behaviour, e.schedules, e.panic, e.states, t))
    n_init = 1000
    t_init = _best(lambda: [initial(Config(fixed=False)) for _ in range(n_init)]) / n_init
    states_max = max(r[4] for r in rows)
    t_bfs = _best(lambda: _trivial_bfs(states_max))
    print(f"baseline: one initial model state (incl. invariant check) {t_init * 1e6:.1f} us")
    print(f"baseline: plain BFS over a {states_max}-node counter graph {t_bfs * 1e6:.1f} us")
    print(
        f"{'pending':>7} {'behaviour':>9} {'schedules':>9} {'panic':>6} {'states':>6} "
        f"{'time ms':>8} {'us/state':>8} {'x init':>7} {'x bfs':>7}"
    )
    for pending, behaviour, schedules, panic, states, t in rows:
        print(
            f"{pending:>7} {behaviour:>9} {schedules:>9} {panic:>6} {states:>6} "
            f"{t * 1e3:>8.2f} {t / states * 1e6:>8.1f} {t / states / t_init:>7.1f} "
            f"{t / t_bfs:>7.0f}"
        )


if __name__ == "__main__":
    main()
