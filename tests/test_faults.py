"""Faults around a run (issue 18): a killed parent, Ctrl-C, closed pipes and streams, a stalled input.

Each test runs the real CLI as its own process. Inputs that must stall go through tests/_slow_cli.py,
whose triage runs a catastrophic regex on any input holding the word SLOW (the C regex engine holds the
interpreter lock, as the parser's own hangs did). The bounds below are generous for a shared 2-core
machine; the code they check ends a worker within a quarter of a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _triage_samples import OTHER, POSITIVE

ROOT = Path(__file__).resolve().parent.parent
SLOW_CLI = [sys.executable, str(ROOT / "tests" / "_slow_cli.py")]
CLI = [sys.executable, "-m", "dumpscope"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")


def _stall_dir(tmp: Path) -> Path:
    """One input that triages at once, then two that stall (one per worker of --jobs 2)."""
    d = tmp / "dumps"
    d.mkdir()
    (d / "0-fast.txt").write_text(POSITIVE)
    (d / "1-slow.txt").write_text(OTHER + "SLOW\n")
    (d / "2-slow.txt").write_text(OTHER + "SLOW\n")
    return d


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class _Reader:
    """Reads a process's stdout in a thread, so a test can wait for a line or for end of file."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[str] = []
        self.eof = threading.Event()
        self._stream = stream
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for line in self._stream:
            self.lines.append(line)
        self.eof.set()


def _default_signals() -> None:
    # A test run started in the background (`cmd &` in a script ignores SIGINT) or under nohup (SIGHUP)
    # hands those ignored signals down to its children; these tests are about a process the signals
    # do reach, as they do one started from a terminal.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _start(argv: list[str], **kw) -> tuple[subprocess.Popen[str], _Reader]:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=ENV, preexec_fn=_default_signals, **kw)
    return proc, _Reader(proc.stdout)


def _kill_all(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- workers end with their parent -----------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists child processes through /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_workers_end_when_their_parent_is_killed(sig: signal.Signals, tmp_path: Path) -> None:
    d = _stall_dir(tmp_path)
    proc, out = _start(SLOW_CLI + ["triage", str(d), "--jobs", "2", "-f", "json"])
    workers: set[int] = set()
    try:
        assert _wait_for(lambda: len(out.lines) == 1, 30), "the fast input's row never came"
        assert _wait_for(lambda: len(_children(proc.pid)) >= 2, 10)
        workers = _children(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(10)
        # `dumpscope triage dir | wc -l` ends: nobody holds the stdout pipe any more
        assert out.eof.wait(10), "workers outlived their parent and still hold stdout"
        assert _wait_for(lambda: not any(map(_alive, workers)), 5)
    finally:
        proc.kill()
        _kill_all(workers)


# -- Ctrl-C ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists child processes through /proc")
@pytest.mark.parametrize("fmt, fast_row", [("json", '"source":'), ("table", "0-fast.txt"), ("csv", "0-fast.txt")])
def test_ctrl_c_with_two_busy_workers_stops_at_once_with_the_finished_rows(
        fmt: str, fast_row: str, tmp_path: Path) -> None:
    d = _stall_dir(tmp_path)
    # its own session, so the test can signal the whole process group as a terminal's Ctrl-C does
    proc, out = _start(SLOW_CLI + ["triage", str(d), "--jobs", "2", "-f", fmt], start_new_session=True)
    try:
        if fmt == "json":
            assert _wait_for(lambda: len(out.lines) == 1, 30)
        else:  # the table is written at the end: wait until both workers are stuck
            assert _wait_for(lambda: len(_children(proc.pid)) >= 2, 30)
            time.sleep(1.5)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(10)
        assert out.eof.wait(5)
        assert rc == 130
        assert proc.stderr is not None and proc.stderr.read().endswith("dumpscope: interrupted\n")
        text = "".join(out.lines)
        assert fast_row in text and "1-slow" not in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


# -- a per-input time limit --------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_input_past_its_time_limit_becomes_an_error_row_and_the_run_goes_on(jobs: str, tmp_path: Path) -> None:
    d = _stall_dir(tmp_path)
    (d / "3-other.txt").write_text(OTHER)
    proc = subprocess.run(SLOW_CLI + ["triage", str(d), "--jobs", jobs, "--timeout", "1", "-f", "json"],
                          capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60, check=False)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(Path(r["source"]).name, r["status"], r["error"]) for r in rows] == [
        ("0-fast.txt", "ok", None),
        ("1-slow.txt", "error", "timed out after 1 s"),
        ("2-slow.txt", "error", "timed out after 1 s"),
        ("3-other.txt", "ok", None),
    ]
    assert proc.returncode == 1
    assert proc.stderr.count("timed out after 1 s") == 2 and "Traceback" not in proc.stderr


def test_timeout_has_a_default_and_is_documented() -> None:
    from dumpscope import bulk, cli

    assert cli.DEFAULT_TIMEOUT == bulk.DEFAULT_TIMEOUT > 0
    help_text = subprocess.run(CLI + ["triage", "--help"], capture_output=True, text=True, cwd=ROOT, env=ENV,
                               check=True).stdout
    assert "--timeout" in help_text
    readme = (ROOT / "README.md").read_text()
    assert "--timeout SECONDS" in readme and "timed out after" in readme


# -- closed and full output streams -----------------------------------------------------------------


def _many(tmp: Path, n: int = 40) -> Path:
    d = tmp / "many"
    d.mkdir()
    for i in range(n):
        (d / f"{i:03}.txt").write_text(POSITIVE if i % 2 else OTHER)
    return d


def _closed_pipe_run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    # stdout is a pipe whose reader is gone before anything is written: every write fails with EPIPE,
    # as it does once `| head -1` has its line
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, cwd=ROOT, env=ENV, timeout=60, check=False)
    finally:
        os.close(w)


@pytest.mark.parametrize("args", [
    ["triage", "{dir}", "-f", "json"], ["triage", "{dir}", "-f", "table"], ["triage", "{dir}", "-f", "csv"],
    ["triage", "{dir}", "--summary"], ["triage", "{dir}", "--jobs", "2", "-f", "json"],
    ["triage", "{one}"], ["parse", "{one}"], ["parse", "{one}", "-f", "json"], ["signatures"],
], ids=lambda a: " ".join(a))
def test_a_closed_pipe_exits_0_quietly_in_every_format(args: list[str], tmp_path: Path) -> None:
    d = _many(tmp_path)
    argv = [a.format(dir=d, one=d / "001.txt") for a in args]
    proc = _closed_pipe_run(CLI + argv)
    assert (proc.returncode, proc.stderr.decode()) == (0, "")


def _shell(cmd: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=60,
                          check=False)


_STDOUT_FAULTS = [(">&-", "standard output is closed")]
if Path("/dev/full").exists():
    _STDOUT_FAULTS.append((">/dev/full", "No space left on device"))


@pytest.mark.parametrize("redirect, reason", _STDOUT_FAULTS, ids=[r for r, _ in _STDOUT_FAULTS])
@pytest.mark.parametrize("args", [["signatures"], ["triage", "{one}"], ["parse", "{one}", "-f", "json"],
                                  ["triage", "{dir}", "-f", "table"], ["triage", "{dir}", "-f", "json"]],
                         ids=lambda a: " ".join(a))
def test_a_closed_or_full_stdout_is_a_one_line_output_error_exit_1(args: list[str], redirect: str, reason: str,
                                                                   tmp_path: Path) -> None:
    # not a traceback, and not exit 3 (the README keeps 3 for bugs)
    d = _many(tmp_path, 4)
    argv = " ".join([a.format(dir=d, one=d / "001.txt") for a in args])
    proc = _shell(f"exec {sys.executable} -m dumpscope {argv} {redirect}", tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"dumpscope: error: cannot write output: {reason}\n"


def _with_bad_inputs(tmp: Path) -> Path:
    d = tmp / "mixed"
    d.mkdir()
    for i in range(6):
        p = d / f"{i}.txt"
        if i % 2:
            p.write_text(OTHER)
        else:
            p.write_bytes(b"")  # empty: an error row, and a line on stderr
    return d


@pytest.mark.parametrize("stderr", ["2>&-", "2>/dev/full"])
@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_a_closed_or_full_stderr_loses_no_row_and_keeps_the_exit_code(stderr: str, fmt: str, tmp_path: Path) -> None:
    d = _with_bad_inputs(tmp_path)
    proc = _shell(f"{sys.executable} -m dumpscope triage {d} -f {fmt} {stderr}", tmp_path)
    assert proc.returncode == 1  # some inputs were bad: exit 1, as with a working stderr
    text = proc.stdout
    for i in range(6):
        assert f"{i}.txt" in text
    if fmt == "json":
        assert len(text.splitlines()) == 6


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
@pytest.mark.parametrize("fmt", ["text", "table", "csv"])
def test_a_non_utf8_file_name_is_shown_escaped_whatever_the_encoding(encoding: str, fmt: str, tmp_path: Path) -> None:
    d = tmp_path / "names"
    d.mkdir()
    bad = os.fsdecode(bytes(d) + b"/dump-\xff\xfe.txt")
    Path(bad).write_text(POSITIVE)
    target = bad if fmt == "text" else str(d)
    env = {**ENV, "PYTHONIOENCODING": f"{encoding}:strict"}
    proc = subprocess.run(CLI + ["triage", target, "-f", fmt], capture_output=True, cwd=ROOT, env=env, timeout=60,
                          check=False)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert b"dump-\\xff\\xfe.txt" in proc.stdout


# -- FIFOs, sockets and devices in a directory ---------------------------------------------------------


def test_fifos_sockets_and_devices_in_a_directory_are_never_opened_and_are_counted(tmp_path: Path) -> None:
    import socket

    d = tmp_path / "crash"
    d.mkdir()
    (d / "dump.txt").write_text(POSITIVE)
    os.mkfifo(d / "pipe")  # opening it would block until a writer came
    (d / "pipe-link").symlink_to(d / "pipe")
    (d / "zero").symlink_to("/dev/zero")  # reading it would never end
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(d / "sock"))
    try:
        proc = subprocess.run(CLI + ["triage", str(d), "-f", "json"], capture_output=True, text=True, cwd=ROOT,
                              env=ENV, timeout=60, check=False)
    finally:
        sock.close()
    assert [Path(json.loads(line)["source"]).name for line in proc.stdout.splitlines()] == ["dump.txt"]
    assert proc.returncode == 0
    assert proc.stderr == "dumpscope: skipped 4 files: 4 not a regular file\n"


def test_a_fifo_named_on_the_command_line_is_read(tmp_path: Path) -> None:
    # `dumpscope triage <(mdb ...)`: a FIFO the user names is an input, read like stdin
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    proc = subprocess.Popen(CLI + ["triage", str(fifo), "-f", "json"], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=ENV)
    with open(fifo, "w") as w:
        w.write(POSITIVE)
    out, _ = proc.communicate(timeout=60)
    assert json.loads(out)["signature"] == "illumos-12476"
