"""Renders results for people (text) and for programs (versioned JSON); escapes transcript text."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dumpscope.dump import Dump, Frame, Section, Stack, Status, Thread, Trap, hex_text
from dumpscope.verdict import VERDICT_SCHEMA, Event, Evidence, Verdict

if TYPE_CHECKING:
    from dumpscope.history import BucketHistory
    from dumpscope.signatures import Signature

__all__ = [
    "HISTORY_CSV_COLUMNS",
    "PARSE_SCHEMA",
    "TABLE_COLUMNS",
    "VERDICT_SCHEMA",
    "build_order_key",
    "build_stamp",
    "csv_cell",
    "dump_to_json",
    "escape",
    "event_text",
    "frame_to_json",
    "iter_dump_json",
    "lines_label",
    "render_csv",
    "render_dump_text",
    "render_history",
    "render_history_csv",
    "render_summary",
    "render_summary_csv",
    "render_table",
    "render_verdict_text",
    "signature_to_json",
    "summary_rows",
    "to_json_line",
    "verdict_to_json",
    "when_text",
]

PARSE_SCHEMA = "dumpscope.parse/2"

# What a transcript or a file name must never put in front of a person raw: C0 controls except tab,
# DEL and C1 controls (they drive the terminal); bidirectional marks, embeddings, overrides and
# isolates, zero-width and other invisible format characters, and the Unicode line and paragraph
# separators (they make text read other than it is: "Trojan Source", CVE-2021-42574); tag characters;
# and lone surrogates (an undecodable byte of a file name, kept by surrogateescape; unprintable).
_CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]")


def _escaped(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c <= 0xFF:
        return f"\\x{c:02x}"
    if 0xDC80 <= c <= 0xDCFF:  # the byte surrogateescape stands for
        return f"\\x{c - 0xDC00:02x}"
    return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def escape(text: str | None) -> str:
    """Show control and invisible characters from a transcript or a file name as escapes (\\x1b,
    \\u202e; an undecodable byte of a name as \\xff), so they are never echoed raw."""
    if not text:
        return ""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escaped, text)


# A CSV cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str | None) -> str:
    """A CSV cell: escaped as `escape` does, and prefixed with a single quote when it would start
    with '=', '+', '-', '@', a tab or a carriage return (OWASP's rule against formula injection)."""
    cell = escape(text)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def frame_to_json(f: Frame) -> dict[str, Any]:
    """A frame as JSON: function, module, offset and line (integers), and the addresses and arguments
    as mdb prints them (strings of bare lowercase hex)."""
    return {
        "line": f.line,
        "function": f.function,
        "module": f.module,
        "offset": f.offset,
        "args": None if f.args is None else list(map(hex_text, f.args)),
        "fp": hex_text(f.fp),
    }


def _stack_json(s: Stack) -> dict[str, Any]:
    # types: Solaris 11.4 typed frames, one entry per frame (empty when the stack printed no types)
    return {"line": s.line, "command": s.command, "console": s.console,
            "frames": [frame_to_json(f) for f in s.frames],
            "types": [{"return": ret, "args": list(args)} for ret, args in s.types],
            "trap_frame": s.trap_frame}


def _thread_json(t: Thread) -> dict[str, Any]:
    return {
        "line": t.line,
        "kind": t.kind.value,
        "address": hex_text(t.address),
        "description": t.description,
        "state": t.state,
        "sobj": t.sobj,
        "count": t.count,
        "stack_pointer": hex_text(t.stack_pointer),
        "proc": hex_text(t.proc),
        "lwp": hex_text(t.lwp),
        "wchan": hex_text(t.wchan),
        "failure": t.failure,
        "is_panic": t.is_panic,
        "frames": [frame_to_json(f) for f in t.frames],
    }


def _section_json(s: Section) -> dict[str, Any]:
    return {"kind": s.kind.value, "start": s.start, "end": s.end, "command": s.command}


def _status_json(s: Status) -> dict[str, Any]:
    return {
        "line": s.line,
        "target": s.target,
        "dump_file": s.dump_file,
        "bits": s.bits,
        "host": s.host,
        "release": s.release,
        "version": s.version,
        "machine": s.machine,
        "image_uuid": s.image_uuid,
        "panic_message": s.panic_message,
        "dump_content": s.dump_content,
        "build_version": s.build_version,
        "extra": [list(kv) for kv in s.extra],
        "lines": dict(s.lines),
    }


def _head_json(dump: Dump, source: str) -> dict[str, Any]:
    # the document without its long lists (stacks, threads, sections)
    return {
        "schema": PARSE_SCHEMA,
        "source": source,
        "status": _status_json(dump.status) if dump.status else None,
        "panic_message": dump.panic_message,
        "panic_message_line": dump.panic_message_line,
        "platform": dump.platform,
        "panic_thread": hex_text(dump.panic_thread_address),
        "panic_cpu": dump.panic_cpu,
        "panic_stack": _stack_json(dump.panic_stack) if dump.panic_stack else None,
        "panicinfo": [list(kv) for kv in dump.panicinfo],
        "cpus": [{"line": c.line, "id": c.cpu_id, "address": hex_text(c.address), "flags": c.flags,
                  "thread": hex_text(c.thread), "proc": c.proc} for c in dump.cpus],
        "notes": list(dump.notes),
        "lines": dump.line_count,
        "traps": [_trap_json(t) for t in dump.traps],
        "fma": None if dump.fma is None else {
            "line": dump.fma.line, "end": dump.fma.end, "event": dump.fma.event,
            "members": [list(m) for m in dump.fma.members]},
    }


def _trap_json(t: Trap) -> dict[str, Any]:
    # addresses as bare hex text, like every address of the document
    return {"line": t.line, "end": t.end, "type": t.type, "mnemonic": t.mnemonic, "name": t.name,
            "process": t.process, "pid": t.pid, "pc": hex_text(t.pc), "symbol": t.symbol, "sp": hex_text(t.sp),
            "addr": hex_text(t.addr), "rp": hex_text(t.rp), "cpu": t.cpu, "level": t.level, "lines": dict(t.lines)}


def _long_lists(dump: Dump) -> dict[str, tuple[Sequence[Any], Callable[[Any], dict[str, Any]]]]:
    return {"stacks": (dump.stacks, _stack_json), "threads": (dump.threads, _thread_json),
            "sections": (dump.sections, _section_json)}


def dump_to_json(dump: Dump, source: str) -> dict[str, Any]:
    """The parse result as the documented `dumpscope.parse/2` JSON document, whole."""
    doc = _head_json(dump, source)
    for key, (items, to_json) in _long_lists(dump).items():
        doc[key] = [to_json(x) for x in items]
    return doc


_CHUNK_ITEMS = 64  # stacks, threads or sections per written chunk (~100 KB of JSON for ::findstack -v)


def iter_dump_json(dump: Dump, source: str) -> Iterator[str]:
    """The `dumpscope.parse/2` document on one line, as text chunks: the stdlib encoder writes it a
    section at a time (a chunk of stacks, threads or sections), so a transcript of many threads never
    needs its whole JSON tree in memory. The text is that of to_json_line(dump_to_json(dump, source))
    plus a newline: keys sorted, ASCII only (no control character reaches the output raw)."""
    head = _head_json(dump, source)
    lists = _long_lists(dump)
    encode = _LINE_ENCODER.encode
    for n, key in enumerate(sorted([*head, *lists])):
        yield ("{" if n == 0 else ",") + encode(key) + ":"
        if key not in lists:
            yield encode(head[key])
            continue
        items, to_json = lists[key]
        yield "["
        for i in range(0, len(items), _CHUNK_ITEMS):
            yield ("," if i else "") + ",".join([encode(to_json(x)) for x in items[i:i + _CHUNK_ITEMS]])
        yield "]"
    yield "}\n"


# json.dumps with options builds an encoder per call; bulk output writes one line per input
_LINE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def to_json_line(doc: dict[str, Any]) -> str:
    """One JSON object on one line (JSON Lines); ASCII-only so no control byte reaches a terminal."""
    return _LINE_ENCODER.encode(doc)


def _frame_text(f: Frame) -> str:
    fp = f"{f.fp:016x} " if f.fp is not None else ""
    return f"{fp}{escape(f.text)}"


def render_dump_text(dump: Dump, source: str, max_threads: int = 50) -> str:
    """A readable summary of what the parser understood, with line numbers."""
    out: list[str] = [f"source: {escape(source)} ({dump.line_count} lines)"]
    s = dump.status
    if s:
        out.append(f"status (line {s.line}):")
        for label, value in (("target", s.target), ("dump", s.dump_file), ("host", s.host),
                             ("release", s.release), ("platform", s.version), ("machine", s.machine),
                             ("image uuid", s.image_uuid), ("dump content", s.dump_content),
                             ("build version", s.build_version)):
            if value is not None:
                out.append(f"  {label}: {escape(str(value))}")
        for key, value in s.extra:
            out.append(f"  {escape(key)}: {escape(value)}")
    if dump.panic_message:
        out.append(f"panic message (line {dump.panic_message_line}): {escape(dump.panic_message)}")
    if dump.panic_thread_address is not None:
        cpu = f" on cpu {dump.panic_cpu}" if dump.panic_cpu is not None else ""
        out.append(f"panic thread: {dump.panic_thread_address:x}{cpu}")
    if dump.panic_stack:
        st = dump.panic_stack
        what = "console traceback" if st.console else (st.command or "stack")
        out.append(f"panic stack ({what}, line {st.line}, {len(st.frames)} frames):")
        out.extend(f"  {f.line:>5}  {_frame_text(f)}" for f in st.frames)
    others = [x for x in dump.stacks if x is not dump.panic_stack]
    for st in others:
        what = "console traceback" if st.console else (st.command or "stack")
        top = st.frames[0].label if st.frames else "?"
        out.append(f"other stack ({what}, line {st.line}, {len(st.frames)} frames, top {escape(top)})")
    if dump.threads:
        out.append(f"threads: {len(dump.threads)}")
        for t in dump.threads[:max_threads]:
            addr = f"{t.address:x}" if t.address is not None else "?"
            bits = [t.kind.value, f"line {t.line}"]
            if t.description:
                bits.append(escape(t.description))
            if t.state:
                bits.append(f"{t.state}/{t.sobj}")
            if t.count and t.count > 1:
                bits.append(f"x{t.count}")
            if t.is_panic:
                bits.append("PANIC")
            out.append(f"  {addr}  " + ", ".join(bits))
            for f in t.frames[:4]:
                out.append(f"      {f.line:>5}  {_frame_text(f)}")
            if len(t.frames) > 4:
                out.append(f"      ... {len(t.frames) - 4} more frames")
        if len(dump.threads) > max_threads:
            out.append(f"  ... {len(dump.threads) - max_threads} more threads (use --format json)")
    for trap in dump.traps:
        span = f"{trap.line}-{trap.end}" if trap.end != trap.line else str(trap.line)
        facts = [f"type={trap.type}"] if trap.type else []
        facts += [x for x in (trap.mnemonic, trap.name) if x]
        fields: tuple[tuple[str, object], ...] = (("process", trap.process), ("pid", trap.pid), ("cpu", trap.cpu),
                                                  ("TL", trap.level))
        facts += [f"{label} {value}" for label, value in fields if value is not None]
        for label, number in (("pc", trap.pc), ("addr", trap.addr)):
            if number is not None:
                facts.append(f"{label} {number:#x}")
        if trap.symbol:
            facts.append(f"at {trap.symbol}")
        out.append(f"trap record (line {span}): " + escape(", ".join(facts)))
    if dump.fma is not None:
        fma = dump.fma
        out.append(f"FMA panic record (lines {fma.line}-{fma.end}): {escape(fma.event or 'event not shown')}")
        for key, value, line in fma.members:
            if key not in ("panicstr", "panicstack"):
                out.append(f"  {line:>5}  {escape(key)} = {escape(value)}")
    if dump.panicinfo:
        out.append("panicinfo: " + ", ".join(f"{k}={escape(v)}" for k, v in dump.panicinfo[:3]))
    if dump.cpus:
        out.append(f"cpus: {len(dump.cpus)}")
    out.append("sections:")
    for sec in dump.sections:
        span = f"{sec.start}-{sec.end}" if sec.end != sec.start else str(sec.start)
        cmd = f"  [{escape(sec.command)}]" if sec.command else ""
        out.append(f"  {span:>11}  {sec.kind.value}{cmd}")
    for note in dump.notes:
        out.append(f"note: {escape(note)}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------
# verdicts (issue 3 "Output", issue 5 "Output")

# The table and CSV columns, in order (issue 5); CSV adds status and error.
TABLE_COLUMNS = ("file", "title", "signature", "confidence", "bucket", "platform")
_CSV_COLUMNS = TABLE_COLUMNS + ("status", "error")
# SmartOS platform builds are named for their build time (joyent_20180216T202957Z); ordering by that
# stamp, not by the string, keeps "first/last build seen" right across prefixes.


def verdict_to_json(v: Verdict) -> dict[str, Any]:
    """A verdict as the documented `dumpscope.verdict/2` object: every field, lossless (read back by
    cache.verdict_from_json)."""
    return {
        "schema": VERDICT_SCHEMA,
        "source": v.source,
        "status": v.status,
        "error": v.error,
        "panic_message": v.panic_message,
        "platform": v.platform,
        "host": v.host,
        "signature": v.signature,
        "confidence": None if v.confidence is None else v.confidence.value,
        "bucket": v.bucket,
        "title": v.title,
        "bugs": list(v.bugs),
        "evidence": [
            {"clause": e.clause, "lines": list(e.lines), "holds": e.holds, "detail": e.detail}
            for e in v.evidence
        ],
        "fix": None
        if v.fix is None
        else {"references": list(v.fix.references), "status": v.fix.status.value, "detail": v.fix.detail},
        "events": [{"text": e.text, "lines": list(e.lines), "inferred": e.inferred} for e in v.events],
        "hints": [{"command": h.command, "settles": h.settles} for h in v.hints],
        "notes": list(v.notes),
        "panic_thread": v.panic_thread,
        "replay": v.replay,
        "stack": [{"line": f.line, "text": f.text, "plumbing": f.plumbing} for f in v.stack],
        "key_frames": list(v.key_frames),
        "unchecked": list(v.unchecked),
        "conclusion": v.conclusion,
        "trap": None if v.trap is None else {"line": v.trap.line, "end": v.trap.end,
                                             "fields": [list(f) for f in v.trap.fields]},
        "stack_owner": v.stack_owner,
    }


SIGNATURE_SCHEMA = "dumpscope.signature/1"


def signature_to_json(sig: Signature, version: str) -> dict[str, Any]:
    """A signature as the documented `dumpscope.signature/1` object (`signatures --format json`)."""
    return {
        "schema": SIGNATURE_SCHEMA,
        "id": sig.id,
        "title": sig.title,
        "kind": sig.kind.value,
        "bugs": list(sig.bugs),
        "fixes": list(sig.fix.references) if sig.fix is not None else [],
        "fixtures": list(sig.fixtures),
        "near_misses": list(sig.near_misses),
        "notes": sig.notes or None,
        "description": sig.description or None,
        "version": version,
        "file": sig.path,
        "dcmds": list(sig.dcmds),
    }


def lines_label(lines: Sequence[int]) -> str:
    """Transcript line numbers as a person reads them: 'line 5', 'lines 5, 9', or 'no line'."""
    if not lines:
        return "no line"
    return ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines))


def _headline(v: Verdict) -> str:
    src = escape(v.source)
    if v.status != "ok":
        return f"error: {escape(v.error or 'unknown error')} — {src}"
    if v.signature:
        conf = f" ({v.confidence.value})" if v.confidence else ""
        return f"{escape(v.signature)}{conf}: {escape(v.title)} — {src}"
    return f"unknown [{escape(v.bucket)}]: {escape(v.title)} — {src}"


def render_verdict_text(v: Verdict, lines: Sequence[str] | None = None, color: bool = False) -> str:
    """A verdict for a person: the one-line verdict, then what the dump shows and why we think so.

    `lines` (the transcript split into lines, optional) lets the evidence quote the transcript lines
    it rests on, two lines of context around each (`triage --explain`); with `color` (a terminal, no
    NO_COLOR) the values each piece of evidence matched are highlighted. Every transcript-derived
    string is escaped.
    """
    out = [_headline(v)]
    if v.status != "ok":
        out.extend(f"note: {escape(n)}" for n in v.notes)
        return "\n".join(out) + "\n"
    if v.panic_message:
        out.append(f"panic message: {escape(v.panic_message)}")
    if v.host or v.platform:  # only what the transcript shows
        out.append("   ".join(f"{k}: {escape(x)}" for k, x in (("host", v.host), ("platform", v.platform)) if x))
    if v.panic_thread:
        out.append(f"panic thread: {escape(v.panic_thread)}")
    if v.signature:
        bugs = f" [{', '.join(escape(b) for b in v.bugs)}]" if v.bugs else ""
        out.append(f"signature: {escape(v.signature)}{bugs}")
        conf = v.confidence.value if v.confidence else "none"
        if v.unchecked:
            conf += (", in part: the replay could not compare " + ", ".join(escape(u) for u in v.unchecked)
                     + " (not in the transcript)")
        out.append(f"confidence: {conf}")
        if v.conclusion:
            out.append(f"what the bug's source concluded (not shown by this dump): {escape(v.conclusion)}")
    else:
        out.append(f"signature: none (bucket {escape(v.bucket)})")
    if v.replay:
        out.append(f"replay: {escape(v.replay)}")
    if v.events:
        marked = any(e.inferred for e in v.events)
        out.append("sequence of events (from the evidence below" + (
            "; a step marked (inferred) tells what a thread did that this transcript does not show paired"
            if marked else "") + "):")
        out.extend(f"  {i}. {escape(event_text(e))}" for i, e in enumerate(v.events, 1))
    if v.fix is not None:
        refs = ", ".join(escape(r) for r in v.fix.references)
        detail = f": {escape(v.fix.detail)}" if v.fix.detail else ""
        out.append(f"fix: {v.fix.status.value}{detail}" + (f" ({refs})" if refs else ""))
    if not v.signature:
        out.extend(_stack_text(v))
        if v.trap is not None:
            span = f"line {v.trap.line}" if v.trap.end == v.trap.line else f"lines {v.trap.line}-{v.trap.end}"
            fields = ", ".join(f"{k} {escape(val)}" for k, val in v.trap.fields)
            out.append(f"trap record ({span}): {fields}")
    if v.hints:
        out.append("to settle what the transcript leaves open, run in mdb:")
        for h in v.hints:
            out.append(f"  {escape(h.command)}")
            out.append(f"      {escape(h.settles)}")
    if v.evidence:
        out.append("evidence:")
        for e in v.evidence:
            mark = "+" if e.holds else "-"
            detail = f": {escape(e.detail)}" if e.detail else ""
            out.append(f"  {mark} {escape(e.clause)} ({lines_label(e.lines)}){detail}")
            if lines is not None:
                out.extend(_quote_lines(e, lines, color))
    for note in v.notes:
        out.append(f"note: {escape(note)}")
    return "\n".join(out) + "\n"


def event_text(e: Event) -> str:
    """A step of the sequence of events as every renderer prints it: a step that tells what a thread
    did that the transcript does not show paired starts with '(inferred)'."""
    return f"(inferred) {e.text}" if e.inferred else e.text


# how many meaningful frames of an unknown crash's stack the text shows
_STACK_SHOWN = 12


def _stack_text(v: Verdict) -> list[str]:
    # an unknown crash: the meaningful frames first, the panic plumbing collapsed to one line
    if not v.stack:
        return []
    meaningful = [f for f in v.stack if not f.plumbing]
    skipped = [f for f in v.stack if f.plumbing]
    whose = f"stack of {escape(v.stack_owner)}" if v.stack_owner else "panic stack"
    out = [f"{whose} ({len(v.stack)} frames, the meaningful ones first):"]
    out.extend(f"  {f.line:>6}  {escape(f.text)}" for f in meaningful[:_STACK_SHOWN])
    if len(meaningful) > _STACK_SHOWN:
        out.append(f"          ... {len(meaningful) - _STACK_SHOWN} more frames")
    if skipped:
        names = ", ".join(f"{escape(f.text.split('(')[0])} ({f.line})" for f in skipped)
        out.append(f"          skipped as plumbing or unresolved: {names}")
    if v.key_frames:
        out.append(f"bucket {escape(v.bucket)} is keyed by the message and the frames "
                   + " <- ".join(escape(k) for k in v.key_frames))
    return out


_CONTEXT = 2  # transcript lines quoted above and below each evidence line (--explain)
_HIGHLIGHT, _RESET = "\x1b[1;33m", "\x1b[0m"
_VALUE = re.compile(r"= ([0-9a-f]+)\b")


def _quote_lines(e: Evidence, lines: Sequence[str], color: bool) -> list[str]:
    # each cited line with two lines of context on either side (windows that touch are merged); the
    # cited lines are marked '>', and on a terminal the values the clause matched are highlighted
    cited = sorted({n for n in e.lines if 1 <= n <= len(lines)})
    shown: list[int] = []
    for n in cited:
        for k in range(max(1, n - _CONTEXT), min(len(lines), n + _CONTEXT) + 1):
            if k not in shown:
                shown.append(k)
    shown.sort()
    words = _matched_values(e) if color else []
    out = []
    prev = 0
    for k in shown:
        if prev and k > prev + 1:
            out.append("          ...")
        text = escape(lines[k - 1])
        if k in cited:
            out.append(f"    > {k:>5} | {_highlight(text, words)}")
        else:
            out.append(f"      {k:>5} | {text}")
        prev = k
    return out


def _matched_values(e: Evidence) -> list[str]:
    # what a clause matched: the values compared ('= c3'), else the frame's function, else the message
    values = _VALUE.findall(e.detail)
    if values:
        return values
    detail = e.detail.split(": ", 1)[1] if e.clause.startswith("stuck thread") and ": " in e.detail else e.detail
    name = re.split(r"[+(]", detail, maxsplit=1)[0].strip()
    return [name] if name else []


def _highlight(text: str, words: Sequence[str]) -> str:
    if not words:
        return text
    pattern = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.sub(rf"(?<![0-9A-Za-z_])(?:{pattern})(?![0-9A-Za-z_])", lambda m: _HIGHLIGHT + m.group() + _RESET, text)


def _row(v: Verdict) -> list[str]:
    return [
        escape(v.source),
        escape(v.title) if v.status == "ok" else f"error: {escape(v.error)}",
        escape(v.signature) or "-",
        v.confidence.value if v.confidence else "-",
        escape(v.bucket) or "-",
        escape(v.platform) or "-",
    ]


def render_table(verdicts: Iterable[Verdict]) -> str:
    """One row per input: file, title, signature, confidence, bucket, platform (tabulate 'simple')."""
    return _tabulate([_row(v) for v in verdicts], list(TABLE_COLUMNS))


def _tabulate(rows: list[list[str]], headers: list[str], colalign: tuple[str, ...] | None = None) -> str:
    # every table is tabulate's 'simple' layout, cells as text (never reformatted as numbers)
    from tabulate import tabulate  # type: ignore[import-untyped]

    return str(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True, colalign=colalign)) + "\n"


def render_csv(verdicts: Iterable[Verdict]) -> str:
    """One CSV record per input: the table's columns plus status and error (raw values, csv-quoted)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_COLUMNS)
    for v in verdicts:
        # CSV is for programs: values as they are except control and invisible characters (never raw
        # in front of a person) and a formula's first character (never run by a spreadsheet).
        w.writerow([csv_cell(v.source), csv_cell(v.title), csv_cell(v.signature),
                    v.confidence.value if v.confidence else "", csv_cell(v.bucket), csv_cell(v.platform), v.status,
                    csv_cell(v.error)])
    return buf.getvalue()


_BUILD_STAMP = re.compile(r"\d{8}T\d{6}Z")  # SmartOS platform builds: joyent_20180216T202957Z


def build_stamp(build: str) -> str | None:
    """The build time in a SmartOS platform build's name (20180216T202957Z), or None for other builds."""
    m = _BUILD_STAMP.search(build)
    return m.group() if m else None


def build_order_key(build: str) -> tuple[int, str]:
    """Sort key for platform builds: SmartOS builds by their timestamp, then anything else by name."""
    stamp = build_stamp(build)
    return (0, stamp) if stamp else (1, build)


def summary_rows(verdicts: Iterable[Verdict]) -> list[dict[str, Any]]:
    """Group verdicts by signature (or by bucket when none matched); errors form one group of their own.

    Each row: group ('signature' | 'bucket' | 'error'), key, title, count, first_build, last_build,
    example (the first file of the group in input order). Rows are ordered by count, largest first.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    builds: dict[tuple[str, str], list[str]] = {}
    for v in verdicts:
        if v.status != "ok":
            key = ("error", "error")
            title = "inputs that could not be read or parsed"
        elif v.signature:
            key = ("signature", v.signature)
            title = v.title
        else:
            key = ("bucket", v.bucket)
            title = v.title
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"group": key[0], "key": key[1], "title": title, "count": 0,
                               "first_build": None, "last_build": None, "example": v.source}
            builds[key] = []
        g["count"] += 1
        if v.platform:
            builds[key].append(v.platform)
    for key, g in groups.items():
        seen = sorted(set(builds[key]), key=build_order_key)
        if seen:
            g["first_build"], g["last_build"] = seen[0], seen[-1]
    order = {"signature": 0, "bucket": 1, "error": 2}
    return sorted(groups.values(), key=lambda g: (-g["count"], order[g["group"]], g["key"]))


def render_summary(verdicts: Iterable[Verdict]) -> str:
    """The --summary table: one row per signature or bucket (and one for errors) with counts and builds."""
    rows = [
        [
            escape(g["key"]) if g["group"] != "bucket" else f"bucket {escape(g['key'])}",
            escape(g["title"]),
            str(g["count"]),
            escape(g["first_build"]) or "-",
            escape(g["last_build"]) or "-",
            escape(g["example"]),
        ]
        for g in summary_rows(verdicts)
    ]
    headers = ["signature/bucket", "title", "count", "first build", "last build", "example"]
    return _tabulate(rows, headers, colalign=("left", "left", "right", "left", "left", "left"))


# the --summary CSV columns: summary_rows' keys, in order
_SUMMARY_CSV_COLUMNS = ("group", "key", "title", "count", "first_build", "last_build", "example")


def render_summary_csv(verdicts: Iterable[Verdict]) -> str:
    """The --summary rows as CSV: group, key, title, count, first_build, last_build, example."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_SUMMARY_CSV_COLUMNS)
    for r in summary_rows(verdicts):
        w.writerow([csv_cell(str(r[c])) if r[c] is not None else "" for c in _SUMMARY_CSV_COLUMNS])
    return buf.getvalue()


# --- dumpscope history ------------------------------------------------------------------------------

HISTORY_CSV_COLUMNS = ("status", "group", "key", "title", "signature", "confidence", "count", "hosts",
                       "first_seen", "last_seen", "first_build", "last_build", "regressions", "example")


def when_text(stamp: str) -> str:
    """'2026-12-04T16:55:28Z' -> '2026-12-04 16:55', for a person (UTC, as stored)."""
    return stamp[:16].replace("T", " ")


def render_history(rows: Sequence[BucketHistory]) -> str:
    """The `dumpscope history` table: one row per signature or bucket, with status, counts and when seen."""
    if not rows:
        return "no dumps in the history (yet, or since the date given)\n"
    table = [
        [
            r.status.value,
            escape(r.key) if r.group == "signature" else f"bucket {escape(r.key)}",
            escape(r.title),
            str(r.count),
            str(len(r.hosts)),
            when_text(r.first_seen),
            when_text(r.last_seen),
            escape(r.first_build) or "-",
            escape(r.last_build) or "-",
        ]
        for r in rows
    ]
    headers = ["status", "signature/bucket", "title", "dumps", "hosts", "first seen (UTC)", "last seen (UTC)",
               "first build", "last build"]
    return _tabulate(table, headers, colalign=("left", "left", "left", "right", "right", "left", "left", "left",
                                               "left"))


def render_history_csv(rows: Sequence[BucketHistory]) -> str:
    """The history rows as CSV (HISTORY_CSV_COLUMNS); hosts separated by spaces, times ISO 8601 UTC, cells
    from transcripts as `csv_cell` makes them (no formula, no control or invisible character)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HISTORY_CSV_COLUMNS)
    for r in rows:
        w.writerow([r.status.value, r.group, csv_cell(r.key), csv_cell(r.title), csv_cell(r.signature),
                    r.confidence or "", r.count, csv_cell(" ".join(r.hosts)), r.first_seen, r.last_seen,
                    csv_cell(r.first_build), csv_cell(r.last_build), r.regressions, csv_cell(r.example)])
    return buf.getvalue()
