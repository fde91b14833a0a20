"""Triage many inputs at once, in parallel, each exactly once and in input order, with an optional cache."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from select import select as _readable
from types import FrameType
from typing import Any, BinaryIO, Protocol

from dumpscope.analyse import DEFAULT_OPTIONS, Options, dump_verdict
from dumpscope.cache import Brief, Cache, FileStamp, brief_of, brief_verdict, content_json, json_line, restore, stamp_of
from dumpscope.errors import DumpscopeError
from dumpscope.crashdir import DumpFiles, Selection, identity, select
from dumpscope.signatures import SignatureSet
from dumpscope.sources import Source, read_source
from dumpscope.verdict import Verdict

__all__ = [
    "DEFAULT_TIMEOUT",
    "Progress",
    "Row",
    "Runner",
    "default_jobs",
    "error_verdict",
    "timed_out",
    "triage_all",
    "triage_rows",
    "triage_source",
]

Progress = Callable[[int, int], None]  # called as progress(done, total) after each input

# Worker results are plain tuples (cheaper to pickle than a dataclass): kind, payload, digest, notes, doc.
# _FRESH_DOC: a fresh verdict sent as its stored form only (payload is its Brief, doc its JSON).
_FRESH, _HIT, _FAILED, _FRESH_DOC = 0, 1, 2, 3
_Result = tuple[int, Any, str, tuple[str, ...], str | None]
# Chunks bound how often a worker talks to the parent; the cap keeps progress, load balance and the
# wait for running chunks after Ctrl-C or a closed pipe short (32 x ~10 ms).
_MAX_CHUNK = 32
# How many times a pool that lost a worker process (killed by the OOM killer, a signal) is restarted
# for the remaining inputs before they are reported as errors instead.
_POOL_RESTARTS = 1
# The time one input may take, read and triage together (`--timeout`): far above what the largest
# input allowed (128 MiB) takes on a slow machine, far below "hung".
DEFAULT_TIMEOUT = 120.0
# How often a worker checks its lifeline and the running input's deadline (and so how late either
# is noticed): a worker ends within this long of its parent.
_TICK = 0.2


def _triage() -> Any:
    # The module itself, looked up at call time (tests patch triage_text), by name: the package's
    # lazy exports must never stand in for the module. Imported on first use: it brings the parser,
    # the matcher and the cyclic model, which a re-run answered from the cache never needs.
    return importlib.import_module("dumpscope.triage")


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


def timed_out(seconds: float) -> str:
    """The error of an input that took longer than its time limit: 'timed out after N s'."""
    return f"timed out after {seconds:g} s"


@dataclass(frozen=True, slots=True)
class _Settings:
    """How each input of one run is read and triaged: one small, frozen, picklable record, handed as
    it is to the in-process loop, to every pool worker and to every Dask task."""

    options: Options  # site signatures, the tools that analyse dumps, the size limit
    caching: bool  # produce the cache form of fresh verdicts for the parent to store
    # send fresh verdicts back in their cache form (brief + JSON) instead of as a Verdict: a pickled
    # Verdict costs ~50 us to pack and as much to unpack, and the parent would re-encode it as JSON
    compact: bool = False
    dumps: dict[str, DumpFiles] | None = None  # the inputs that are crash dumps, by name
    timeout: float = 0.0  # seconds one transcript may take (read and triage); 0: no limit


def triage_source(src: Source, signatures: SignatureSet | None = None) -> Verdict:
    """Triage one already-read input against `signatures` (default: the bundled set); never raises
    (a triage bug becomes an error row)."""
    return _fresh(src, signatures)[0]


def _fresh(src: Source, signatures: SignatureSet | None = None) -> tuple[Verdict, bool]:
    # (verdict, cacheable). Only verdicts of the content are cacheable, not internal failures.
    if src.error is not None or src.text is None:
        return error_verdict(src.name, src.error or "unreadable", src.notes), False
    try:
        v = _triage().triage_text(src.text, src.name, signatures)
    except Exception as exc:  # noqa: BLE001 - siggen: one bad input must not stop the others
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return error_verdict(src.name, reason.splitlines()[0] if reason else reason, src.notes), False
    if v.status != "ok" and not v.title:
        v = replace(v, bucket="", title=f"error: {v.error}")
    if src.notes:
        v = replace(v, notes=src.notes + v.notes)
    return v, True


def _process(src: Source, run: _Settings, cache: Cache | None) -> _Result:
    # `cache`: verdict lookups by digest (read-only in workers); None without --cache, or in a Dask task
    if src.error is not None:
        return _FAILED, error_verdict(src.name, src.error, src.notes), "", src.notes, None
    if cache is not None:
        doc = cache.get_json(src.digest)
        if doc is not None:
            return _HIT, doc, src.digest, src.notes, None
    v, cacheable = _fresh(src, run.options.signatures())
    if run.compact and cacheable:
        return _FRESH_DOC, brief_of(v), src.digest, src.notes, content_json(v, src.notes)
    doc = content_json(v, src.notes) if run.caching and cacheable else None
    return _FRESH, v, src.digest, src.notes, doc


def _process_dump(dump: DumpFiles, run: _Settings, cache: Cache | None) -> _Result:
    # A dump's cache key is its identity (crashdir.identity: names, sizes, mtimes, header UUID), so a
    # dump analysed before is answered without starting savecore or mdb.
    key = identity(dump)
    if cache is not None:
        doc = cache.get_json(key)
        if doc is not None:
            return _HIT, doc, key, (), None
    v, cacheable = dump_verdict(dump, run.options, key)
    if run.compact and cacheable:
        return _FRESH_DOC, brief_of(v), key, (), content_json(v)
    return _FRESH, v, key, (), content_json(v) if run.caching and cacheable else None


def _process_path(name: str, run: _Settings, cache: Cache | None = None) -> _Result:
    dump = run.dumps.get(name) if run.dumps else None
    if dump is not None:
        return _process_dump(dump, run, cache)  # savecore and mdb have their own time limits (--mdb-timeout)

    def read_and_process() -> _Result:
        try:
            src = read_source(name, max_bytes=run.options.max_bytes, digest=run.caching)  # the digest: a cache key
        except Exception as exc:  # noqa: BLE001 - read_source never raises by contract; belt and braces
            src = Source(name, None, f"internal error reading: {type(exc).__name__}: {exc}", "", 0)
        return _process(src, run, cache)

    return _within_limit(name, run.timeout, read_and_process)


def _within_limit(name: str, seconds: float, work: Callable[[], _Result]) -> _Result:
    # `work` under the input's time limit; past it, an error row (not cached: how long an input takes
    # depends on the machine and its load, not on the input alone)
    try:
        with _deadline(seconds):
            return work()
    except _TimedOut:
        return _FAILED, error_verdict(name, timed_out(seconds)), "", (), None


# --- the per-input time limit and the lifeline ----------------------------------------------------
#
# A stalled input is stopped by SIGALRM: its handler raises in the main thread, and CPython's regex
# engine, its loops and its blocking calls (a FIFO's open or read) all check for signals, so the
# exception arrives even in the middle of one long regex match, which holds the interpreter lock (a
# watchdog thread could never run then). A worker also checks, on the same tick, the read end of a
# pipe whose only write end its parent holds: end of file means the parent has died (any signal,
# SIGKILL included) or has cancelled the run, and the worker ends at once. That is plain POSIX, the
# same on illumos as on Linux, where a parent-death signal (prctl) would be Linux-only.


class _TimedOut(BaseException):
    # BaseException: no `except Exception` in the parser or matcher may swallow it
    pass


_due: float | None = None  # monotonic time the running input's limit ends; None: no input running
_lifeline: int | None = None  # in a worker: read end of the pipe the parent holds open


def _on_tick(_signum: int, _frame: FrameType | None) -> None:
    global _due
    if _lifeline is not None and _readable([_lifeline], [], [], 0)[0]:
        os._exit(0)  # the parent is gone or cancelled the run: nobody wants what this worker would send
    if _due is not None and time.monotonic() >= _due:
        _due = None
        raise _TimedOut


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    # Arms the running input's limit; _on_tick enforces it where ticking is on (`_ticking`).
    global _due
    _due = time.monotonic() + seconds if seconds > 0 else None
    try:
        yield
    finally:
        _due = None


@contextlib.contextmanager
def _ticking(interval: float) -> Iterator[bool]:
    # Turns on _on_tick every `interval` seconds in this process for the duration; yields False (and
    # does nothing) where it cannot: outside the main thread, or where signals do not exist.
    if interval <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield False
        return
    old = signal.signal(signal.SIGALRM, _on_tick)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- worker processes ---------------------------------------------------------------------------

_WORKER: tuple[_Settings, Cache | None] | None = None  # the run's settings and this worker's cache


def _init_worker(run: _Settings, cache_args: tuple[str, str, str] | None, lifeline: tuple[int, int]) -> None:
    # `cache_args`: (path, sigset, version) of the run's cache, opened read-only here; `lifeline`: the pipe.
    global _WORKER, _lifeline
    # Ctrl-C is the parent's to handle (it cancels the pool); workers printing their own
    # KeyboardInterrupt tracebacks would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent's end of the lifeline came along with the fork: only the parent may hold it.
    os.close(lifeline[1])
    _lifeline = lifeline[0]
    signal.signal(signal.SIGALRM, _on_tick)
    signal.setitimer(signal.ITIMER_REAL, _TICK, _TICK)
    cache = None
    if cache_args is not None:
        try:
            cache = Cache(*cache_args, readonly=True)
        except DumpscopeError:
            cache = None  # lookups only speed things up; without them every input is triaged afresh
    _WORKER = run, cache


def _work(name: str) -> _Result:
    assert _WORKER is not None
    return _process_path(name, *_WORKER)


def _context() -> Any:
    # fork: workers inherit the loaded grammars and signatures (no re-import, no re-compile), which
    # is most of the start-up cost; fall back to the platform default where fork does not exist.
    import multiprocessing

    try:
        return multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - non-POSIX
        return multiprocessing.get_context()


def _pooled(names: Sequence[str], workers: int, run: _Settings,
            cache_args: tuple[str, str, str] | None) -> Generator[_Result, None, None]:
    # Results in the order of `names`. A pool that breaks (a worker killed) is restarted for the
    # inputs not yet returned; if it breaks again those inputs become error rows. Imported here: a
    # run answered from the cache starts no pool and need not load them (~10 ms).
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pos = 0
    restarts = 0
    while pos < len(names):
        rest = names[pos:]
        n = min(workers, len(rest))
        chunk = max(1, min(_MAX_CHUNK, len(rest) // (n * 16)))
        lifeline = os.pipe()  # the workers watch the read end; this process alone keeps the write end
        ex = ProcessPoolExecutor(max_workers=n, mp_context=_context(), initializer=_init_worker,
                                 initargs=(run, cache_args, lifeline))
        ended = False
        try:
            for r in ex.map(_work, rest, chunksize=chunk):
                pos += 1
                yield r
            ended = True
        except BrokenProcessPool as exc:
            ended = True
            restarts += 1
            if restarts > _POOL_RESTARTS:
                reason = f"worker process died ({exc})"
                for name in names[pos:]:
                    yield _FAILED, error_verdict(name, reason), "", (), None
                return
        finally:
            if not ended:
                # Ctrl-C, a closed output pipe, or a consumer that stopped early: the workers end at
                # their next tick instead of finishing the inputs they are on (a stalled one never would).
                os.close(lifeline[1])
            # wait=True: by now no work is left but what the workers are ending or finishing, and
            # leaving the pool's manager thread behind makes CPython's exit handler trip over its
            # closed wake-up pipe ("Exception ignored ... Bad file descriptor" on stderr).
            ex.shutdown(wait=True, cancel_futures=True)
            os.close(lifeline[0])
            if ended:
                os.close(lifeline[1])


def _inline(names: Sequence[str], run: _Settings, cache: Cache | None) -> Generator[_Result, None, None]:
    for name in names:
        yield _process_path(name, run, cache)


class Runner(Protocol):
    """Somewhere other than this machine's pool to read and triage inputs (`cluster.DaskRunner`).

    `triage_rows` asks it for one result per input, in the order given, as `_process_path` makes it
    in a pool worker with no cache, from the same `_Settings`; stdin, the cache and the rows stay in
    this process. Its `select` stands in for `crashdir.select` where inputs may lie elsewhere.
    """

    def select(self, paths: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Selection:
        """`crashdir.select` of `paths`, wherever each lies."""
        ...

    def results(self, names: Sequence[str], run: _Settings) -> Generator[_Result, None, None]:
        """One result per name, in order."""
        ...

    def close(self) -> None:
        """Let go of what it holds (connections, worker processes it started)."""
        ...


# --- the driver ---------------------------------------------------------------------------------


class Row:
    """One input's result from `triage_rows`: a Verdict, or a cached verdict not decoded yet.

    A cached row is decoded only as far as the output needs: `json_line` splices the name into the
    stored JSON, `table_verdict` builds just the fields of the table, CSV and summary; `verdict`
    decodes it whole. `status` and `error` are always at hand (for exit codes and stderr).
    """

    __slots__ = ("_brief", "_doc", "_notes", "_verdict", "digest", "error", "source", "status")

    def __init__(self, source: str, verdict: Verdict | None = None, *, brief: Brief | None = None,
                 doc: str | None = None, notes: tuple[str, ...] = (), digest: str = "") -> None:
        """A row of a fresh `verdict`, or of a cached one: its `brief` columns, its stored JSON `doc`
        (None when the caller asked for no documents) and the input's read `notes`. `digest` is the
        SHA-256 of the input's content when it was taken (with a cache), else ''."""
        self.source = source
        self.digest = digest
        self._verdict = verdict
        self._brief = brief
        self._doc = doc
        self._notes = notes
        if verdict is not None:
            self.status, self.error = verdict.status, verdict.error
        elif brief is not None:
            self.status, self.error = brief[0], brief[1]
        else:
            raise ValueError("a Row needs a verdict or the cached brief")

    def verdict(self) -> Verdict:
        """The whole Verdict, equal to a fresh one."""
        if self._verdict is None:
            self._verdict = restore(self._need_doc(), self.source, self._notes)
        return self._verdict

    def json_line(self) -> str:
        """The `dumpscope.verdict/2` JSON Lines row (no newline), byte-identical to a fresh row's."""
        if self._verdict is None:
            return json_line(self._need_doc(), self.source, self._notes)
        from dumpscope.render import to_json_line, verdict_to_json

        return to_json_line(verdict_to_json(self._verdict))

    def table_verdict(self) -> Verdict:
        """A Verdict with at least the fields in cache.BRIEF_FIELDS and `source` (what the table, the CSV
        and --summary read); the whole Verdict when it is at hand anyway."""
        if self._verdict is not None:
            return self._verdict
        assert self._brief is not None
        return brief_verdict(self.source, self._brief)

    def brief(self) -> Brief:
        """The verdict's table columns (cache.BRIEF_FIELDS), without decoding a cached row."""
        if self._brief is not None:
            return self._brief
        assert self._verdict is not None
        return brief_of(self._verdict)

    def document(self) -> str | None:
        """The verdict's stored form (cache.content_json) when the row holds it, else None."""
        return self._doc

    def _need_doc(self) -> str:
        if self._doc is None:
            raise ValueError(f"{self.source}: cached row read without its document (triage_rows docs=False)")
        return self._doc


# Cached documents are fetched this many rows ahead of the output, so a re-run's memory does not
# grow with the number of inputs (JSON Lines output streams).
_DOC_BATCH = 256


def triage_all(
    paths: Sequence[str],
    *,
    jobs: int | None = None,
    cache: Cache | None = None,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    options: Options = DEFAULT_OPTIONS,
    selection: Selection | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    runner: Runner | None = None,
) -> Generator[Verdict, None, None]:
    """Triage every input named by `paths` and yield one Verdict each, in `crashdir.select` order.

    `paths` are files, directories (walked recursively) and '-' for standard input (`stdin`, read
    once in this process; a second '-' reuses what was read), each read up to `options.max_bytes`
    (larger ones are error rows). Inputs are read and triaged in `jobs`
    worker processes (default: every CPU this process may use; 1 runs everything in-process, with
    no pool); workers are given paths, not texts, and end when this process does. A bad input, or
    one whose triage raises, becomes a `status='error'` row and never stops or hides the others;
    so does one that takes longer than `timeout` seconds to read and triage ('timed out after N s';
    0: no limit; in-process the limit needs the main thread, where SIGALRM is used while the run
    lasts, and standard input is limited from the end of its reading). With a `cache`, files whose stat
    stamp and content are unchanged are not triaged again, and fresh verdicts are stored (written in
    batches; the caller closes the cache). `progress(done, total)` is called after each input.
    Directories are read as savecore lays them out: one input per crash dump, analysed by running
    mdb (`options.tools`); `selection` is `crashdir.select(paths)` unless given (with --include and
    --exclude patterns, say). A `runner` (`cluster.DaskRunner`) selects and triages the inputs
    instead of local processes. Raises SignatureFileError up front when the signature files are bad.
    """
    rows = triage_rows(paths, jobs=jobs, cache=cache, stdin=stdin, progress=progress, options=options,
                       selection=selection, timeout=timeout, runner=runner)
    try:
        for row in rows:
            yield row.verdict()
    finally:
        rows.close()


def triage_rows(
    paths: Sequence[str],
    *,
    jobs: int | None = None,
    cache: Cache | None = None,
    stdin: BinaryIO | None = None,
    progress: Progress | None = None,
    docs: bool = True,
    compact: bool = False,
    options: Options = DEFAULT_OPTIONS,
    selection: Selection | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    runner: Runner | None = None,
) -> Generator[Row, None, None]:
    """`triage_all`, yielding a Row per input: cached verdicts stay in their stored form until used.

    With `docs=False` the stored JSON of cached verdicts is not even fetched: their rows offer
    `status`, `error` and `table_verdict()` only (what the table, CSV and --summary need). With
    `compact=True` worker processes send fresh verdicts back in that stored form too (cheaper to
    pass between processes than a Verdict; `Row.verdict()` decodes one when asked). With a
    `runner`, inputs are triaged by it (a Dask cluster) instead of `jobs` local processes.
    """
    if jobs is not None and jobs < 0:
        raise DumpscopeError(f"jobs must be 0 (all CPUs) or more, not {jobs}")
    workers = jobs or default_jobs()
    if selection is not None:
        chosen = selection
    else:
        chosen = runner.select(paths) if runner is not None else select(paths)
    names = list(chosen.inputs)
    total = len(names)
    # Load and validate the signatures before anything else: a bad signature file is one clear
    # error, not an error row per input; loaded here, forked workers inherit them.
    options.signatures()
    if timeout < 0:
        raise DumpscopeError(f"timeout must be 0 (no limit) or more seconds, not {timeout:g}")
    run = _Settings(options, cache is not None, compact, chosen.dumps, timeout)
    # In this process nothing travels between processes: fresh verdicts stay Verdicts.
    here = replace(run, compact=False)

    # The pre-check: files whose stat stamp is unchanged and whose content has a verdict are not
    # read, hashed or triaged (one query per 500 files; stamps taken against one clock reading).
    ready: dict[int, tuple[str, Brief, tuple[str, ...]]] = {}  # position -> digest, brief, read notes
    stamps: dict[int, FileStamp] = {}
    if cache is not None:
        now = time.time_ns()
        cwd = os.getcwd()
        for i, name in enumerate(names):
            if name != "-":
                st = stamp_of(name, now, cwd)
                if st is not None:
                    stamps[i] = st
        found = cache.lookup_many(list(stamps.values()))
        for i, known in zip(stamps, found, strict=True):
            if known is not None and known.brief is not None:
                ready[i] = (known.digest, known.brief, known.notes)
    work = [name for i, name in enumerate(names) if name != "-" and i not in ready]  # for the readers, in order

    if runner is not None:
        results: Generator[_Result, None, None] = runner.results(work, run)
    elif workers > 1 and len(work) > 1:
        _warm_up()
        cache_args = (cache.path, cache.sigset, cache.version) if cache is not None else None
        if cache is not None:
            cache.flush()  # workers read the cache file; nothing is pending yet, but be sure
        results = _pooled(work, workers, run, cache_args)
    else:
        results = _inline(work, here, cache)

    # The stored documents of cached rows are fetched a batch at a time, just ahead of the output.
    cached_at = sorted(ready) if docs else []  # positions of cached rows
    next_cached = 0  # cached_at[next_cached:] not fetched yet
    fetched_upto = -1  # the last position of the batch in `fetched`
    fetched: dict[str, str] = {}  # digest -> stored JSON
    stdin_src: Source | None = None
    ticking = contextlib.ExitStack()
    try:
        # In this process (inputs triaged in-process, standard input) the time limit ticks while the run lasts.
        ticking.enter_context(_ticking(_TICK if timeout > 0 else 0))
        for i, name in enumerate(names):
            if i in ready:
                digest, brief, notes = ready[i]
                doc = None
                if docs:
                    assert cache is not None
                    if i > fetched_upto:  # then cached_at[next_cached] == i
                        batch = cached_at[next_cached:next_cached + _DOC_BATCH]
                        next_cached += len(batch)
                        fetched_upto = batch[-1]
                        fetched = cache.get_json_many(ready[j][0] for j in batch)
                    doc = fetched.get(digest)
                if doc is not None or not docs:
                    if progress is not None:
                        progress(i + 1, total)
                    yield Row(name, brief=brief, doc=doc, notes=notes, digest=digest)
                    continue
                # The verdict vanished since the pre-check (another run rebuilt the cache): triage it here.
                r = _process_path(name, here, cache)
            elif name == "-":
                if stdin_src is None:
                    stdin_src = read_source("-", stdin=stdin, max_bytes=options.max_bytes)
                r = _within_limit(stdin_src.name, timeout, functools.partial(_process, stdin_src, here, cache))
                name = stdin_src.name
            else:
                r = next(results)
            kind, payload, digest, notes, doc = r
            if kind == _FRESH_DOC:
                if cache is not None and digest:
                    cache.put_json(digest, doc, payload)  # type: ignore[arg-type]
                    st = stamps.get(i)
                    if st is not None:
                        cache.put_file(st, digest, notes)
                if progress is not None:
                    progress(i + 1, total)
                yield Row(name, brief=payload, doc=doc, notes=notes, digest=digest)
                continue
            v = restore(payload, name, notes) if kind == _HIT else payload
            if cache is not None and digest:
                if doc is not None:
                    cache.put_json(digest, doc, brief_of(v))
                st = stamps.get(i)
                if st is not None:
                    cache.put_file(st, digest, notes)
            if progress is not None:
                progress(i + 1, total)
            yield Row(name, v, doc=doc, digest=digest)
    finally:
        ticking.close()
        results.close()
        if cache is not None:
            cache.flush()


def _warm_up() -> None:
    # Build the parser tables once in the parent so every forked worker starts with them.
    with contextlib.suppress(Exception):  # only an optimisation; real inputs report real errors
        _triage().triage_text("> ::status\npanic message: warm up\n", "<warm-up>")
