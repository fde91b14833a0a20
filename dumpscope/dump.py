"""The dump model: typed, immutable results of parsing an mdb transcript."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "BAD_TRAP",
    "Cpu",
    "Dump",
    "FmaRecord",
    "Frame",
    "SectionKind",
    "Section",
    "Stack",
    "Status",
    "Thread",
    "Trap",
    "hex_text",
    "thread_label",
    "trap_follows",
]


class SectionKind(StrEnum):
    """What produced a stretch of the transcript."""

    COMMAND = "command"  # a prompt line: '> ::status', '[14]> $C'
    STATUS = "status"  # ::status
    STACK = "stack"  # $C, $c, ::stack (or an unprompted block of frames)
    FINDSTACK = "findstack"  # ::findstack [-v]
    STACKS = "stacks"  # ::stacks
    THREADLIST = "threadlist"  # ::threadlist [-v]
    PANICINFO = "panicinfo"  # ::panicinfo
    CPUINFO = "cpuinfo"  # ::cpuinfo [-v]
    CONSOLE = "console"  # kernel console / ::msgbuf / syslog panic text
    FMA = "fma"  # an FMA panic record (fmdump -V of SUNOS-8000-KL: panicstr, panicstack, ...)
    TRAP = "trap"  # a trap banner and register dump (console, syslog, SPARC, Solaris 11.4 trap data)
    RAW = "raw"  # anything not understood, kept with its line numbers


class Frame(NamedTuple):
    """One stack frame as mdb (or the kernel console) printed it.

    A NamedTuple, like Thread, where the other records are frozen dataclasses: a big transcript has
    hundreds of thousands of frames, and a NamedTuple is built in a fifth of the time (bench/RESULTS.md)."""

    line: int  # 1-based line number in the input where the frame starts
    function: str  # symbol name; for an unresolved frame the address text ('0xfffffffffba436e1')
    module: str | None = None  # 'zfs' from console 'zfs:foo+1a', 'libc.so.1' from 'libc.so.1`foo'
    offset: int | None = None  # byte offset after '+' (None when not printed)
    args: tuple[int, ...] | None = None  # arguments; None when the format has no argument list (::stacks)
    fp: int | None = None  # frame or stack pointer column, when printed

    @property
    def unresolved(self) -> bool:
        """True when mdb could not symbolize the frame and printed a raw address."""
        return self.function.startswith("0x") or _is_hex(self.function)

    @property
    def text(self) -> str:
        """The frame as mdb prints it without the pointer column: 'func+0xoff(args)' (no list for ::stacks)."""
        if self.args is None:
            return self.label
        return f"{self.label}({', '.join(f'{a:x}' for a in self.args)})"

    @property
    def label(self) -> str:
        """The frame as 'func+0xoff', the way mdb names a location."""
        mod = f"{self.module}`" if self.module else ""
        if self.offset is None:
            return f"{mod}{self.function}"
        off = str(self.offset) if self.offset < 10 else hex(self.offset)
        return f"{mod}{self.function}+{off}"


_HEX = re.compile(r"[0-9a-fA-F]{8,}")


def hex_text(value: int | None) -> str | None:
    """A number the way mdb prints addresses and arguments: bare lowercase hex ('ffffff03eb144000'), so
    it can be pasted back into mdb; None stays None. The one hex formatter of every output."""
    return None if value is None else f"{value:x}"


def thread_label(address: int, description: str | None) -> str:
    """A thread as ::findstack names it: 'thread fffffe55d37b8080 (bhyve/1 [vcpu 0])'.

    `description` is the thread's '(bhyve/1 [vcpu 0])' text, with or without the parentheses the
    parser may have kept; none gives the bare 'thread ADDR'.
    """
    if not description:
        return f"thread {hex_text(address)}"
    return f"thread {hex_text(address)} {description if description.startswith('(') else f'({description})'}"


def _is_hex(text: str) -> bool:
    return _HEX.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Stack:
    """A standalone stack: the output of $C, $c, ::stack, or a console traceback."""

    line: int  # line of the first frame
    frames: tuple[Frame, ...]  # innermost (the panic call) first
    command: str | None = None  # '$C', '$c', '::stack', or None when no prompt was seen
    console: bool = False  # True for a kernel console / msgbuf / syslog traceback
    # Oracle Solaris 11.4 typed frames, one per frame when printed: (return type, argument types);
    # the frames' args keep the values
    types: tuple[tuple[str | None, tuple[str | None, ...]], ...] = ()
    trap_frame: int | None = None  # index of the frame marked '<trap>' (Solaris 11.4)


class Thread(NamedTuple):
    """A kernel thread seen in ::findstack, ::stacks or ::threadlist output.

    A NamedTuple like Frame: ::stacks gives a thread every few lines, and a frozen dataclass of 14
    fields is built in three times the time (a bulk transcript's triage: 4.5% of its instructions,
    bench/RESULTS.md). Its field `count` hides tuple.count, which nothing calls on a Thread."""

    line: int  # line of the header that introduced the thread
    kind: SectionKind  # FINDSTACK, STACKS or THREADLIST
    address: int | None  # kthread_t address
    frames: tuple[Frame, ...]  # innermost first (as printed)
    description: str | None = None  # '(bhyve/1 [vcpu 0])' text, 'CMD:'/'THREAD:'/'TASKQ:' text
    state: str | None = None  # ::stacks STATE ('SLEEP', 'PANIC', ...)
    sobj: str | None = None  # ::stacks SOBJ ('CV', 'SEMA', ...)
    count: int | None = None  # type: ignore[assignment]  # ::stacks: threads sharing this stack (see above)
    stack_pointer: int | None = None  # ::findstack 'stack pointer for thread ...: SP'
    proc: int | None = None  # ::threadlist PROC
    lwp: int | None = None  # ::threadlist LWP
    wchan: int | None = None  # ::threadlist -v WCHAN
    failure: str | None = None  # '<thread not in memory>' and other stack failures
    is_panic: bool = False  # the panicking thread (linked from ::panicinfo, console or STATE PANIC)

    @property
    def has_args(self) -> bool:
        """True when at least one frame prints an argument list (::findstack -v, not ::stacks)."""
        return any(f.args for f in self.frames)


@dataclass(frozen=True, slots=True)
class Status:
    """The ::status block."""

    line: int  # first line of the block
    target: str | None = None  # 'crash dump', 'live kernel', 'core file', 'domain crash dump', ...
    dump_file: str | None = None  # vmcore.22
    bits: int | None = None  # 64 or 32
    host: str | None = None  # nodename
    release: str | None = None  # '5.11'
    version: str | None = None  # 'joyent_20180216T202957Z' (the platform build)
    machine: str | None = None  # 'i86pc'
    image_uuid: str | None = None
    panic_message: str | None = None  # joined when mdb or a mailer wrapped it
    dump_content: str | None = None
    build_version: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # 'key: value' lines not known by name, in order
    lines: tuple[tuple[str, int], ...] = ()  # field name -> line number it came from

    def line_of(self, name: str) -> int | None:
        """Line number of a status field ('panic_message', 'version', ...), or None."""
        for key, line in self.lines:
            if key == name:
                return line
        return None

    @property
    def is_kernel(self) -> bool:
        """False for a process core ('debugging core file of ...')."""
        return self.target is None or "core" not in self.target and "PID" not in self.target


@dataclass(frozen=True, slots=True)
class Cpu:
    """One ::cpuinfo row."""

    line: int
    cpu_id: int
    address: int
    flags: int
    thread: int | None
    proc: str | None


# The panic message of a trap, a Trap's fields in the console's words (uts/i86pc/os/trap.c die()):
# 'BAD TRAP: type=e (#pf Page fault) rp=ffffff003d46c750 addr=4 ...'. Here, beside the record it
# fills, because both the parser (records) and the bucket's title read it, and both import this module.
BAD_TRAP = re.compile(
    r"BAD TRAP: type=(?P<type>[0-9a-fA-F]+)(?: \((?P<mn>#\w+) (?P<name>[^)]*)\))?"
    r"(?: rp=(?P<rp>[0-9a-fA-F]+))?(?: addr=(?P<addr>[0-9a-fA-F]+))?"
)


# How far a trap banner may start after the panic message it belongs to: the blank and process lines
# between ('panic[cpu0]/thread=...: BAD TRAP: ...', '', 'sched:', '#pf Page fault'; trap.c die()).
_BANNER_GAP = 4


def trap_follows(panic_line: int, first: int, end: int) -> bool:
    """True when the trap record on lines `first`-`end` belongs to the panic message on `panic_line`:
    it holds that line or the one before, or starts at most a few lines after it. The one window by
    which the parser pairs a trap banner with its console panic line and Dump.trap picks the
    panic's trap record."""
    return first <= panic_line + _BANNER_GAP and end >= panic_line - 1


@dataclass(frozen=True, slots=True)
class Trap:
    """A trap record: the kernel's trap banner and register dump, or SPARC trap-level registers."""

    line: int  # first line of the record
    end: int  # last line of the record
    type: str | None = None  # trap type as printed, hex without 0x: 'e', 'd', '8', '31' (SPARC), '64'
    mnemonic: str | None = None  # x86 mnemonic: '#pf', '#gp', '#df', '#ud'
    name: str | None = None  # 'Page fault', 'General protection', 'data access MMU miss'
    process: str | None = None  # the process line of the banner ('ksh93:', 'mount: trap type = ...')
    pid: int | None = None
    pc: int | None = None  # the trapping pc
    symbol: str | None = None  # the pc's symbol when printed ('mvfs:mfs_getview+0xe0', Solaris 11.4)
    sp: int | None = None
    addr: int | None = None  # the faulting address ('addr=', 'Bad kernel fault at addr=')
    rp: int | None = None  # the trap's register pointer ('rp=' of the message or banner)
    cpu: int | None = None  # from the panic line that goes with the banner
    level: int | None = None  # SPARC trap level ('TL=')
    lines: tuple[tuple[str, int], ...] = ()  # field name -> line it came from


@dataclass(frozen=True, slots=True)
class FmaRecord:
    """An FMA panic record (fmdump -V/-Vp/-Vu of a SUNOS-8000-KL event, or the same members as JSON)."""

    line: int  # first line that is part of the record
    end: int  # last line
    event: str | None = None  # 'ireport.os.sunos.panic.dump_available', 'defect.sunos.kernel.panic'
    members: tuple[tuple[str, str, int], ...] = ()  # (member as printed, value, line): panicstr, dump-dir, ...

    def get(self, name: str) -> str | None:
        """A member's value as printed ('dump-dir' -> '/var/crash/11'), or None."""
        return next((value for key, value, _ in self.members if key == name), None)

    def line_of(self, name: str) -> int | None:
        """The line a member was printed on, or None."""
        return next((line for key, _, line in self.members if key == name), None)


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch of the transcript and what the parser took it to be."""

    kind: SectionKind
    start: int  # first line (1-based, inclusive)
    end: int  # last line (inclusive)
    command: str | None = None  # the mdb command that produced it, when a prompt was seen


@dataclass(frozen=True, slots=True)
class Dump:
    """Everything understood from one transcript."""

    status: Status | None = None
    panic_message: str | None = None  # ::status, else ::panicinfo, else the console panic line
    panic_message_line: int | None = None
    panic_stack: Stack | None = None  # the first $C/$c/::stack, else the console traceback
    stacks: tuple[Stack, ...] = ()  # every standalone stack, panic_stack included, in order
    threads: tuple[Thread, ...] = ()  # ::findstack/::stacks/::threadlist threads, one per address
    panic_thread_address: int | None = None  # from ::panicinfo, console 'panic[cpuN]/thread=', or PANIC state
    panic_cpu: int | None = None
    panicinfo: tuple[tuple[str, str], ...] = ()  # ::panicinfo name/value pairs
    cpus: tuple[Cpu, ...] = ()
    sections: tuple[Section, ...] = ()  # every section in input order, raw ones included
    notes: tuple[str, ...] = ()  # why the parse is degraded, what was skipped
    line_count: int = 0  # lines in the input
    traps: tuple[Trap, ...] = ()  # trap records in input order
    fma: FmaRecord | None = None  # the FMA panic record, when the transcript is (or holds) one

    @property
    def trap(self) -> Trap | None:
        """The trap record of the panic: the one whose banner follows the panic message, else the first."""
        if not self.traps:
            return None
        at = self.panic_message_line
        if at is not None:
            after = [t for t in self.traps if trap_follows(at, t.line, t.end)]
            if after:
                return after[-1]
        return self.traps[0]

    @property
    def panic_thread(self) -> Thread | None:
        """The thread marked as panicking, if the transcript shows it."""
        for t in self.threads:
            if t.is_panic:
                return t
        return None

    @property
    def platform(self) -> str | None:
        """The platform build string from ::status (e.g. 'joyent_20180216T202957Z')."""
        return self.status.version if self.status else None

    @property
    def raw_sections(self) -> tuple[Section, ...]:
        """Sections the parser did not understand."""
        return tuple(s for s in self.sections if s.kind is SectionKind.RAW)

    @property
    def partial(self) -> bool:
        """True when the parse is degraded (see notes)."""
        return bool(self.notes)

    @property
    def empty(self) -> bool:
        """True when nothing from mdb or the console was found: no section, prompt or banner at all."""
        return not (self.status or self.stacks or self.threads or self.panic_message or self.panicinfo
                    or self.cpus or self.traps or self.fma
                    or any(s.kind is SectionKind.COMMAND for s in self.sections))
