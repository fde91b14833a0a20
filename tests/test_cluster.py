"""`triage --scheduler`: a real Dask LocalCluster of two worker processes gives the local pool's rows.

One cluster serves the whole module (starting worker processes costs seconds); tests that kill or
break workers leave it with two healthy workers again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.config
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from dumpscope.bulk import triage_all, triage_rows
from dumpscope.cli import main
from dumpscope.cluster import DaskRunner, split_host

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakes import crash_tree, install  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TRANSCRIPTS = FIXTURES / "transcripts"
SEED = TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"

# Small timeouts: a test that goes wrong fails in seconds rather than hanging; a worker killed twice
# is given up on (allowed-failures 1: two tries).
_CONFIG = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.comm.timeouts.connect": "10s",
    "distributed.deploy.lost-worker-timeout": "5s",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with dask.config.set(_CONFIG):
        lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=logging.ERROR)
        try:
            yield lc
        finally:
            lc.close()


@pytest.fixture
def address(cluster: LocalCluster) -> Iterator[str]:
    with dask.config.set(_CONFIG):
        yield cluster.scheduler_address
        with Client(cluster.scheduler_address) as client:
            client.wait_for_workers(2, timeout=120)  # a test that killed one leaves it restarted


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_rows_equal_the_local_pools_byte_for_byte(fmt: str, address: str, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole fixture corpus: transcripts, error inputs, the bulk directories, compressed files.
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    local = _cli(["triage", "--format", fmt, "--jobs", "2", str(FIXTURES)], capsys)
    dask_run = _cli(["triage", "--format", fmt, "--scheduler", address, str(FIXTURES)], capsys)
    assert local[1].count("\n") > 100
    assert dask_run == local


def test_a_crash_directory_with_the_fake_mdb_gives_the_local_pools_rows(
        address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # savecore's layout with three dumps: savecore and mdb run on the workers (fake tools, as in test_dumps)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    fake = install(tmp_path, monkeypatch)
    crash = crash_tree(tmp_path)
    env = {k: os.environ[k] for k in ("PATH", "FAKE_TOOLS_LOG", "FAKE_MDB_SESSIONS")}

    def setenv(values: dict[str, str | None]) -> None:  # a worker's environment, as on the dump's host
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    work = tmp_path / "work"  # the rows name it; emptied between the runs, so that both run every tool
    local = _cli(["triage", str(crash), "--work", str(work), "--jobs", "2", "-f", "json"], capsys)
    calls = len(fake.calls())
    shutil.rmtree(work)
    with Client(address) as client:
        before: dict[str, dict[str, str | None]] = client.run(lambda: {k: os.environ.get(k) for k in env})
        client.run(setenv, env)
        try:
            dask_run = _cli(["triage", str(crash), "--work", str(work), "--scheduler", address, "-f", "json"], capsys)
        finally:
            for addr, old in before.items():
                client.run(setenv, old, workers=[addr])
    assert len(fake.calls()) == 2 * calls == 2 * 5  # the same savecore and mdb runs, made by the workers
    assert [json.loads(line)["confidence"] for line in local[1].splitlines()] == ["likely", "confirmed", None]
    assert dask_run == local


def test_the_scheduler_can_come_from_dask_scheduler_address(address: str, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    rc, out, err = _cli(["triage", "--format", "json", str(SEED), "nohost:" + str(SEED)], capsys)
    # the pinned input proves the run went to the cluster: the local pool knows no hosts
    assert rc == 1 and "no Dask worker on host 'nohost'" in err
    # an explicit --jobs outranks the environment: a local run, where nohost:... is just a missing file
    rc, out, err = _cli(["triage", "--format", "json", "--jobs", "1", str(SEED), "nohost:" + str(SEED)], capsys)
    assert rc == 1 and "no such file" in err
    # on the command line the two exclude each other
    rc, out, err = _cli(["triage", "--jobs", "2", "--scheduler", address, str(SEED)], capsys)
    assert rc == 2 and "--jobs and --scheduler exclude each other" in err


def test_host_path_inputs_run_on_that_host_and_keep_their_names(address: str) -> None:
    # Every LocalCluster worker is on 127.0.0.1; a directory named so is walked on the worker.
    here = [str(SEED), str(FIXTURES / "dirs" / "corpus-mix")]
    pinned = ["127.0.0.1:" + p for p in here]
    with DaskRunner(address) as runner:
        rows = list(triage_rows(pinned, runner=runner, compact=True))
    local = list(triage_rows(here, jobs=1))
    assert len(rows) == len(local) > 10
    for got, want in zip(rows, local, strict=True):
        assert got.source == "127.0.0.1:" + want.source
        assert got.json_line() == want.json_line().replace(f'"source":"{want.source}"',
                                                           f'"source":"127.0.0.1:{want.source}"')


def test_a_task_pinned_to_a_host_with_no_worker_is_an_error_row_not_a_hang(address: str) -> None:
    names = [str(SEED), "no-such-worker.invalid:/var/crash/volatile/vmdump.0", str(SEED)]
    start = time.monotonic()
    with DaskRunner(address) as runner:
        rows = list(triage_all(names, runner=runner))
    assert time.monotonic() - start < 30
    assert [r.source for r in rows] == names
    assert [r.status for r in rows] == ["ok", "error", "ok"]
    assert rows[1].error is not None
    assert rows[1].error.startswith("no Dask worker on host 'no-such-worker.invalid' (workers answer to: ")
    assert "127.0.0.1" in rows[1].error


def _worker_pids(client: Client) -> dict[str, int]:
    return client.run(os.getpid)  # type: ignore[no-any-return]


def test_a_worker_killed_mid_run_loses_no_input(address: str) -> None:
    names = [str(FIXTURES)] * 3  # ~440 inputs
    clean = [r.verdict() for r in triage_rows(names, jobs=1)]
    killed: list[tuple[str, int, tuple[str, ...]]] = []
    with Client(address) as client, DaskRunner(address) as runner:

        def progress(done: int, total: int) -> None:
            if killed or done < 20:
                return
            # a worker running tasks, or else one holding results not fetched yet (both are lost with it)
            busy = [(addr, keys) for addr, keys in client.processing().items() if keys]
            busy += [(addr, keys) for addr, keys in client.has_what().items() if keys]
            if busy:
                addr, keys = busy[0]
                pid = _worker_pids(client)[addr]
                os.kill(pid, signal.SIGKILL)
                killed.append((addr, pid, tuple(str(k) for k in keys)))

        rows = [r.verdict() for r in triage_rows(names, runner=runner, progress=progress)]
    assert killed, "no worker was busy to kill"
    assert [r.source for r in rows] == [r.source for r in clean]
    assert rows == clean


def test_a_task_failing_on_every_try_is_an_error_row_with_the_workers_error(address: str) -> None:
    target = str(TRANSCRIPTS / "near-miss-1229-brand-other-assertion.txt")

    class Crash(WorkerPlugin):  # defined here so that cloudpickle ships it to the workers by value
        """Makes the workers die on one input (every try) and raise on another."""

        def setup(self, worker: Any) -> None:
            import dumpscope.bulk as bulk

            real = bulk._process_path

            def process(name: str, state: Any) -> Any:
                if name == target:
                    os._exit(1)
                if name == str(SEED):
                    raise RuntimeError("mdb: failed to initialize target\nsecond line")
                return real(name, state)

            self.real = real
            bulk._process_path = process

        def teardown(self, worker: Any) -> None:
            import dumpscope.bulk as bulk

            bulk._process_path = self.real

    with Client(address) as client:
        client.register_plugin(Crash(), name="crash")
        try:
            # Two runs: a task queued on a worker that dies counts as a try too (Dask cannot tell it
            # from the one that killed it), so the raising input does not share a run with the killer.
            with DaskRunner(address) as runner:
                died = list(triage_all([target], runner=runner))
                client.wait_for_workers(1, timeout=120)
                raised = list(triage_all([str(TRANSCRIPTS / "omnios-1229-s10-brand-assert-kmdb.txt"), str(SEED)],
                                         runner=runner))
        finally:
            client.unregister_worker_plugin("crash")
    assert [(r.source, r.status) for r in died] == [(target, "error")]
    assert died[0].error is not None
    assert died[0].error.startswith("the Dask worker died running it, 2 times (the last on tcp://127.0.0.1:")
    assert [r.status for r in raised] == ["ok", "error"]
    assert raised[1].error == "error on the Dask worker: RuntimeError: mdb: failed to initialize target"


def test_a_lost_scheduler_ends_the_run_after_the_finished_rows(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set(_CONFIG):
        own = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    try:
        # stop the scheduler once 10 rows are out
        import dumpscope.cli as cli

        real_bar = cli._Progress

        class Stopper(real_bar):  # type: ignore[misc, valid-type]
            def __call__(self, done: int, total: int) -> None:
                if done == 10:
                    own.sync(own.scheduler.close)

        monkeypatch.setattr(cli, "_Progress", Stopper)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        rc, out, err = _cli(["triage", "--format", "csv", "--scheduler", own.scheduler_address,
                             str(FIXTURES), str(FIXTURES)], capsys)
    finally:
        own.close()
    assert rc == 1
    rows = out.splitlines()[1:]  # the header, then every row given out before the end
    assert len(rows) >= 10
    assert err.rstrip().splitlines()[-1].startswith(
        f"dumpscope: error: lost the Dask scheduler at {own.scheduler_address} (")
    assert "Traceback" not in err


def test_tasks_left_with_no_worker_become_error_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import dumpscope.cluster as cluster_mod

    monkeypatch.setattr(cluster_mod, "_CHECK_EVERY", 0.2)
    monkeypatch.setattr(cluster_mod, "_GONE_AFTER", 1.0)
    with dask.config.set(_CONFIG):
        own = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    try:
        with DaskRunner(own.scheduler_address) as runner:

            def progress(done: int, total: int) -> None:
                if done == 3:
                    own.scale(0)  # the only worker retires; nothing replaces it

            names = [str(SEED)] * 3 + ["127.0.0.1:" + str(SEED)] + [str(SEED)] * 300
            start = time.monotonic()
            rows = list(triage_all(names, runner=runner, progress=progress))
    finally:
        own.close()
    assert time.monotonic() - start < 60
    assert len(rows) == len(names)
    errors = [r for r in rows if r.status == "error"]
    assert errors, "every task finished before the worker left"
    assert {r.error for r in errors} <= {"no Dask worker left in the cluster to run it",
                                         "no Dask worker left on host '127.0.0.1' to run it"}
    assert all(r.status == "ok" for r in rows[:3])


def test_split_host_reads_host_path_as_scp_does() -> None:
    assert split_host("cn3:/var/crash/volatile") == ("cn3", "/var/crash/volatile")
    assert split_host("cn3.example.com:vmdump.0") == ("cn3.example.com", "vmdump.0")
    assert split_host("[fe80::1]:/var/crash") == ("fe80::1", "/var/crash")
    assert split_host("/var/crash/a:b") == (None, "/var/crash/a:b")
    assert split_host("./a:b") == (None, "./a:b")
    assert split_host("dump.txt") == (None, "dump.txt")
    assert split_host("cn3:") == (None, "cn3:")


def test_without_distributed_scheduler_says_how_to_install_it_and_exits_2() -> None:
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if the extra were not installed\n"
        "from dumpscope.cli import main\n"
        f"main(['triage', '--scheduler', 'local:2', {str(SEED)!r}])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--scheduler needs Dask's distributed package: pip install 'dumpscope[dask]'" in p.stderr
    assert "Traceback" not in p.stderr


def test_nothing_but_scheduler_imports_dask() -> None:
    code = (
        "import sys\n"
        "import dumpscope\n"
        "from dumpscope.bulk import triage_all\n"
        f"rows = list(triage_all([{str(FIXTURES / 'dirs')!r}], jobs=2))\n"
        "from dumpscope.cli import main\n"
        "try:\n"
        f"    main(['triage', '--format', 'json', {str(SEED)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(len(rows), sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    count, modules = p.stdout.splitlines()[-1].split(" ", 1)
    assert int(count) > 5 and modules == "[]"
