"""Parses transcript text into the dump model: Lark's LALR parse with the line lexer, the transformer
that builds the model's values as the parser reduces, and the linking pass."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from lark import Token

from dumpscope.dump import Cpu, Dump, Frame, Section, SectionKind, Stack, Status, Thread
from dumpscope.flattened import flattened_lines
from dumpscope.grammar import transcript_parser
from dumpscope.lexer import LexInput, LineTok, clean_line, dec_value, hex_value, needs_cleaning, split_lines
from dumpscope.records import fma_record, panicstack_frames, trap_records, typed_stack

__all__ = ["TRANSFORMER", "parse_transcript"]

_DEBUGGING = (
    # debugging crash dump vmcore.22 (64-bit) from dent
    re.compile(r"(?P<target>(?:domain )?crash dump) (?P<file>\S+) \((?P<bits>\d+)-bit\) from (?P<host>\S+)"),
    # debugging live kernel (64-bit) on smartos5
    re.compile(r"(?P<target>live kernel) \((?P<bits>\d+)-bit\) on (?P<host>\S+)"),
    # debugging core file of bhyve (64-bit) from bhyvetest
    re.compile(r"(?P<target>core file) of (?P<file>\S+) \((?P<bits>\d+)-bit\) from (?P<host>\S+)"),
    re.compile(r"(?P<target>PID \d+|defunct process|core file|\S+ file)(?: \((?P<bits>\d+)-bit\))?"),
)
_OS = re.compile(r"(?P<release>\S+) (?P<version>\S+)(?: \((?P<machine>[^)]*)\))?")
_STACK_COMMANDS = re.compile(r"^(?:(?P<addr>[0-9a-fA-F]+|<\w+)?\s*(?P<cmd>\$[cC]\d*|::stack\b|::stackregs\b))")

# Lines read as part of a stack or a thread: never a bare panic message
_STACK_LINES = {"FRAME", "CONSOLE_FRAME", "STACKS_FRAME", "FINDSTACK_HEAD", "BRACKET"}
_BARE_MESSAGE = re.compile(r"^[A-Za-z][\w ,:=()'\"/.-]*[A-Za-z0-9)]$")

_FIELD_NAMES = {
    "operating system": "operating_system",
    "image uuid": "image_uuid",
    "panic message": "panic_message",
    "dump content": "dump_content",
    "build version": "build_version",
}


# -- intermediate items the transformer builds; the linking pass turns them into the model -------


class _Item(NamedTuple):
    # a NamedTuple, as Frame is: a transcript's items are built by the dozen, and a frozen dataclass
    # costs twice the time to build
    kind: SectionKind
    start: int
    end: int
    value: Any = None  # Status | Stack | tuple[Thread, ...] | tuple[Cpu, ...] | dict | str | None


def _without_escaped_newlines(value: str) -> str:
    """`value` without the escaped newlines ('\\n', '\\x0a') it ends with.

    Read from the end in plain code: re.sub(r"(?:\\x0a|\\n)+$", ...) would try the repeat at every
    position of a run of them and read the run to its end each time (quadratic: seconds on a 64 KiB
    line). The two escapes end in different letters, so from the end there is one way to take them.
    """
    end = len(value)
    while True:
        if value.endswith("\\n", 0, end):
            end -= 2
        elif value.endswith("\\x0a", 0, end):
            end -= 4
        else:
            return value[:end]


def _ends(x: Any) -> tuple[int, int]:
    v = x.value if isinstance(x, Token) else x
    if isinstance(v, LineTok):
        return v.line, v.line
    if isinstance(v, _Item):
        return v.start, v.end
    if type(v) is tuple and v:  # a run of Frames or of raw LineToks
        return v[0].line, v[-1].line
    if isinstance(v, Frame):  # a BRACKET line's
        return v.line, v.line
    if isinstance(v, Thread):  # a findstack_thread: its header to its last frame
        return v.line, v.frames[-1].line if v.frames else v.line
    return 0, 0


def _span(children: list[Any]) -> tuple[int, int]:
    # children arrive in input order: the span runs from the first one's start to the last one's end
    if not children:
        return 0, 0
    return _ends(children[0])[0], _ends(children[-1])[1]


class _Build:
    """Builds values bottom-up as the LALR parser reduces: one method per rule, which Lark calls as it
    reduces (no tree is kept). Tokens carry the lexer's payload: a LineTok, a BRACKET line's Frame, or
    the tuple of a run (Frames, or LineToks)."""

    def start(self, items: list[_Item]) -> list[_Item]:
        return items

    def command(self, c: list[Token]) -> _Item:
        tok = c[0]
        lt: LineTok = tok.value
        if tok.type == "PROMPT":
            return _Item(SectionKind.COMMAND, lt.line, lt.line, (lt.groups["cmd"] or "").strip())
        if tok.type == "SHELL_MDB":
            return _Item(SectionKind.COMMAND, lt.line, lt.line, None)
        return _Item(SectionKind.COMMAND, lt.line, lt.line, "")  # banner: not a command

    def raw(self, c: list[Token]) -> _Item:
        tok = c[0]
        v = tok.value
        if type(v) is tuple:  # a run of raw lines, or of stray ::stacks-style frames (not a BRACKET's Frame)
            return _Item(SectionKind.RAW, v[0].line, v[-1].line, None)
        return _Item(SectionKind.RAW, v.line, v.line, tok.type)

    def status(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        fields: dict[str, Any] = {}
        lines: list[tuple[str, int]] = []
        extra: list[tuple[str, str]] = []
        for tok in c:
            lt: LineTok = tok.value
            g = lt.groups
            if tok.type == "STATUS_HEAD":
                what = g["what"]
                for rx in _DEBUGGING:
                    m = rx.match(what)
                    if m:
                        d = m.groupdict()
                        fields["target"] = d.get("target")
                        fields["dump_file"] = d.get("file")
                        fields["bits"] = dec_value(d.get("bits"))
                        fields["host"] = d.get("host")
                        break
                else:
                    fields["target"] = what
                lines.append(("debugging", lt.line))
            elif tok.type == "STATUS_FIELD":
                key, value = g["key"], (g["value"] or "").strip()
                name = _FIELD_NAMES.get(key)
                if key == "operating system":
                    m = _OS.match(value)
                    if m:
                        fields.update(release=m["release"], version=m["version"], machine=m["machine"])
                    lines.append(("version", lt.line))
                elif name and name not in fields:
                    fields[name] = value
                    if name == "panic_message" and g.get("text_line"):
                        lines.append(("panic_message", int(g["text_line"])))  # wrapped: text starts here
                elif key == "upanic message" and "panic_message" not in fields:
                    # a process core's panic string; mdb shows its trailing newline escaped
                    fields["panic_message"] = _without_escaped_newlines(value)
                    name = "panic_message"
                else:
                    extra.append((key, value))
                lines.append((name or key.replace(" ", "_"), lt.line))
            elif tok.type == "STATUS_NOTE":
                extra.append(("dump content note", g["note"]))
                lines.append(("dump_content_note", lt.line))
            else:  # KEYVAL inside the block
                extra.append((g["key"], (g["value"] or "").strip()))
                lines.append((g["key"].replace(" ", "_"), lt.line))
        fields.pop("operating_system", None)
        status = Status(line=start, extra=tuple(extra), lines=tuple(lines), **fields)
        return _Item(SectionKind.STATUS, start, end, status)

    def stack(self, c: list[Token]) -> _Item:
        frames: tuple[Frame, ...] = c[0].value
        return _Item(SectionKind.STACK, frames[0].line, frames[-1].line, Stack(frames[0].line, frames))

    def console_stack(self, c: list[Token]) -> _Item:
        frames: tuple[Frame, ...] = c[0].value
        st = Stack(frames[0].line, frames, command=None, console=True)
        return _Item(SectionKind.CONSOLE, frames[0].line, frames[-1].line, st)

    def findstack_thread(self, c: list[Token]) -> Thread:
        # the header line, then the bracket line (the saved pc: the innermost frame) and the frames
        head: LineTok = c[0].value
        frames: tuple[Frame, ...] = ()
        for tok in c[1:]:
            frames += (tok.value,) if tok.type == "BRACKET" else tok.value
        g = head.groups
        desc = g["desc"]
        if g["free"]:
            desc = f"{desc} (TS_FREE)" if desc else "TS_FREE"
        # addr and sp are hex by the terminal's regex
        return _thread(head.line, SectionKind.FINDSTACK, hex_value(g["addr"]), frames, description=desc,
                       stack_pointer=hex_value(g["sp"]))

    def findstack(self, c: list[Thread]) -> _Item:
        last = c[-1]
        # the last thread's last frame ends the section (its header line when it has none)
        return _Item(SectionKind.FINDSTACK, c[0].line, last.frames[-1].line if last.frames else last.line, tuple(c))

    def stacks_group(self, c: list[Token]) -> _Item:
        heads: tuple[LineTok, ...] = c[0].value
        frames: tuple[Frame, ...] = ()
        failure = None
        end = heads[-1].line
        for tok in c[1:]:
            if tok.type == "STACKS_FRAME":
                frames = tok.value
                end = frames[-1].line
            else:
                failure = tok.value.groups["fail"]
                end = tok.value.line
        threads = []
        for head in heads:  # every member line of the group has the group's stack
            g = head.groups
            count, state = g["count"], g["state"]
            threads.append(_thread(head.line, SectionKind.STACKS, int(g["addr"], 16), frames, state=state,
                                   sobj=g["sobj"], count=dec_value(count), failure=failure,
                                   is_panic=state == "PANIC"))
        return _Item(SectionKind.STACKS, heads[0].line, end, tuple(threads))

    def stacks(self, c: list[Any]) -> _Item:
        return self._collect(SectionKind.STACKS, c)

    def threadlist_entry(self, c: list[Token]) -> _Item:
        row: LineTok = c[0].value
        g = row.groups
        start, end = _span(c)
        if c[0].type == "THREADLIST_BRIEF":
            brief = _thread(row.line, SectionKind.THREADLIST, hex_value(g["addr"]), (), description=g["desc"],
                            proc=hex_value(g["proc"]), lwp=hex_value(g["lwp"]))
            return _Item(SectionKind.THREADLIST, start, end, (brief,))
        desc = None
        t: Thread | None = None
        for child in c[1:]:
            if isinstance(child, Thread):  # the entry's findstack_thread
                t = child
            else:  # THREADLIST_PC
                pc = child.value.groups
                if pc.get("desc"):
                    desc = f"{pc['what']}: {pc['desc']}" if pc["what"] != "CMD" else pc["desc"]
        proc, lwp, wchan = hex_value(g["proc"]), hex_value(g["lwp"]), hex_value(g["wchan"])
        if t is not None:
            t = t._replace(line=row.line, kind=SectionKind.THREADLIST, description=t.description or desc,
                        proc=proc, lwp=lwp, wchan=wchan)
        else:
            t = _thread(row.line, SectionKind.THREADLIST, hex_value(g["addr"]), (), description=desc, proc=proc,
                        lwp=lwp, wchan=wchan)
        return _Item(SectionKind.THREADLIST, start, end, (t,))

    def threadlist(self, c: list[Any]) -> _Item:
        return self._collect(SectionKind.THREADLIST, c)

    def _collect(self, kind: SectionKind, c: list[Any]) -> _Item:
        threads: list[Thread] = []
        for x in c:
            if isinstance(x, _Item):
                threads.extend(x.value)
        start, end = _span(c)
        return _Item(kind, start, end, tuple(threads))

    def panicinfo(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        # (the name group holds the blanks that pad the name to column 16: see grammars/panicinfo.lark)
        fields = tuple((t.value.groups["name"].lstrip(" "), t.value.groups["value"]) for t in c)
        return _Item(SectionKind.PANICINFO, start, end, fields)

    def cpuinfo(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        cpus = []
        for tok in c:
            if tok.type == "CPUINFO_ROW":
                g = tok.value.groups
                cpu_id, flags = dec_value(g["id"]), hex_value(g["flg"])
                if cpu_id is None or flags is None:
                    continue  # numbers of dozens of digits: not a row mdb printed
                cpus.append(Cpu(tok.value.line, cpu_id, int(g["addr"], 16), flags, hex_value(g["thread"]),
                                (g["proc"] or None)))
        return _Item(SectionKind.CPUINFO, start, end, tuple(cpus))

    def console_panic(self, c: list[Token]) -> _Item:
        lt: LineTok = c[0].value
        g = lt.groups
        info = {"message": g.get("msg") or None, "cpu": g.get("cpu"), "thread": g.get("thread"),
                "type": c[0].type, "line": lt.line,
                "text_line": dec_value(g.get("text_line")) or lt.line}
        return _Item(SectionKind.CONSOLE, lt.line, lt.line, info)

    def typed(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        return _Item(SectionKind.STACK, start, end, typed_stack([tok.value for tok in c]))

    def fma(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        return _Item(SectionKind.FMA, start, end, tuple((tok.type, tok.value) for tok in c))

    def trap(self, c: list[Token]) -> _Item:
        start, end = _span(c)
        return _Item(SectionKind.TRAP, start, end, tuple((tok.type, tok.value) for tok in c))


# The transformer the parser applies as it reduces (grammar.transcript_parser saves the parser with it).
TRANSFORMER = _Build()


def _thread(line: int, kind: SectionKind, address: int | None, frames: tuple[Frame, ...], *,
            description: str | None = None, state: str | None = None, sobj: str | None = None,
            count: int | None = None, stack_pointer: int | None = None, proc: int | None = None,
            lwp: int | None = None, wchan: int | None = None, failure: str | None = None,
            is_panic: bool = False) -> Thread:
    """A Thread: every thread the parser reads is built here (as every frame is in lexer._frame)."""
    return Thread(line, kind, address, frames, description, state, sobj, count, stack_pointer, proc, lwp, wchan,
                  failure, is_panic)


def parse_transcript(text: str, name: str = "<input>") -> Dump:
    """Parse the text of an mdb session (or an excerpt, or a paste of one) into a Dump.

    Never raises for odd input: what is not understood is kept as raw sections, and a degraded
    parse carries notes saying why. `name` is only used in notes.
    """
    lines = split_lines(text)
    if needs_cleaning(text):  # most mdb output needs none of the paste clean-up
        lines = [clean_line(line) for line in lines]
    flat = flattened_lines(lines)
    data = LexInput(lines)
    # the transformer's start method returns the items: Lark's annotation says a Tree, as without one
    items: list[_Item] = transcript_parser(TRANSFORMER).parse(data)  # type: ignore[assignment]
    dump = _link(items, data, bool(text) and not text.endswith("\n"))
    return _with_flattened(dump, flat, name) if flat else dump


def _with_flattened(dump: Dump, flat: list[tuple[int, list[str]]], name: str) -> Dump:
    # Lines that hold a whole web-flattened block: each is parsed as the lines it came from, and what
    # the rest of the transcript lacks (::status, message, stacks, threads) is taken from it, every
    # line number being the flattened line's.
    notes = list(dump.notes)
    for n, pieces in flat:
        sub = parse_transcript("\n".join(pieces), name)
        status = replace(sub.status, line=n, lines=tuple((k, n) for k, _ in sub.status.lines)) \
            if sub.status is not None else None
        stacks = tuple(_moved_stack(st, n) for st in sub.stacks)
        threads = tuple(t._replace(line=n, frames=_moved(t.frames, n)) for t in sub.threads)
        notes.append(f"line {n}: a flattened paste ({len(pieces)} lines run together, newlines lost) was "
                     "split into its lines and read")
        # what the whole line was misread as (one long message, a one-line ::status) gives way to its pieces
        misread = dump.panic_message_line == n
        take_message = (dump.panic_message is None or misread) and sub.panic_message is not None
        own_status = dump.status if dump.status is None or dump.status.line != n else None
        dump = replace(
            dump,
            status=own_status or status,
            panic_message=dump.panic_message if not take_message else sub.panic_message,
            panic_message_line=dump.panic_message_line if not take_message else n,
            panic_stack=(dump.panic_stack if dump.panic_stack is not None and not misread else None)
            or (stacks[sub.stacks.index(sub.panic_stack)] if sub.panic_stack in sub.stacks else dump.panic_stack),
            stacks=dump.stacks + stacks,
            threads=dump.threads + threads,
            panic_thread_address=dump.panic_thread_address or sub.panic_thread_address,
            panic_cpu=dump.panic_cpu if dump.panic_cpu is not None else sub.panic_cpu,
            panicinfo=dump.panicinfo or sub.panicinfo,
            traps=dump.traps + tuple(replace(t, line=n, end=n, lines=tuple((k, n) for k, _ in t.lines))
                                     for t in sub.traps),
            fma=dump.fma or sub.fma,
        )
    return replace(dump, notes=tuple(notes))


def _moved(frames: tuple[Frame, ...], line: int) -> tuple[Frame, ...]:
    return tuple(Frame(line, f.function, f.module, f.offset, f.args, f.fp) for f in frames)


def _moved_stack(st: Stack, line: int) -> Stack:
    return replace(st, line=line, frames=_moved(st.frames, line))


def _link(items: list[_Item], data: LexInput, ends_mid_line: bool) -> Dump:
    """Turn the parsed items into a Dump, step by step: sections (commands attached to their output),
    the status block, the panic message, the panic thread and cpu, the panic stack, one thread per
    address, and the notes on what was not understood."""
    found = _Found(notes=list(data.notes))
    _collect(items, data.lines, found)
    status = _status(found)
    fma = fma_record(found.fma, found.notes)
    _join_split_stacks(found.stacks, data.lines)
    msg, msg_line = _panic_message(status, found, data)
    if fma is not None:
        # the record's panicstr and panicstack stand in for mdb output and the console, never over them
        if msg is None and fma.get("panicstr"):
            msg, msg_line = fma.get("panicstr"), fma.line_of("panicstr")
        frames = panicstack_frames(found.fma)
        if frames:
            found.stacks.append(Stack(frames[0].line, frames, console=True))
    panic_thread, panic_cpu = _panic_thread_and_cpu(found)
    threads = _merge_threads(found.threads, panic_thread)
    if panic_thread is None:  # else a ::stacks thread in state PANIC names it
        panic_thread = next((t.address for t in threads if t.is_panic), None)
    _note_raw_text(found, ends_mid_line, len(data.lines))
    return Dump(
        status=status,
        panic_message=msg,
        panic_message_line=msg_line,
        panic_stack=_panic_stack(found),
        stacks=tuple(found.stacks) + tuple(found.thread_stacks),
        threads=tuple(threads),
        panic_thread_address=panic_thread,
        panic_cpu=panic_cpu,
        panicinfo=found.panicinfo,
        cpus=found.cpus,
        sections=tuple(found.sections),
        notes=tuple(found.notes),
        line_count=len(data.lines),
        traps=trap_records(found.traps, found.console),
        fma=fma,
    )


@dataclass(slots=True)
class _Found:
    """What the walk over the parsed items collects, in input order (_collect fills it)."""

    notes: list[str]  # the lexer's notes, then the linking's
    sections: list[Section] = field(default_factory=list)
    stacks: list[Stack] = field(default_factory=list)  # $C, $c, ::stack and console tracebacks
    thread_stacks: list[Stack] = field(default_factory=list)  # ADDR$C: a thread's stack, not the panic stack
    threads: list[Thread] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    panicinfo: tuple[tuple[str, str], ...] = ()  # the first ::panicinfo
    cpus: tuple[Cpu, ...] = ()  # the first ::cpuinfo
    console: list[dict[str, Any]] = field(default_factory=list)  # console panic records (_Build.console_panic)
    fma: list[tuple[str, LineTok]] = field(default_factory=list)  # FMA record lines, (terminal, line)
    traps: list[tuple[tuple[str, LineTok], ...]] = field(default_factory=list)  # one entry per trap section
    raw_lines: int = 0  # lines kept as raw text


def _collect(items: list[_Item], lines: list[str], found: _Found) -> None:
    # Each item becomes a section carrying the command whose output it is (the prompt before it);
    # consecutive raw items become one raw section.
    command: str | None = None
    raw: list[int] = []  # the current raw stretch: [start, end]
    raw_cmd: str | None = None

    def flush_raw() -> None:
        if raw:
            found.sections.append(Section(SectionKind.RAW, raw[0], raw[1], raw_cmd))
            found.raw_lines += raw[1] - raw[0] + 1
            raw.clear()

    for item in items:
        if item.kind is SectionKind.RAW:
            if item.value == "MDB_WARN":
                found.notes.append(f"line {item.start}: mdb warning: {lines[item.start - 1].strip()[:200]}")
            if not raw:
                raw[:], raw_cmd = [item.start, item.end], command
            raw[1] = item.end
            continue
        flush_raw()
        if item.kind is SectionKind.COMMAND:
            if item.value == "":  # a banner
                found.sections.append(Section(SectionKind.COMMAND, item.start, item.end, None))
                continue
            command = item.value
            found.sections.append(Section(SectionKind.COMMAND, item.start, item.end, command))
            continue
        found.sections.append(Section(item.kind, item.start, item.end, command))
        _take(item, command, found)
        # a command's output is one section; what follows without a new prompt is recognised by content
        command = None
    flush_raw()


def _take(item: _Item, command: str | None, found: _Found) -> None:
    # the value of one understood section, into its place in `found`
    if item.kind is SectionKind.STATUS:
        found.statuses.append(item.value)
    elif item.kind is SectionKind.STACK:
        m = _STACK_COMMANDS.match(command or "")
        st = replace(item.value, command=m["cmd"] if m else None)
        (found.thread_stacks if m and m["addr"] else found.stacks).append(st)
    elif item.kind is SectionKind.CONSOLE:
        if isinstance(item.value, Stack):
            found.stacks.append(item.value)
        else:
            found.console.append(item.value)
    elif item.kind in (SectionKind.FINDSTACK, SectionKind.STACKS, SectionKind.THREADLIST):
        found.threads.extend(item.value)
    elif item.kind is SectionKind.PANICINFO:
        found.panicinfo = found.panicinfo or item.value
    elif item.kind is SectionKind.CPUINFO:
        found.cpus = found.cpus or item.value
    elif item.kind is SectionKind.FMA:
        found.fma.extend(item.value)
    elif item.kind is SectionKind.TRAP:
        found.traps.append(item.value)


def _status(found: _Found) -> Status | None:
    # the first ::status block (a transcript may show several)
    if len(found.statuses) > 1:
        found.notes.append(f"{len(found.statuses)} ::status blocks; the first (line {found.statuses[0].line}) is used")
    return found.statuses[0] if found.statuses else None


def _panic_message(status: Status | None, found: _Found, data: LexInput) -> tuple[str | None, int | None]:
    # ::status, else ::panicinfo, else the console's panic line, else a bare message before a console
    # traceback. Every consumer reads Dump.panic_message: this is the one place the fallbacks live.
    if status and status.panic_message:
        return status.panic_message, status.line_of("panic_message")
    message = dict(found.panicinfo).get("message")
    if message:
        return message, _section_line(found.sections, SectionKind.PANICINFO)
    # a panic line (panic[cpuN]/thread=) outranks a bare 'BAD TRAP:' banner from an earlier panic
    for info in sorted(found.console, key=lambda i: i["type"] == "TRAP_BANNER"):
        if info["message"]:
            return info["message"], info["text_line"]
    return _message_before_console_stack(found.stacks, data)


def _panic_thread_and_cpu(found: _Found) -> tuple[int | None, int | None]:
    # ::panicinfo, else the first console panic line that shows them
    pi = dict(found.panicinfo)
    thread = hex_value(pi.get("thread"))
    cpu = dec_value(pi.get("cpu"))
    for info in found.console:
        if thread is None and info["thread"]:
            thread = hex_value(info["thread"])
        if cpu is None and info["cpu"]:
            cpu = dec_value(info["cpu"])
    return thread, cpu


def _panic_stack(found: _Found) -> Stack | None:
    # the first $C/$c/::stack, else the first console traceback, else the first ADDR$C
    return (next((s for s in found.stacks if not s.console), None) or next(iter(found.stacks), None)
            or next(iter(found.thread_stacks), None))


def _note_raw_text(found: _Found, ends_mid_line: bool, line_count: int) -> None:
    sections = found.sections
    if ends_mid_line and line_count and sections:
        last = sections[-1]
        if last.kind is SectionKind.RAW and last.end == line_count:
            found.notes.append(f"line {line_count}: input ends mid-line (truncated)")
    understood = [s for s in sections if s.kind not in (SectionKind.RAW, SectionKind.COMMAND)]
    if understood and found.raw_lines:
        raws = [s for s in sections if s.kind is SectionKind.RAW]
        spans = ", ".join(f"{s.start}-{s.end}" if s.end != s.start else f"{s.start}" for s in raws[:5])
        more = ", ..." if len(raws) > 5 else ""
        found.notes.append(f"{found.raw_lines} line(s) not understood, kept as raw text (lines {spans}{more})")


# '$C -S' (2025 mdb) prints, under a frame, the strings its arguments point to: '    5bfa21d: text'
_STACK_STRING = re.compile(r"^[ \t]+[0-9a-fA-F]+: ")


def _join_split_stacks(stacks: list[Stack], lines: list[str]) -> None:
    # Frame runs separated only by '$C -S' string lines are one stack.
    i = 0
    while i + 1 < len(stacks):
        a, b = stacks[i], stacks[i + 1]
        between = range(a.frames[-1].line, b.line - 1)  # 0-based indexes of the lines between them
        if (not a.console and not b.console and len(between) > 0
                and all(_STACK_STRING.match(lines[j]) for j in between)):
            stacks[i] = replace(a, frames=a.frames + b.frames)
            del stacks[i + 1]
            continue
        i += 1


def _section_line(sections: list[Section], kind: SectionKind) -> int | None:
    return next((s.start for s in sections if s.kind is kind), None)


def _message_before_console_stack(stacks: list[Stack], data: LexInput) -> tuple[str | None, int | None]:
    # A console excerpt may begin with the bare panic string: "bad pending MMIO state", a blank, frames.
    lines = data.lines
    for st in stacks:
        if not st.console:
            continue
        j = st.line - 2
        while j >= 0 and j >= st.line - 4 and not lines[j].strip():
            j -= 1
        if j >= 0 and lines[j].strip() and data.kinds[j] not in _STACK_LINES:
            candidate = lines[j].strip()
            if len(candidate) <= 200 and candidate[-1] not in ":.`" and candidate[0] not in "#`>[" \
                    and _BARE_MESSAGE.search(candidate):
                return candidate, j + 1
    return None, None


def _merge_threads(threads: list[Thread], panic_thread: int | None) -> list[Thread]:
    """One Thread per address: the same thread seen by ::findstack and ::stacks is linked, not counted twice."""
    by_addr: dict[int, int] = {}
    out: list[Thread] = []
    for t in threads:
        if t.address is not None and t.count in (None, 1) and t.address in by_addr:
            k = by_addr[t.address]
            out[k] = _better(out[k], t)
            continue
        if t.address is not None:
            by_addr[t.address] = len(out)
        out.append(t)
    if panic_thread is not None and panic_thread in by_addr:
        k = by_addr[panic_thread]
        out[k] = out[k]._replace(is_panic=True)
    return out


def _better(a: Thread, b: Thread) -> Thread:
    # Keep the richer stack (arguments beat none, more frames beat fewer) and fill gaps from the other.
    first, second = (b, a) if (b.has_args, len(b.frames)) > (a.has_args, len(a.frames)) else (a, b)
    return first._replace(
        description=first.description or second.description,
        state=first.state or second.state,
        sobj=first.sobj or second.sobj,
        stack_pointer=first.stack_pointer or second.stack_pointer,
        proc=first.proc or second.proc,
        lwp=first.lwp or second.lwp,
        wchan=first.wchan or second.wchan,
        is_panic=a.is_panic or b.is_panic,
    )
