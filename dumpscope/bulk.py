"""Triage many inputs at once, in parallel, each exactly once and in input order, with an optional cache."""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from dumpscope.cache import Cache, FileStamp, content_json, restore, stamp_of
from dumpscope.errors import DumpscopeError
from dumpscope.signatures import signature_set
from dumpscope.sources import DEFAULT_MAX_BYTES, Source, expand, read_source
from dumpscope.verdict import Verdict

# The module itself, looked up at call time (tests patch triage_text), by name: the package's lazy
# exports must never stand in for the module.
_triage = importlib.import_module("dumpscope.triage")

__all__ = ["Progress", "default_jobs", "error_verdict", "triage_all", "triage_source"]

Progress = Callable[[int, int], None]  # called as progress(done, total) after each input

# Worker results are plain tuples (cheaper to pickle than a dataclass): kind, payload, digest, notes, doc.
_FRESH, _HIT, _FAILED = 0, 1, 2
_Result = tuple[int, Any, str, tuple[str, ...], str | None]
# Chunks bound how often a worker talks to the parent; the cap keeps progress, load balance and the
# wait for running chunks after Ctrl-C or a closed pipe short (32 x ~10 ms).
_MAX_CHUNK = 32
# How many times a pool that lost a worker process (killed by the OOM killer, a signal) is restarted
# for the remaining inputs before they are reported as errors instead.
_POOL_RESTARTS = 1


def default_jobs() -> int:
    """The number of CPUs this process may run on (the default for `jobs`)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def error_verdict(source: str, reason: str, notes: Sequence[str] = ()) -> Verdict:
    """The row of an input that could not be triaged: status 'error', the reason, no bucket."""
    return Verdict(source=source, status="error", error=reason, bucket="", title=f"error: {reason}",
                   notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class _State:
    """What the code that reads and triages one input needs, in a worker or in-process."""

    cache: Cache | None  # verdict lookups by digest (read-only in workers); None without --cache
    caching: bool  # produce the cache form of fresh verdicts for the parent to store
    max_bytes: int  # sources.read_source's size limit


def triage_source(src: Source) -> Verdict:
    """Triage one already-read input; never raises (a triage bug becomes an error row)."""
    return _fresh(src)[0]


def _fresh(src: Source) -> tuple[Verdict, bool]:
    # (verdict, cacheable). Only verdicts of the content are cacheable, not internal failures.
    if src.error is not None or src.text is None:
        return error_verdict(src.name, src.error or "unreadable", src.notes), False
    try:
        v = _triage.triage_text(src.text, src.name)
    except Exception as exc:  # noqa: BLE001 - siggen: one bad input must not stop the others
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return error_verdict(src.name, reason.splitlines()[0] if reason else reason, src.notes), False
    if v.status != "ok" and not v.title:
        v = replace(v, bucket="", title=f"error: {v.error}")
    if src.notes:
        v = replace(v, notes=src.notes + v.notes)
    return v, True


def _process(src: Source, state: _State) -> _Result:
    if src.error is not None:
        return _FAILED, error_verdict(src.name, src.error, src.notes), "", src.notes, None
    if state.cache is not None:
        doc = state.cache.get_json(src.digest)
        if doc is not None:
            return _HIT, doc, src.digest, src.notes, None
    v, cacheable = _fresh(src)
    doc = content_json(v, src.notes) if state.caching and cacheable else None
    return _FRESH, v, src.digest, src.notes, doc


def _process_path(name: str, state: _State) -> _Result:
    try:
        src = read_source(name, max_bytes=state.max_bytes)
    except Exception as exc:  # noqa: BLE001 - read_source never raises by contract; belt and braces
        src = Source(name, None, f"internal error reading: {type(exc).__name__}: {exc}", "", 0)
    return _process(src, state)


# --- worker processes ---------------------------------------------------------------------------

_WORKER: _State | None = None


def _init_worker(cache_args: tuple[str, str, str] | None, max_bytes: int) -> None:
    global _WORKER
    # Ctrl-C is the parent's to handle (it cancels the pool); workers printing their own
    # KeyboardInterrupt tracebacks would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cache = None
    if cache_args is not None:
        try:
            cache = Cache(*cache_args, readonly=True)
        except DumpscopeError:
            cache = None  # lookups only speed things up; without them every input is triaged afresh
    _WORKER = _State(cache, cache_args is not None, max_bytes)


def _work(name: str) -> _Result:
    assert _WORKER is not None
    return _process_path(name, _WORKER)


def _context() -> Any:
    # fork: workers inherit the loaded grammars and signatures (no re-import, no re-compile), which
    # is most of the start-up cost; fall back to the platform default where fork does not exist.
    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - non-POSIX
        return multiprocessing.get_context()


def _pooled(names: Sequence[str], workers: int, cache_args: tuple[str, str, str] | None,
            max_bytes: int) -> Generator[_Result, None, None]:
    # Results in the order of `names`. A pool that breaks (a worker killed) is restarted for the
    # inputs not yet returned; if it breaks again those inputs become error rows.
    pos = 0
    restarts = 0
    while pos < len(names):
        rest = names[pos:]
        n = min(workers, len(rest))
        chunk = max(1, min(_MAX_CHUNK, len(rest) // (n * 16)))
        ex = ProcessPoolExecutor(max_workers=n, mp_context=_context(), initializer=_init_worker,
                                 initargs=(cache_args, max_bytes))
        try:
            for r in ex.map(_work, rest, chunksize=chunk):
                pos += 1
                yield r
        except BrokenProcessPool as exc:
            restarts += 1
            if restarts > _POOL_RESTARTS:
                reason = f"worker process died ({exc})"
                for name in names[pos:]:
                    yield _FAILED, error_verdict(name, reason), "", (), None
                return
        finally:
            # wait=True: by now only the chunks already running remain (the rest are cancelled), and
            # leaving the pool's manager thread behind makes CPython's exit handler trip over its
            # closed wake-up pipe ("Exception ignored ... Bad file descriptor" on stderr).
            ex.shutdown(wait=True, cancel_futures=True)


def _inline(names: Sequence[str], state: _State) -> Generator[_Result, None, None]:
    for name in names:
        yield _process_path(name, state)


# --- the driver ---------------------------------------------------------------------------------


def triage_all(
    paths: Sequence[str],
    *,
    jobs: int | None = None,
    cache: Cache | None = None,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Generator[Verdict, None, None]:
    """Triage every input named by `paths` and yield one Verdict each, in `sources.expand` order.

    `paths` are files, directories (walked recursively) and '-' for standard input (`stdin`, read
    once in this process; a second '-' reuses what was read). Inputs are read and triaged in `jobs`
    worker processes (default: every CPU this process may use; 1 runs everything in-process, with
    no pool); workers are given paths, not texts. A bad input, or one whose triage raises, becomes
    a `status='error'` row and never stops or hides the others. With a `cache`, files whose stat
    stamp and content are unchanged are not triaged again, and fresh verdicts are stored (written in
    batches; the caller closes the cache). `progress(done, total)` is called after each input.
    Raises SignatureFileError up front when the signature files are bad.
    """
    if jobs is not None and jobs < 0:
        raise DumpscopeError(f"jobs must be 0 (all CPUs) or more, not {jobs}")
    workers = jobs or default_jobs()
    names = expand(paths)
    total = len(names)
    # Load and validate the signatures before anything else: a bad signature file is one clear
    # error, not an error row per input; loaded here, forked workers inherit them.
    signature_set()
    state = _State(cache, cache is not None, max_bytes)

    ready: dict[int, Verdict] = {}  # inputs answered by the cache pre-check, by position
    stamps: dict[int, FileStamp] = {}
    work: list[str] = []  # inputs for the readers, in order
    now = time.time_ns()
    for i, name in enumerate(names):
        if name == "-":
            continue
        if cache is not None:
            st = stamp_of(name, now)
            if st is not None:
                stamps[i] = st
                known = cache.lookup(st)
                if known is not None and known[2] is not None:
                    ready[i] = restore(known[2], name, known[1])
                    continue
        work.append(name)

    if workers > 1 and len(work) > 1:
        _warm_up()
        cache_args = (cache.path, cache.sigset, cache.version) if cache is not None else None
        if cache is not None:
            cache.flush()  # workers read the cache file; nothing is pending yet, but be sure
        results: Generator[_Result, None, None] = _pooled(work, workers, cache_args, max_bytes)
    else:
        results = _inline(work, state)

    stdin_src: Source | None = None
    try:
        for i, name in enumerate(names):
            if name == "-":
                if stdin_src is None:
                    stdin_src = read_source("-", stdin=stdin, max_bytes=max_bytes)
                r = _process(stdin_src, state)
                name = stdin_src.name
            elif i in ready:
                v = ready.pop(i)
                if progress is not None:
                    progress(i + 1, total)
                yield v
                continue
            else:
                r = next(results)
            kind, payload, digest, notes, doc = r
            if kind == _HIT:
                v = restore(payload, name, notes)
            else:
                v = payload
            if cache is not None and digest:
                if doc is not None:
                    cache.put_json(digest, doc)
                st = stamps.get(i)
                if st is not None:
                    cache.put_file(st, digest, notes)
            if progress is not None:
                progress(i + 1, total)
            yield v
    finally:
        results.close()
        if cache is not None:
            cache.flush()


def _warm_up() -> None:
    # Build the parser tables once in the parent so every forked worker starts with them.
    with contextlib.suppress(Exception):  # only an optimisation; real inputs report real errors
        _triage.triage_text("> ::status\npanic message: warm up\n", "<warm-up>")
