"""Triage on a Dask cluster: each input is a task, run where its dump lies; rows come back in input order.

The local pool (`bulk._pooled`) stops at one machine. A fleet's dumps lie on many hosts, and running
`mdb` on a dump needs that host's disk and memory, so `DaskRunner` hands the bulk runner the same
stream as the pool -- one result per input, in input order -- from a Dask `distributed` cluster:

- an input named `HOST:PATH` (scp's and rsync's syntax) is pinned to the workers on HOST with Dask
  worker restrictions, so the dump is read there and only its verdict travels; a directory given
  so is walked there too. Plain paths go to any worker (a shared file system);
- results are fetched as tasks finish and given out in input order; at most `window` inputs are in
  flight ahead of the oldest unfinished one, so a slow dump holds back only the rows after it and
  memory stays bounded;
- a worker that dies mid-task has the task rerun elsewhere by the scheduler, at most
  `distributed.scheduler.allowed-failures` times (3 by default); a task that fails on every try,
  or raises on the worker, becomes an error row with the worker's error;
- losing the scheduler ends the run with `SchedulerLost` once the rows already finished are given out.

The client does everything else (the cache and any history database, the output, the progress bar).
Dask is the optional extra `dumpscope[dask]`: only this module imports it, and only `triage
--scheduler` imports this module.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import socket
import time
from collections.abc import Generator, Sequence
from concurrent.futures import CancelledError
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import dask.config
from dask.utils import parse_timedelta
from distributed import Client, Future, LocalCluster, wait

from dumpscope import bulk
from dumpscope.analyse import DEFAULT_OPTIONS, Options
from dumpscope.crashdir import DumpFiles, Selection, Skipped, select
from dumpscope.errors import DumpscopeError, SchedulerLost

__all__ = ["DaskRunner", "SchedulerLost", "split_host"]

# HOST:PATH as scp and rsync read it: a colon before any slash ("[v6addr]:PATH" for IPv6). A local
# file whose name has a colon before its first slash is named ./NAME instead.
_HOST_PATH = re.compile(r"(\[[^\]/]+\]|[^:/\[\]]+):(.+)", re.DOTALL)

# In-flight inputs ahead of the oldest unfinished one: at least this many, and 4 per worker thread
# so every worker has the next task queued while its results travel back.
_MIN_WINDOW = 64
# How many times the result of one input is fetched again after its worker died holding it.
_REFETCH = 3
# How long to wait for a task before checking that the cluster still has a worker for it (seconds),
# and how long a task may have none before it is given up (a nanny restarts a dead worker in seconds).
_CHECK_EVERY = 5.0
_GONE_AFTER = 30.0


def split_host(arg: str) -> tuple[str | None, str]:
    """('cn3', '/var/crash/volatile') for 'cn3:/var/crash/volatile'; (None, arg) for a plain path."""
    m = _HOST_PATH.fullmatch(arg)
    if m is None:
        return None, arg
    return m.group(1).strip("[]"), m.group(2)


def _identity(options: Options, dask_worker: Any) -> tuple[str, str, str, str]:
    # Run on every worker at the start (Client.run passes the worker as `dask_worker`): its host name
    # and worker name (what HOST:PATH may name), and the dumpscope and signature set it would triage
    # with (a worker with others gives other verdicts).
    import dumpscope

    return socket.gethostname(), str(dask_worker.name), dumpscope.__version__, options.signatures().version


def _select_on_worker(path: str, include: Sequence[str], exclude: Sequence[str]) -> Selection:
    return select([path], include, exclude)


def _triage_on_worker(path: str, shown: str, run: bulk._Settings) -> bulk._Result:
    # The task: read and triage one input as a pool worker would, with no cache (the cache is the
    # client's). `shown` is the name the row carries (HOST:PATH), `path` the name on this host;
    # `run.dumps` holds this input's crash dump files, if it is a dump.
    tools = run.options.tools
    if run.dumps and tools is not None and (tools.mdb is None or tools.savecore is None):
        # the client has none on its PATH (it need not be an illumos host): this host's own, if any
        tools = replace(tools, mdb=tools.mdb or shutil.which("mdb"),
                        savecore=tools.savecore or shutil.which("savecore"))
        run = replace(run, options=replace(run.options, tools=tools))
    kind, payload, digest, notes, doc = bulk._process_path(path, run)
    if shown != path and kind in (bulk._FRESH, bulk._FAILED):
        payload = replace(payload, source=shown)
    return kind, payload, digest, notes, doc


def _worker_error(exc: BaseException | None) -> str:
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        return (f"the Dask worker died running it, {exc.allowed_failures + 1} times (the last on "
                f"{exc.last_worker.address})")
    if exc is None:
        return "the Dask task failed without an error"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"error on the Dask worker: {type(exc).__name__}: {first}".rstrip(": ")


class DaskRunner:
    """Runs `bulk.triage_rows`'s reading and triage on a Dask cluster (see the module docstring).

    `address` is a scheduler address (tcp://host:8786) or 'local:N' for a LocalCluster of N worker
    processes on this machine. Connecting checks that the cluster has workers and that they run the
    client's dumpscope and signature set; failures raise DumpscopeError (ValueError for an address
    that is not one). `timeout` bounds the connection
    and the wait for a first worker (seconds; default Dask's `distributed.comm.timeouts.connect`, 30 s).
    `quiet` keeps Dask's own log messages off stderr (the CLI reports what went wrong itself).
    Close it (or use `with`).
    """

    def __init__(self, address: str, *, options: Options = DEFAULT_OPTIONS, timeout: float | None = None,
                 quiet: bool = False) -> None:
        self.address = address
        self._options = options
        if quiet:
            # Dask logs to stderr what dumpscope reports itself, as rows or as one error at the end
            # (lost workers and scheduler, its reconnection attempts); errors only go to stderr.
            for handler in logging.getLogger("distributed").handlers:  # Dask's own stderr handler
                handler.setLevel(logging.CRITICAL)
        self._cluster: LocalCluster | None = None
        self._client: Client
        local = re.fullmatch(r"local:(\d+)", address)
        try:
            if local is not None:
                n = int(local.group(1))
                if not 1 <= n <= 1024:
                    raise ValueError(f"local:N needs 1 <= N <= 1024, not {n}")
                # One thread per worker process: the triage is pure Python, so threads share one GIL.
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             dashboard_address=":0",
                                             silence_logs=logging.CRITICAL if quiet else logging.ERROR)
                self._client = Client(self._cluster)
            else:
                if timeout is None:
                    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
                self._client = Client(address, timeout=timeout)
                self._client.wait_for_workers(1, timeout=timeout)
        except (DumpscopeError, ValueError):
            self.close()
            raise
        except (OSError, TimeoutError) as exc:
            self.close()
            raise DumpscopeError(f"cannot use the Dask scheduler at {address}: {_first_line(exc)}") from None
        self._token = secrets.token_hex(4)  # task keys are unique per run: reruns never share results
        self._hosts: dict[str, set[str]] = {}  # HOST -> the worker address hosts it names
        self._refetch: dict[int, int] = {}  # position -> how often its result could not be fetched
        self._allowed: dict[int, set[str]] = {}  # position -> the worker hosts its task is pinned to
        self._orphaned: dict[int, float] = {}  # position -> since when no live worker may run its task
        self._fetcher: Any = None  # the thread results are fetched in (see _gather)
        self._check_workers()

    def close(self) -> None:
        """Disconnect, and stop the LocalCluster if this runner started one."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()  # ends a fetch stuck in the helper thread too
        if getattr(self, "_fetcher", None) is not None:
            self._fetcher.shutdown(wait=False)
            self._fetcher = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_workers(self) -> None:
        import dumpscope

        try:
            found: dict[str, tuple[str, str, str, str]] = self._client.run(_identity, self._options)
        except Exception as exc:  # noqa: BLE001 - any worker-side failure means it cannot triage
            raise DumpscopeError(f"a Dask worker cannot run dumpscope ({type(exc).__name__}: {_first_line(exc)}); "
                                 "install this dumpscope on every worker") from None
        mine = (dumpscope.__version__, self._options.signatures().version)
        hosts: dict[str, set[str]] = {}
        for addr, (hostname, name, version, sigs) in sorted(found.items()):
            if (version, sigs) != mine:
                raise DumpscopeError(f"Dask worker {addr} runs dumpscope {version} with signature set {sigs}, "
                                     f"this client {mine[0]} with {mine[1]}: install the same on every worker")
            ip = urlsplit(addr).hostname or addr  # the worker's host as Dask's host restrictions match it
            for alias in {hostname, hostname.split(".")[0], ip, name} - {""}:
                hosts.setdefault(alias, set()).add(ip)
        self._hosts = hosts

    def _host(self, host: str) -> set[str] | None:
        # The address hosts of the workers HOST names (by host name, address or worker name), or None.
        if host not in self._hosts:
            self._check_workers()  # a worker may have joined since
        return self._hosts.get(host)

    def _no_worker(self, host: str) -> str:
        known = ", ".join(sorted(self._hosts)) or "none"
        return f"no Dask worker on host {host!r} (workers answer to: {known})"

    # --- the bulk runner's interface ----------------------------------------------------------

    def select(self, paths: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Selection:
        """`crashdir.select`, with each HOST:PATH argument selected on a worker on HOST (its inputs, dumps
        and skipped files named HOST:...); plain paths are selected here."""
        inputs: list[str] = []
        dumps: dict[str, DumpFiles] = {}
        skipped: list[Skipped] = []
        for n, arg in enumerate(paths):
            host, path = split_host(arg) if arg != "-" else (None, arg)
            if host is None:
                found, prefix = select([arg], include, exclude), ""
            else:
                hosts = self._host(host)
                if hosts is None:
                    inputs.append(arg)  # its task becomes the error row
                    continue
                fut = self._client.submit(_select_on_worker, path, tuple(include), tuple(exclude),
                                          workers=sorted(hosts), allow_other_workers=False, pure=False,
                                          key=f"dumpscope-select-{self._token}-{n}")
                try:
                    found = fut.result()
                except Exception:  # noqa: BLE001 - the task of the path itself reports what is wrong
                    inputs.append(arg)
                    continue
                prefix = arg[:len(arg) - len(path)]  # 'HOST:'
            # crashdir.select takes each argument on its own: its selections, one after the other
            inputs.extend(prefix + name for name in found.inputs)
            dumps.update((prefix + name, files) for name, files in found.dumps.items())
            skipped.extend(replace(s, path=prefix + s.path) for s in found.skipped)
        return Selection(tuple(inputs), dumps, tuple(skipped))

    def results(self, names: Sequence[str], run: bulk._Settings) -> Generator[bulk._Result, None, None]:
        """One result per name, in the order of `names`, from tasks on the cluster (`run`: the run's
        settings, as every pool worker has them; the cache stays with the client)."""
        client = self._client
        threads = sum(client.nthreads().values()) or 1
        window = max(_MIN_WINDOW, 4 * threads)
        pending: dict[int, Future[Any]] = {}  # position -> its running task
        done: dict[int, bulk._Result] = {}  # position -> result not given out yet
        submitted = 0
        given = 0
        self._refetch = {}
        self._allowed = {}
        self._orphaned = {}
        try:
            while given < len(names):
                while submitted < len(names) and submitted - given < window:
                    fut = self._submit(submitted, names[submitted], run)
                    if isinstance(fut, Future):
                        pending[submitted] = fut
                    else:
                        done[submitted] = fut
                    submitted += 1
                while given in done:
                    yield done.pop(given)
                    given += 1
                if given >= len(names) or given in done or given not in pending:
                    continue  # all done, or the next row is ready, or its task is still to be submitted
                try:
                    # the oldest unfinished input is the next row: what else finished by then comes along
                    wait([pending[given]], timeout=_CHECK_EVERY)
                except TimeoutError:
                    self._lost_check()
                    done.update(self._orphans(pending, names))
                    continue
                except CancelledError:
                    self._lost_check()  # else a task was cancelled from outside: its row says so below
                finished = {i: f for i, f in pending.items() if f.done()}
                for i in finished:
                    del pending[i]
                done.update(self._collect(finished, names, pending))
        except SchedulerLost as lost:
            # Give out what finished, in order (an unfinished input before a finished one is an error
            # row), then end the run.
            last = max(done, default=given - 1)
            for i in range(given, last + 1):
                yield done.pop(i) if i in done else self._error(names[i], "not triaged: lost the Dask scheduler")
            raise SchedulerLost(f"{lost} ({len(names) - last - 1} of {len(names)} inputs not triaged)") from None
        finally:
            for fut in pending.values():
                fut.release()

    def _submit(self, i: int, name: str, run: bulk._Settings) -> Future[Any] | bulk._Result:
        host, path = split_host(name)
        restrict: dict[str, Any] = {}
        if host is not None:
            hosts = self._host(host)
            if hosts is None:
                return self._error(name, self._no_worker(host))
            restrict = {"workers": sorted(hosts), "allow_other_workers": False}
            self._allowed[i] = hosts
        # Each task carries only its own dump's files (the selection's are many).
        dump = run.dumps.get(name) if run.dumps else None
        task_run = replace(run, dumps={path: dump} if dump is not None else None)
        return self._client.submit(_triage_on_worker, path, name, task_run, pure=False,
                                   key=f"dumpscope-triage-{self._token}-{i}", **restrict)

    def _collect(self, finished: dict[int, Future[Any]], names: Sequence[str],
                 pending: dict[int, Future[Any]]) -> dict[int, bulk._Result]:
        # The results of finished tasks, fetched together. A result whose worker died before it was
        # fetched is recomputed by the scheduler: its task goes back to `pending` (a few times at
        # most), where a task no worker is left to run is found by `_orphans`.
        out: dict[int, bulk._Result] = {}
        ok = {i: f for i, f in finished.items() if f.status == "finished"}
        if ok:
            try:
                out.update(zip(ok, self._gather(list(ok.values())), strict=True))
            except Exception as exc:  # noqa: BLE001 - the connection went, or a result did
                self._lost_check()
                for i, f in ok.items():
                    self._refetch[i] = self._refetch.get(i, 0) + 1
                    if self._refetch[i] <= _REFETCH:
                        pending[i] = f
                    else:
                        out[i] = self._error(names[i], _worker_error(exc))
        for i, f in finished.items():
            if i in ok:
                continue
            if f.status == "cancelled":
                self._lost_check()
                out[i] = self._error(names[i], "the Dask task was cancelled")
            elif f.status == "error":
                out[i] = self._error(names[i], _worker_error(f.exception(timeout=_CHECK_EVERY)))
            else:
                pending[i] = f  # its result was lost with a worker since: it is being recomputed
        return out

    def _gather(self, futures: list[Future[Any]]) -> list[bulk._Result]:
        # Client.gather, given up after _CHECK_EVERY seconds: it has no time limit of its own, and
        # waits for ever for a result that no worker is left to recompute. It runs in a helper
        # thread; one stuck there is left to end with the client, and the next fetch gets a new one.
        from concurrent.futures import ThreadPoolExecutor

        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="dumpscope-gather")
        job = self._fetcher.submit(self._client.gather, futures)
        try:
            values: list[bulk._Result] = job.result(timeout=_CHECK_EVERY)
        except TimeoutError:
            self._fetcher.shutdown(wait=False)
            self._fetcher = None
            raise
        return values

    def _orphans(self, pending: dict[int, Future[Any]], names: Sequence[str]) -> dict[int, bulk._Result]:
        # Dask keeps a task that no live worker may run (its host's workers left, or every worker did)
        # waiting for one to join, for ever; after _GONE_AFTER seconds of that it becomes an error row.
        live = {str(w["host"]) for w in self._client.scheduler_info(n_workers=-1)["workers"].values()}
        now = time.monotonic()
        out: dict[int, bulk._Result] = {}
        for i, fut in list(pending.items()):
            allowed = self._allowed.get(i)  # the hosts a pinned task may run on; None: any
            if live and (allowed is None or allowed & live):
                self._orphaned.pop(i, None)
                continue
            if now - self._orphaned.setdefault(i, now) >= _GONE_AFTER:
                fut.cancel()
                del pending[i]
                host = split_host(names[i])[0]
                where = f"on host {host!r}" if host is not None else "in the cluster"
                out[i] = self._error(names[i], f"no Dask worker left {where} to run it")
        return out

    def _lost_check(self) -> None:
        # The client cancels every future when it loses the scheduler, and stops "running".
        if self._client.status != "running":
            raise SchedulerLost(f"lost the Dask scheduler at {self.address}")

    @staticmethod
    def _error(name: str, reason: str) -> bulk._Result:
        return bulk._FAILED, bulk.error_verdict(name, reason), "", (), None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
