"""Panic records that are not mdb output: FMA panic records and trap banners, from their parsed lines."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from dumpscope.dump import BAD_TRAP, FmaRecord, Frame, Stack, Trap, trap_follows
from dumpscope.lexer import LineTok, dec_value, hex_value

__all__ = ["fma_record", "panicstack_frames", "trap_records", "typed_stack"]

# One panicstack entry: 'unix:die+dd ()'. Offsets are hex without 0x, as the console prints them
# (uts/common/os/panic.c); the list is joined with ' | ' and ends with ' |'.
_PANICSTACK_FRAME = re.compile(r"(?P<mod>[\w.$-]+):(?P<func>[\w.$]+)\+(?P<off>[0-9a-fA-F]+) \(\)")
# The runs of the characters an entry starts with: an entry can only start where one does (see
# _panicstack_entries).
_MODULE_RUN = re.compile(r"[\w.$-]+")


def fma_record(lines: Sequence[tuple[str, LineTok]], notes: list[str]) -> FmaRecord | None:
    """The FMA panic record of a transcript from its FMA lines (fma.lark), or None when it has none.

    A record without panicstr is panic-shaped text the parser could not turn into a message: a note
    says so, with its lines, so the verdict can say so too.
    """
    if not any(kind in ("FMA_EVENT", "FMA_MEMBER") for kind, _ in lines):
        return None  # nvlist scaffolding alone ('version = 0x0') is not a panic record
    event = None
    members: list[tuple[str, str, int]] = []
    for kind, tok in lines:
        g = tok.groups
        if kind == "FMA_EVENT":
            # the ireport names the event; the defect class wins once the record shows it
            name = g["event"] or g["cls"]
            if event is None or name == "defect.sunos.kernel.panic":
                event = name
        elif kind == "FMA_MEMBER":
            members.append((g["key"], _member_value(g["value"] or ""), tok.line))
    first, last = lines[0][1].line, lines[-1][1].line
    record = FmaRecord(first, last, event, tuple(members))
    if record.get("panicstr") is None:
        notes.append(f"FMA panic record without panicstr (lines {first}-{last}): the panic message is not in the"
                     " transcript")
    return record


def _member_value(text: str) -> str:
    # nvlist members print bare; JSON ones are quoted and end with a comma
    value = text.strip().rstrip(",").strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    return value.strip()


def panicstack_frames(lines: Sequence[tuple[str, LineTok]]) -> tuple[Frame, ...]:
    """The frames of the record's panicstack: on the 'panicstack =' line and the lines after it."""
    frames: list[Frame] = []
    started = False
    for kind, tok in lines:
        g = tok.groups
        if kind == "FMA_MEMBER" and g["key"] == "panicstack":
            started = True
            text = g["value"] or ""
        elif kind == "FMA_STACK" and started:
            text = g["frames"]
        else:
            if started and frames:
                break
            continue
        for m in _panicstack_entries(text):
            frames.append(Frame(tok.line, m["func"], m["mod"], hex_value(m["off"]), ()))
    return tuple(frames)


def _panicstack_entries(text: str) -> Iterator[re.Match[str]]:
    """What _PANICSTACK_FRAME.finditer(text) finds, in time linear in the text.

    finditer tries the regex at every position, and at each one inside a run of module characters
    the module repeat reads to the end of the run: quadratic in a long run (a 64 KiB panicstack of
    digits took minutes, issue 18's fuzz). An entry found inside a run would also be found at the
    run's start (its module ends at the same ':'), so only the start of each run is tried, and each
    character is read a few times at most.
    """
    end = 0
    for run in _MODULE_RUN.finditer(text):
        if run.start() < end:
            continue  # inside the entry found last (finditer does not overlap its matches)
        m = _PANICSTACK_FRAME.match(text, run.start())
        if m is not None:
            end = m.end()
            yield m


def trap_records(sections: Sequence[tuple[tuple[str, LineTok], ...]],
                 console: Sequence[dict[str, Any]]) -> tuple[Trap, ...]:
    """The trap records of a transcript: each trap section (trap.lark), with the BAD TRAP message and
    cpu of the panic line just before it; SPARC trap-level lines make one record per level."""
    out: list[Trap] = []
    for section in sections:
        out.extend(_section_traps(section, console))
    return tuple(out)


def _section_traps(section: tuple[tuple[str, LineTok], ...], console: Sequence[dict[str, Any]]) -> list[Trap]:
    levels = [tok for kind, tok in section if kind == "TRAP_LEVEL"]
    if levels:
        return _sparc_levels(section)
    fields: dict[str, Any] = {}
    where: list[tuple[str, int]] = []

    def put(name: str, value: Any, line: int) -> None:
        if value is not None and name not in fields:
            fields[name] = value
            where.append((name, line))

    for kind, tok in section:
        g = tok.groups
        if kind == "TRAP_PROCESS":
            put("process", g["proc"], tok.line)
        elif kind == "TRAP_KIND":
            put("mnemonic", g["mn"], tok.line)
            put("name", g["name"], tok.line)
        elif kind == "TRAP_ADDR":
            put("addr", hex_value(g["addr"]), tok.line)
        elif kind == "TRAP_REGS":
            put("pid", dec_value(g["pid"]), tok.line)
            put("pc", hex_value(g["pc"]), tok.line)
            put("sp", hex_value(g["sp"]), tok.line)
        elif kind == "TRAP_SPARC":
            put("process", g["proc"], tok.line)
            put("type", g["type"].lower().lstrip("0") or "0", tok.line)
        elif kind == "TRAP_DATA":
            put("type", g["type"].lower().lstrip("0") or "0", tok.line)
            put("name", g["name"], tok.line)
            put("rp", hex_value(g["rp"]), tok.line)
        elif kind == "TRAP_PC":
            if g["which"] == "pc":
                put("pc", hex_value(g["value"]), tok.line)
                put("symbol", g["sym"], tok.line)
            elif g["which"] == "addr":
                put("addr", hex_value(g["value"]), tok.line)
    first, last = section[0][1].line, section[-1][1].line
    if not (set(fields) - {"process"}):
        return []  # a lone 'word:' line is not a trap record
    info = _panic_before(first, last, console)
    if info is not None:
        m = BAD_TRAP.search(info["message"] or "")
        if m:
            put("type", m["type"].lower(), info["text_line"])
            put("mnemonic", m["mn"], info["text_line"])
            put("name", m["name"], info["text_line"])
            put("rp", hex_value(m["rp"]), info["text_line"])
            put("addr", hex_value(m["addr"]), info["text_line"])
        if info["cpu"]:
            put("cpu", dec_value(info["cpu"]), info["line"])
        first = min(first, info["text_line"])
    return [Trap(line=first, end=last, lines=tuple(where), **fields)]


def _panic_before(first: int, last: int, console: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    # the console panic record (panic line or BAD TRAP banner) whose message ends just before the trap
    # section on lines first-last, and so the last that section follows
    best = None
    for info in console:
        if info["text_line"] < first and trap_follows(info["text_line"], first, last):
            best = info
    return best


def _sparc_levels(section: tuple[tuple[str, LineTok], ...]) -> list[Trap]:
    # 'TL=... TT=...' starts a record; the 'TPC=' line after it (or on it, flattened) gives its pc
    out: list[Trap] = []
    current: dict[str, Any] | None = None
    for kind, tok in section:
        g = tok.groups
        if kind == "TRAP_LEVEL":
            if current is not None:
                out.append(Trap(**current))
            current = {"line": tok.line, "end": tok.line, "level": _dotted(g["tl"]),
                       "type": format(_dotted(g["tt"]) or 0, "x"),
                       "pc": _dotted(g["tpc"]) if g["tpc"] else None,
                       "lines": (("level", tok.line), ("type", tok.line))}
        elif kind == "TRAP_TPC" and current is not None and current["pc"] is None:
            current["pc"] = _dotted(g["tpc"])
            current["end"] = tok.line
            current["lines"] += (("pc", tok.line),)
    if current is not None:
        out.append(Trap(**current))
    return out


def _dotted(text: str | None) -> int | None:
    # OpenBoot prints 64-bit registers as four dotted groups: 0000.0000.f000.4c80
    if not text:
        return None
    return hex_value(text.replace(".", ""))


def typed_stack(lines: Sequence[LineTok]) -> Stack:
    """A Solaris 11.4 typed stack (typed.lark): frames whose args keep the values, and per frame the
    return type and argument types as text. An empty argument slot ends the values (arguments are
    positional: a later value must not slide into its place) but keeps its place among the types."""
    frames: list[Frame] = []
    types: list[tuple[str | None, tuple[str | None, ...]]] = []
    trap_frame = None
    for tok in lines:
        g = tok.groups
        slots = _split_args(g["args"] or "")
        values: list[int] = []
        arg_types: list[str | None] = []
        stopped = False
        for slot in slots:
            arg_type, value = _typed_arg(slot)
            arg_types.append(arg_type)
            if value is None:
                stopped = True
            elif not stopped:
                values.append(value)
        off = g["off"]
        offset = hex_value(off) if off and off.startswith("0x") else dec_value(off)
        if g["trap"] and trap_frame is None:
            trap_frame = len(frames)
        frames.append(Frame(tok.line, g["func"], g["mod"], offset, tuple(values)))
        types.append((g["ret"], tuple(arg_types)))
    return Stack(frames[0].line, tuple(frames), types=tuple(types), trap_frame=trap_frame)


def _split_args(text: str) -> list[str]:
    # top-level commas only: a type may hold parentheses of its own ('(int (*)(void))0x...')
    if not text.strip():
        return []
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [part.strip() for part in out]


# '(type)value'; the type may hold up to four parenthesised groups ('void (*)(int)' has two), nested
# as optional groups rather than repeated: a repeat of a group holding a repeat is the shape that makes a
# regex super-linear, and every regex dumpscope ships passes signatures.check_regex (tests/test_regex_safety.py).
_TYPE_GROUPS = 4
_TYPED_ARG = re.compile(r"^(?:\((?P<type>[^()]*" + r"(?:\([^()]*\)[^()]*" * _TYPE_GROUPS + r")?" * _TYPE_GROUPS
                        + r")\))?\s*(?P<value>\S*)$")


def _typed_arg(slot: str) -> tuple[str | None, int | None]:
    # '(vfs_t *)0x640050574b70' -> ('vfs_t *', 0x640050574b70); '' -> (None, None); '0' -> (None, 0)
    m = _TYPED_ARG.match(slot)
    if m is None or not m["value"]:
        return (m["type"] if m else None), None
    value = m["value"]
    number = 0 if value == "NULL" else hex_value(value)
    return m["type"], number
