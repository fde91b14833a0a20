"""Renders results for people (text) and for programs (versioned JSON); escapes transcript text."""

from __future__ import annotations

import json
import re
from typing import Any

from dumpscope.dump import Dump, Frame, Stack, Status, Thread

__all__ = [
    "PARSE_SCHEMA",
    "dump_to_json",
    "escape",
    "frame_to_json",
    "render_dump_text",
    "to_json_line",
]

PARSE_SCHEMA = "dumpscope.parse/1"

# C0 controls except tab, DEL, and C1 controls: a transcript must never drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def escape(text: str | None) -> str:
    """Show control characters from a transcript as escapes (\\x1b), so they are never echoed raw."""
    if not text:
        return ""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _h(value: int | None) -> str | None:
    return None if value is None else f"{value:x}"


def frame_to_json(f: Frame) -> dict[str, Any]:
    """A frame as JSON: function, module, offset, args (integers), line, and fp as mdb prints it (hex)."""
    return {
        "line": f.line,
        "function": f.function,
        "module": f.module,
        "offset": f.offset,
        "args": None if f.args is None else list(f.args),
        "fp": None if f.fp is None else f"{f.fp:x}",
    }


def _stack_json(s: Stack) -> dict[str, Any]:
    return {"line": s.line, "command": s.command, "console": s.console,
            "frames": [frame_to_json(f) for f in s.frames]}


def _thread_json(t: Thread) -> dict[str, Any]:
    return {
        "line": t.line,
        "kind": t.kind.value,
        "address": _h(t.address),
        "description": t.description,
        "state": t.state,
        "sobj": t.sobj,
        "count": t.count,
        "stack_pointer": _h(t.stack_pointer),
        "proc": _h(t.proc),
        "lwp": _h(t.lwp),
        "wchan": _h(t.wchan),
        "failure": t.failure,
        "is_panic": t.is_panic,
        "frames": [frame_to_json(f) for f in t.frames],
    }


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


def dump_to_json(dump: Dump, source: str) -> dict[str, Any]:
    """The parse result as the documented `dumpscope.parse/1` JSON document."""
    return {
        "schema": PARSE_SCHEMA,
        "source": source,
        "status": _status_json(dump.status) if dump.status else None,
        "panic_message": dump.panic_message,
        "panic_message_line": dump.panic_message_line,
        "platform": dump.platform,
        "panic_thread": _h(dump.panic_thread_address),
        "panic_cpu": dump.panic_cpu,
        "panic_stack": _stack_json(dump.panic_stack) if dump.panic_stack else None,
        "stacks": [_stack_json(s) for s in dump.stacks],
        "threads": [_thread_json(t) for t in dump.threads],
        "panicinfo": [list(kv) for kv in dump.panicinfo],
        "cpus": [{"line": c.line, "id": c.cpu_id, "address": _h(c.address), "flags": c.flags,
                  "thread": _h(c.thread), "proc": c.proc} for c in dump.cpus],
        "sections": [{"kind": s.kind.value, "start": s.start, "end": s.end, "command": s.command}
                     for s in dump.sections],
        "notes": list(dump.notes),
        "lines": dump.line_count,
    }


def to_json_line(doc: dict[str, Any]) -> str:
    """One JSON object on one line (JSON Lines); ASCII-only so no control byte reaches a terminal."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _frame_text(f: Frame) -> str:
    args = "" if f.args is None else "(" + ", ".join(f"{a:x}" for a in f.args) + ")"
    fp = f"{f.fp:016x} " if f.fp is not None else ""
    return f"{fp}{escape(f.label)}{args}"


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
