"""Benchmark of `triage --scheduler`: a Dask LocalCluster against the local pool, in the same run.

Per-input overhead: the bulk benchmark's synthetic transcripts triaged by the local pool (--jobs N)
and by a LocalCluster of N worker processes (--scheduler local:N); both warmed up first, the
cluster's start-up timed apart. Reported: inputs/s of each, the ratio, and the overhead per input.

    python3 bench/bench_cluster.py            # 1,000 transcripts, 2 workers, best of 3
    python3 bench/bench_cluster.py --count 5000 --workers 2 --repeat 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    from dumpscope.bulk import triage_all
except ModuleNotFoundError:  # run from a checkout without installing: python bench/bench_cluster.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dumpscope.bulk import triage_all

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bulk import generate  # noqa: E402 - the bulk benchmark's corpus, not a copy of it

from dumpscope.cluster import DaskRunner  # noqa: E402

__all__ = ["main"]


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, list[float], int]:
    times = []
    n = 0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, n


def overhead(directory: Path, workers: int, repeat: int) -> None:
    """The local pool against a LocalCluster on the same transcripts; prints the per-input overhead."""
    paths = [str(directory)]

    def pool() -> int:
        return sum(1 for _ in triage_all(paths, jobs=workers))

    start = time.perf_counter()
    runner = DaskRunner(f"local:{workers}", quiet=True)
    startup = time.perf_counter() - start
    try:

        def cluster() -> int:
            return sum(1 for _ in triage_all(paths, runner=runner))

        cluster()  # warm-up: workers import dumpscope and load the grammar table on their first task
        pool()
        t_pool, all_pool, n = _best(pool, repeat)
        t_dask, all_dask, n2 = _best(cluster, repeat)
    finally:
        runner.close()
    assert n == n2
    print(f"{n} transcripts, {workers} workers, best of {repeat} (median in brackets)")
    print(f"  local pool --jobs {workers}:       {t_pool:7.3f} s  ({statistics.median(all_pool):.3f})  "
          f"{n / t_pool:8.0f} inputs/s")
    print(f"  LocalCluster local:{workers}:      {t_dask:7.3f} s  ({statistics.median(all_dask):.3f})  "
          f"{n / t_dask:8.0f} inputs/s")
    print(f"  ratio cluster/pool:          {t_dask / t_pool:7.2f}x")
    print(f"  overhead per input:          {(t_dask - t_pool) / n * 1000:7.2f} ms "
          f"(x {workers} workers = {(t_dask - t_pool) / n * 1000 * workers:.2f} ms of worker time)")
    print(f"  LocalCluster start-up:       {startup:7.2f} s (once per run of the CLI)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="synthetic transcripts (default 1,000)")
    ap.add_argument("--workers", type=int, default=2, help="pool processes and cluster workers (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, the best counted (default 3)")
    args = ap.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="dumpscope-bench-cluster-") as tmp:
        directory = Path(tmp) / "dumps"
        directory.mkdir()
        size, _kinds = generate(directory, args.count)
        print(f"corpus: {args.count} synthetic transcripts, {size / 1e6:.1f} MB (bench_bulk.generate)")
        overhead(directory, args.workers, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
