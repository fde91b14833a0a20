"""Benchmark of the history: what recording costs a cached re-run, and how long history and report take.

A cached re-run of a directory (the nightly case: nothing new) is timed in the same process with and
without the history recorder, alternating, and the ratio printed; then `history` and `report` on the
history that fills. Usage: python3 bench/bench_history.py [--count N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    from dumpscope.bulk import triage_rows
except ModuleNotFoundError:  # run from a checkout without installing: python bench/bench_history.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dumpscope.bulk import triage_rows

from bench_bulk import generate

import dumpscope.cache as cache_mod
from dumpscope import __version__
from dumpscope.cache import Cache
from dumpscope.history import Recorder, history_rows, read_dumps
from dumpscope.report import build_report
from dumpscope.signatures import signature_set

__all__ = ["main"]


def _rerun(corpus: Path, db: str, record: bool) -> float:
    # what `triage --db DIR -f csv` does per input, with or without the recorder
    start = time.perf_counter()
    with Cache(db, signature_set().version, __version__) as store:
        recorder = Recorder(store) if record else None
        rows = triage_rows([str(corpus)], jobs=2, cache=store, docs=False, compact=True)
        for row in rows:
            row.table_verdict()
            if recorder is not None:
                recorder.see(row)
        if recorder is not None:
            recorder.finish()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Generate a corpus, fill a history, and print the re-run times with and without recording."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10_000, help="transcripts (default 10,000)")
    ap.add_argument("--runs", type=int, default=5, help="re-runs of each kind (default 5)")
    args = ap.parse_args(argv)
    cache_mod.RACY_NS = -10**18  # the corpus was written just now: trust its stamps, as a nightly run would
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        size, _ = generate(corpus, args.count)
        db = str(Path(tmp) / "history.db")
        print(f"corpus: {args.count} transcripts, {size / 1e6:.1f} MB")
        print(f"first run (fills cache and history): {_rerun(corpus, db, True):.2f} s")
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for record in (False, True):
                times[record].append(_rerun(corpus, db, record))
        plain, recorded = statistics.median(times[False]), statistics.median(times[True])
        print(f"cached re-run, median of {args.runs}: {plain:.3f} s without recording, {recorded:.3f} s with "
              f"(ratio {recorded / plain:.3f})")
        start = time.perf_counter()
        dumps, latest = read_dumps(db)
        rows = history_rows(dumps, latest)
        print(f"history: {len(rows)} rows from {len(dumps)} dumps in {time.perf_counter() - start:.3f} s")
        start = time.perf_counter()
        html = build_report(db)
        print(f"report: {len(html) / 1e3:.0f} KB in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
