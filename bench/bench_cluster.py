"""Benchmark of `triage --scheduler`: a Dask LocalCluster against the local pool, in the same run.

Per-input overhead: the bulk benchmark's synthetic transcripts triaged by the local pool (--jobs N)
and by a LocalCluster of N worker processes (--scheduler local:N); both warmed up first, the
cluster's start-up timed apart. Reported: inputs/s of each, the ratio, and the overhead per input.

Real work: a crash directory of 40 dumps (unix.N + vmcore.N) analysed with the tests' fake mdb
(tests/fakes/mdb.py) sleeping 1 s per dump, by `--jobs 4` and by `--scheduler local:4`: both should
take about 10 s, the same within 20%, once the work per input is real.

    python3 bench/bench_cluster.py            # 1,000 transcripts on 2 workers (best of 3), then 40 dumps on 4
    python3 bench/bench_cluster.py --count 5000 --workers 2 --repeat 5 --dumps 80
"""

from __future__ import annotations

import argparse
import logging
import os
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
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


def slow_dumps(tmp: Path, count: int, workers: int) -> None:
    """`count` dumps whose fake mdb sleeps 1 s each: the local pool against a LocalCluster, wall time."""
    from _fakes import write_dump  # tests/_fakes.py: a dump file with a real dumphdr_t

    from dumpscope.analyse import Options
    from dumpscope.mdb import Tools

    crash = tmp / "crash"
    crash.mkdir()
    for n in range(count):
        (crash / f"unix.{n}").write_bytes(b"\x7fELF fake kernel symbols\n")
        write_dump(crash / f"vmcore.{n}", "sleepy")
    sessions = tmp / "sessions"
    sessions.mkdir()
    # the 12476 report's first dump, as mdb prints it, after a second of work
    (sessions / "sleepy.mdb").write_text("#!fake sleep 1\n" + (ROOT / "fixtures" / "dumps" / "dent.mdb").read_text())
    mdb = tmp / "mdb"
    mdb.write_text(f"#!{sys.executable}\n" + (ROOT / "tests" / "fakes" / "mdb.py").read_text())
    mdb.chmod(0o755)
    # the fake reads these; set before the cluster starts, so that its workers have them too
    os.environ["FAKE_MDB_SESSIONS"] = str(sessions)
    os.environ["FAKE_TOOLS_LOG"] = str(tmp / "tools.log")

    def options(work: str) -> Options:
        return Options(tools=Tools.find(str(mdb), None, str(tmp / work), None))

    start = time.perf_counter()
    pool_rows = [v.confidence for v in triage_all([str(crash)], jobs=workers, options=options("w-pool"))]
    t_pool = time.perf_counter() - start
    start = time.perf_counter()
    runner = DaskRunner(f"local:{workers}", options=options("w-dask"), quiet=True)
    startup = time.perf_counter() - start
    try:
        start = time.perf_counter()
        dask_rows = [v.confidence for v in triage_all([str(crash)], runner=runner, options=options("w-dask"))]
        t_dask = time.perf_counter() - start
    finally:
        runner.close()
    assert dask_rows == pool_rows == ["likely"] * count, (pool_rows, dask_rows)
    ideal = count / workers
    print(f"{count} dumps, fake mdb sleeping 1 s each, {workers} workers (ideal {ideal:.0f} s)")
    print(f"  local pool --jobs {workers}:       {t_pool:7.2f} s")
    print(f"  LocalCluster local:{workers}:      {t_dask:7.2f} s  (+ {startup:.2f} s cluster start-up)")
    print(f"  ratio cluster/pool:          {t_dask / t_pool:7.2f}x   with start-up {(t_dask + startup) / t_pool:.2f}x")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="synthetic transcripts (default 1,000)")
    ap.add_argument("--workers", type=int, default=2, help="pool processes and cluster workers (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, the best counted (default 3)")
    ap.add_argument("--dumps", type=int, default=40, help="dumps for the fake-mdb run (default 40; 0: skip it)")
    ap.add_argument("--dump-workers", type=int, default=4, help="workers for the fake-mdb run (default 4)")
    args = ap.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="dumpscope-bench-cluster-") as tmp:
        directory = Path(tmp) / "dumps"
        directory.mkdir()
        size, _kinds = generate(directory, args.count) if args.count else (0, {})
        print(f"corpus: {args.count} synthetic transcripts, {size / 1e6:.1f} MB (bench_bulk.generate)")
        if args.count:
            overhead(directory, args.workers, args.repeat)
        if args.dumps:
            slow_dumps(Path(tmp), args.dumps, args.dump_workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
