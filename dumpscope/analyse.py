"""Analyse one input, a saved transcript or a crash dump, into a Verdict: the unit of work of any worker."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from dumpscope.crashdir import DumpFiles, DumpKind, dump_files, identity
from dumpscope.mdb import DumpFailure, Tools, echoed, first_pass, follow_ups, mdb_argv, needs_mdb, run_mdb, savecore
from dumpscope import signatures as _signatures
from dumpscope.signatures import SignatureSet
from dumpscope.sources import DEFAULT_MAX_BYTES, read_source
from dumpscope.verdict import Verdict

__all__ = ["DEFAULT_OPTIONS", "Options", "analyse", "analyse_dump", "default_work", "dump_verdict", "transcript_path"]


def default_work() -> str:
    """The default --work directory: $XDG_CACHE_HOME/dumpscope/work (~/.cache/dumpscope/work)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dumpscope", "work")


@dataclass(frozen=True, slots=True)
class Options:
    """Everything `analyse` needs besides the input's name: small, frozen and picklable, so the
    same call runs in-process, in a pool worker or on a Dask worker."""

    site: tuple[str, ...] = ()  # site signature directories (--signatures, $DUMPSCOPE_SIGNATURES)
    tools: Tools | None = None  # savecore and mdb; None: looked up on the PATH, --work at its default
    max_bytes: int = DEFAULT_MAX_BYTES  # a transcript's size limit (sources.read_source)

    def signatures(self) -> SignatureSet:
        """The signature set these options name (loaded once per process)."""
        return _signatures.signature_set(self.site)  # looked up at call time (tests replace it)

    def resolved_tools(self) -> Tools:
        """`tools`, or mdb and savecore from the PATH with the default work directory."""
        return self.tools if self.tools is not None else Tools.find(None, None, default_work(), None)


DEFAULT_OPTIONS = Options()


def analyse(name: str, options: Options = DEFAULT_OPTIONS) -> Verdict:
    """The verdict of one input named by the user: a transcript file, '-', or a dump file.

    A dump file (savecore's unix.N, vmcore.N or vmdump.N, or a process core) is analysed by running
    mdb on it (analyse_dump); anything else is read as a transcript and triaged. Never raises: a bad
    input or a failing tool becomes a `status='error'` Verdict with its reason.
    """
    from dumpscope.bulk import triage_source  # bulk runs many of these; it imports this module

    dump = dump_files(name) if name != "-" else None
    if dump is not None:
        return analyse_dump(dump, options)
    src = read_source(name, max_bytes=options.max_bytes, digest=False)
    return triage_source(src, options.signatures())


def analyse_dump(dump: DumpFiles, options: Options = DEFAULT_OPTIONS) -> Verdict:
    """The verdict of a crash dump, from mdb run on it; never raises (see dump_verdict)."""
    return dump_verdict(dump, options)[0]


def dump_verdict(dump: DumpFiles, options: Options, key: str | None = None) -> tuple[Verdict, bool]:
    """(verdict, cacheable) of a crash dump; `key` is its crashdir.identity when the caller has it
    already (it stats every file of the dump and reads its header).

    Runs `savecore -f vmdump.N DIR` first when only the compressed dump exists, then `mdb -e` with
    the first-pass dcmds (mdb.first_pass), triages what mdb printed, and when the verdict's hints
    name a declared follow-up dcmd with a concrete address (the 12476 remover's
    `ADDR::findstack -v`), runs those too and triages both passes' output together. What mdb
    printed is saved under the tools' transcript directory, and a later call on the same dump
    re-reads it instead of starting mdb (running only dcmds not run yet). A verdict is cacheable when it says
    something about the dump itself (a triage, or mdb unable to load it), not about this machine
    (no mdb, a timeout, savecore out of space).
    """
    try:
        return _dump_verdict(dump, options, key)
    except Exception as exc:  # noqa: BLE001 - one bad dump must not stop the others
        return _error(dump, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]), False


def _dump_verdict(dump: DumpFiles, options: Options, key: str | None) -> tuple[Verdict, bool]:
    if dump.problem is not None:
        return _error(dump, dump.problem), False
    sigs = options.signatures()
    tools = options.resolved_tools()
    commands = first_pass(sigs, dump.kind)
    if tools.mdb is None:
        return _error(dump, needs_mdb(dump, commands, tools.work)), False
    # One analysis of a dump at a time (a directory given twice, two runs at once): the second waits
    # and then reads what the first saved, rather than expanding and reading the dump again.
    with _locked(os.path.join(tools.work, "runs", os.path.basename(transcript_path(dump, tools)) + ".lock")):
        return _analysed(dump, sigs, tools, commands, key or identity(dump))


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    # fcntl.lockf (POSIX record locks, illumos and Linux alike); without a writable work directory,
    # or without fcntl, the analysis runs unlocked.
    try:
        import fcntl

        os.makedirs(os.path.dirname(path), exist_ok=True)
        f = open(path, "a")  # noqa: SIM115 - held open for the lock's lifetime
    except (ImportError, OSError):
        yield
        return
    with f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: run unlocked
        yield


def _analysed(dump: DumpFiles, sigs: SignatureSet, tools: Tools, commands: Sequence[str],
              key: str) -> tuple[Verdict, bool]:
    session = _Session(dump, tools, key)
    if session.failed:
        return _error(dump, session.failed, (session.reused(),)), True
    notes: list[str] = []
    try:
        session.run(commands, notes)
    except DumpFailure as exc:
        # mdb unable to read the dump is a fact about the dump, kept with its record; anything else may pass
        lasting = str(exc).startswith("mdb could not load the dump")
        if lasting:
            session.save(str(exc))
        return _error(dump, str(exc)), lasting
    verdict = _triage(session.text, dump, sigs)
    more = follow_ups((h.command for h in verdict.hints), sigs, session.done)
    if more and verdict.status == "ok":
        try:
            session.run(more, notes)
        except DumpFailure as exc:
            notes.append(f"follow-up pass ({'; '.join(more)}) failed: {exc}")
        else:
            before = verdict.confidence
            verdict = _triage(session.text, dump, sigs)
            was = before.value if before is not None else "no match"
            now = verdict.confidence.value if verdict.confidence is not None else "no match"
            notes.append(f"follow-up pass ran {'; '.join(more)}: {was} -> {now}")
    notes.append(session.save() if session.ran else session.reused())
    if verdict.status != "ok":
        reason = f"mdb printed nothing dumpscope can read ({verdict.error})"
        return _error(dump, reason, tuple(notes)), True
    if dump.kind is DumpKind.PROCESS:
        notes.insert(0, "a user process core, not a kernel crash dump")
        verdict = replace(verdict, title=f"user process core: {verdict.title}")
    return replace(verdict, notes=verdict.notes + tuple(notes)), True


class _Session:
    """What mdb printed for one dump so far, kept in the work directory between runs.

    The transcript is saved (transcript_path) with a record beside it in WORK/runs/: the dump's
    identity and the dcmds whose output the transcript holds, or the reason mdb could not load the
    dump. A later run on the same dump reads them back and runs only the dcmds not run yet (none,
    unless a new signature declares more), so the saved transcripts are what keeps mdb from being
    started twice on one dump, with or without --cache.
    """

    def __init__(self, dump: DumpFiles, tools: Tools, key: str) -> None:
        self.dump, self.tools, self.key = dump, tools, key
        self.path = transcript_path(dump, tools)
        self.record = os.path.join(tools.work, "runs", os.path.basename(self.path) + ".json")
        self.text = ""
        self.done: list[str] = []
        self.failed = ""
        self.ran = False
        self._targets: tuple[str | None, str | None] | None = None
        self._load()

    def _load(self) -> None:
        try:
            with open(self.record, encoding="utf-8") as f:
                rec = json.load(f)
            if not isinstance(rec, dict) or rec.get("identity") != self.key:
                return
            if rec.get("failed"):
                self.failed = str(rec["failed"])
                return
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, ValueError):
            return  # no record, or a damaged one: mdb runs again
        done = rec.get("commands")
        if isinstance(done, list) and all(isinstance(c, str) for c in done):
            self.text, self.done = text, done

    def run(self, commands: Sequence[str], notes: list[str]) -> None:
        """Run the dcmds not run on this dump yet, adding their output to the transcript."""
        todo = [c for c in commands if c not in self.done]
        if not todo:
            return
        assert self.tools.mdb is not None
        if self._targets is None:
            unix, vmcore = self.dump.unix, self.dump.vmcore
            if self.dump.kind is DumpKind.KERNEL and not (unix and vmcore):
                unix, vmcore = savecore(self.dump, self.tools, self.key)
                notes.append(f"expanded by savecore into {os.path.dirname(vmcore)}")
            self._targets = (unix, vmcore)
        while todo:
            out = run_mdb(mdb_argv(self.tools.mdb, todo, self.dump, *self._targets), self.tools)
            if out.note:
                notes.append(out.note)
            self.text += ("" if not self.text or self.text.endswith("\n") else "\n") + out.text
            self.ran = True
            # mdb -e drops the rest of its script after a dcmd it cannot run (an unknown dcmd, a
            # module not loaded): the dcmds whose echo never came are run again without it.
            reached = echoed(out.text, todo)
            self.done.extend(todo[:reached] or todo)
            if 0 < reached < len(todo):
                notes.append(f"mdb stopped after {todo[reached - 1]}; ran again for {'; '.join(todo[reached:])}")
            todo = todo[reached:] if reached else []

    def save(self, failed: str = "") -> str:
        """Write the transcript and its record; the note that says where (or why not)."""
        try:
            if not failed:
                os.makedirs(self.tools.transcripts, exist_ok=True)
                with open(self.path, "w", encoding="utf-8") as f:
                    f.write(self.text)
            os.makedirs(os.path.dirname(self.record), exist_ok=True)
            with open(self.record, "w", encoding="utf-8") as f:
                json.dump({"identity": self.key, "dump": self.dump.name, "commands": self.done, "failed": failed}, f)
        except OSError as exc:
            return f"could not save the mdb transcript to {self.path}: {exc.strerror or exc}"
        return f"mdb transcript saved as {self.path}"

    def reused(self) -> str:
        """The note of a verdict made from an earlier run's transcript, without starting mdb."""
        if self.failed:
            return f"as mdb found on an earlier run (recorded in {self.record}); no mdb run"
        return f"mdb transcript of an earlier run reused: {self.path}; no mdb run"


def _triage(text: str, dump: DumpFiles, sigs: SignatureSet) -> Verdict:
    from dumpscope.triage import triage_text

    return triage_text(text, dump.name, sigs)


def transcript_path(dump: DumpFiles, tools: Tools) -> str:
    """Where the mdb transcript of a dump is saved: one file per dump, named for where the dump is
    (/var/crash/volatile/vmcore.0 -> TRANSCRIPTS/var-crash-volatile.dump.0.txt)."""
    where = os.path.abspath(os.path.dirname(dump.name)).strip(os.sep).replace(os.sep, "-") or "root"
    leaf = f"dump.{dump.number}" if dump.kind is DumpKind.KERNEL else os.path.basename(dump.name)
    return os.path.join(tools.transcripts, f"{where}.{leaf}.txt")


def _error(dump: DumpFiles, reason: str, notes: tuple[str, ...] = ()) -> Verdict:
    return Verdict(source=dump.name, status="error", error=reason, bucket="", title=f"error: {reason}", notes=notes)
