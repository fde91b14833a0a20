"""Run savecore and mdb on a crash dump, as an operator would, and turn each failure into a one-line reason."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dumpscope.crashdir import DumpFiles, DumpKind
from dumpscope.errors import DumpscopeError
from dumpscope.signatures import SignatureSet

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROCESS_DCMDS",
    "STANDARD_DCMDS",
    "DumpFailure",
    "MdbRun",
    "Tools",
    "echoed",
    "first_pass",
    "follow_ups",
    "mdb_argv",
    "needs_mdb",
    "run_mdb",
    "savecore",
]

# What every kernel dump gets, whatever the signatures ask for: the status and panic stack, the
# console messages, the panic registers, the CPUs and every thread's stack, grouped.
STANDARD_DCMDS = ("::status", "$C", "::msgbuf", "::panicinfo", "::cpuinfo -v", "::stacks")
# A user process's core: mdb's proc target has ::status and $C (the kernel dcmds do not apply).
PROCESS_DCMDS = ("::status", "$C")
# savecore on a large dump and ::stacks on a busy one take minutes; an hour means "stuck".
DEFAULT_TIMEOUT = 3600.0

_ADDRESS_FIELD = "{address}"
_ADDRESS = "[0-9a-f]{1,16}"


class DumpFailure(DumpscopeError):
    """savecore or mdb could not do its part; the message is the row's one-line reason."""


@dataclass(frozen=True, slots=True)
class Tools:
    """Where savecore and mdb are and how long each run may take (picklable: it goes to workers)."""

    mdb: str | None  # path of mdb; None when there is none (the dump becomes a 'needs mdb' row)
    savecore: str | None  # path of savecore; None when there is none
    work: str  # savecore expands compressed dumps under WORK/savecore/; never beside the dump
    transcripts: str  # what mdb printed is saved here, one file per dump
    timeout: float = DEFAULT_TIMEOUT  # seconds per savecore or mdb run

    @staticmethod
    def find(mdb: str | None, savecore: str | None, work: str, transcripts: str | None,
             timeout: float = DEFAULT_TIMEOUT) -> Tools:
        """Tools with `mdb` and `savecore` as given (paths) or looked up on the PATH when None."""
        return Tools(mdb or shutil.which("mdb"), savecore or shutil.which("savecore"), work,
                     transcripts or os.path.join(work, "transcripts"), timeout)


def first_pass(sigs: SignatureSet, kind: DumpKind = DumpKind.KERNEL) -> tuple[str, ...]:
    """The dcmds of the first mdb run: the standard set, then what each signature declares it needs.

    Declared commands with an '{address}' wait for a follow-up pass (see follow_ups).
    """
    if kind is DumpKind.PROCESS:
        return PROCESS_DCMDS
    declared = (d.strip() for s in sigs for d in s.dcmds if _ADDRESS_FIELD not in d)
    return tuple(dict.fromkeys([*STANDARD_DCMDS, *declared]))


def follow_ups(hints: Iterable[str], sigs: SignatureSet, done: Sequence[str] = ()) -> tuple[str, ...]:
    """The hints of a first pass that are declared '{address}' dcmds with a concrete address.

    Only a hint of exactly that shape is run (ffffff0449d3a0c0::findstack -v), so nothing but a
    signature's own declared dcmds ever reaches mdb; 'ADDR' placeholders and prose are not run.
    """
    shapes = [re.compile(re.escape(d.strip()).replace(re.escape(_ADDRESS_FIELD), _ADDRESS))
              for s in sigs for d in s.dcmds if _ADDRESS_FIELD in d]
    out = [h.strip() for h in hints if any(p.fullmatch(h.strip()) for p in shapes)]
    return tuple(c for c in dict.fromkeys(out) if c not in done)


def mdb_argv(mdb: str, commands: Sequence[str], dump: DumpFiles, unix: str | None = None,
             vmcore: str | None = None) -> list[str]:
    """The mdb command line: `mdb -e '<commands>' unix.N vmcore.N` (or the process core).

    Each dcmd is preceded by `::echo '> dcmd'`, so the output reads as an interactive session with
    a prompt line before each command's output: every section is then recognised by its command
    (::panicinfo and ::cpuinfo -v output has no shape of its own), and the saved transcript shows
    what was run.
    """
    script = "; ".join(f"::echo '> {c}'; {c}" for c in commands)
    targets = [dump.core] if dump.kind is DumpKind.PROCESS else [unix or dump.unix, vmcore or dump.vmcore]
    return [mdb, "-e", script, *(t for t in targets if t)]


def echoed(text: str, commands: Sequence[str]) -> int:
    """How many of `commands` mdb reached, counted by the `> dcmd` lines mdb_argv's script echoes.

    mdb -e reads its script as one string and, after a dcmd it cannot parse or run, discards the
    rest of it (illumos mdb_lex.c, yydiscard): the commands after the last echo never ran.
    """
    n = 0
    for line in text.splitlines():
        if n < len(commands) and line == f"> {commands[n]}":
            n += 1
    return n


def needs_mdb(dump: DumpFiles, commands: Sequence[str], work: str) -> str:
    """The error row of a dump when mdb is not on the PATH: the exact commands that save a transcript."""
    script = "; ".join(commands)
    if dump.kind is DumpKind.PROCESS:
        assert dump.core is not None
        run = shlex.join(["mdb", "-e", script, dump.core])
        return f"needs mdb (illumos); save a transcript with: {run} > {os.path.basename(dump.core)}.txt"
    out = f"dump.{dump.number}.txt"
    if dump.unix and dump.vmcore:
        run = shlex.join(["mdb", "-e", script, dump.unix, dump.vmcore])
        return f"needs mdb (illumos); save a transcript with: {run} > {out}"
    assert dump.vmdump is not None
    n = dump.number
    expand = shlex.join(["savecore", "-f", dump.vmdump, work])
    run = shlex.join(["mdb", "-e", script, os.path.join(work, f"unix.{n}"), os.path.join(work, f"vmcore.{n}")])
    return f"needs mdb (illumos); save a transcript with: {expand} && {run} > {out}"


def savecore(dump: DumpFiles, tools: Tools, key: str) -> tuple[str, str]:
    """Expand a compressed dump with `savecore -f vmdump.N DIR`; the (unix.N, vmcore.N) it wrote.

    DIR is WORK/savecore/<key>, one per dump identity, so an expanded dump is reused by the next run
    and a changed dump gets a fresh directory; a 'complete' marker tells a finished expansion from
    one a timeout cut short. Nothing is written beside the dump. Raises DumpFailure.
    """
    assert dump.vmdump is not None and dump.number is not None
    if tools.savecore is None:
        raise DumpFailure(f"needs savecore (illumos) to expand {os.path.basename(dump.vmdump)}; "
                          f"or expand it yourself: savecore -f {shlex.quote(dump.vmdump)} DIR")
    out = os.path.join(tools.work, "savecore", key.removeprefix("dump:")[:20])
    unix, vmcore, done = (os.path.join(out, n) for n in (f"unix.{dump.number}", f"vmcore.{dump.number}", "complete"))
    if os.path.isfile(done) and os.path.isfile(unix) and os.path.isfile(vmcore):
        return unix, vmcore
    try:
        os.makedirs(out, exist_ok=True)
        for stale in (unix, vmcore, done):
            if os.path.lexists(stale):
                os.unlink(stale)
    except OSError as exc:
        raise DumpFailure(f"savecore failed: cannot prepare {out}: {exc.strerror or exc}") from None
    rc, _stdout, stderr = _run([tools.savecore, "-f", dump.vmdump, out], tools.timeout, "savecore", cwd=out)
    # savecore exits 0 after some refusals ("bad magic number", "dump already processed"): only the
    # files it was to write say whether it worked.
    if rc != 0 or not (os.path.isfile(unix) and os.path.isfile(vmcore)):
        why = _last_line(stderr, "savecore") or f"exit status {rc}"
        if rc == 0:
            why += f" (it wrote no unix.{dump.number} and vmcore.{dump.number})"
        raise DumpFailure(f"savecore failed: {why}")
    with open(done, "w", encoding="utf-8") as f:
        f.write("savecore -f completed\n")
    return unix, vmcore


@dataclass(frozen=True, slots=True)
class MdbRun:
    """What one mdb run printed."""

    argv: tuple[str, ...]
    text: str  # standard output, decoded (invalid UTF-8 replaced)
    note: str | None  # mdb's complaint when it exited non-zero but printed output anyway


def run_mdb(argv: Sequence[str], tools: Tools) -> MdbRun:
    """Run mdb; raises DumpFailure when it cannot run, times out, or prints nothing (could not load the dump)."""
    rc, stdout, stderr = _run(list(argv), tools.timeout, "mdb")
    text = stdout.decode("utf-8", "replace")
    why = _last_line(stderr, "mdb")
    if not text.strip():
        reason = why or (f"exit status {rc}" if rc else "it printed nothing")
        raise DumpFailure(f"mdb could not load the dump: {reason}")
    note = f"mdb exited with status {rc}: {why or 'no message'}" if rc else None
    return MdbRun(tuple(argv), text, note)


def _run(argv: list[str], timeout: float, what: str, cwd: str | None = None) -> tuple[int, bytes, bytes]:
    # Its own session, so a timeout kills whatever the tool started too (only what we started).
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise DumpFailure(f"{what} failed: cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            p.kill()
        p.communicate()
        raise DumpFailure(f"{what} timed out after {timeout:g} s (--mdb-timeout)") from None
    except BaseException:
        # Ctrl-C or a closed pipe in the parent: do not leave the tool running
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    return p.returncode, stdout, stderr


def _last_line(stderr: bytes, tool: str) -> str:
    # The tool's last complaint, without its 'mdb: ' / 'savecore: ' prefix, as one printable line.
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1]
    for prefix in (f"{tool}: ", f"{os.path.basename(tool)}: "):
        last = last.removeprefix(prefix)
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in last)[:300]
