"""The mdb commands to run next: only for what the transcript leaves open, with the dump's own values.

A hint is given only when its output is not already in the transcript (its command, or the first
stage of its pipeline, was run there; `$C` when the panic stack is shown; `ADDR::findstack -v` when
that thread's stack with arguments is shown), names no value the dump does not show (never 'ADDR'),
and says what its output would settle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from dumpscope.bucket import Bucket, crash_frames, meaningful_frames, suspect_thread
from dumpscope.dump import Dump, SectionKind, hex_text
from dumpscope.match import Match
from dumpscope.signatures import (
    MAX_SUBJECT_LENGTH,
    CrashKind,
    Signature,
    crash_kinds,
    fill_story,
    template_fields,
)
from dumpscope.verdict import Confidence, Hint

__all__ = ["crash_hints", "crash_kind", "shown", "signature_hints"]

# 'lp=fffff042e0085140' in a panic message (mdb-formats §2): the values an engineer pastes into mdb
_KEYED = re.compile(r"\b(addr|rp|lp|owner)=(?:0x)?([0-9a-fA-F]+)\b")
_STACK_COMMANDS = {"$c", "$C", "::stack", "$c0", "$C0"}
_FINDSTACK = re.compile(r"^([0-9a-fA-F]+)::findstack(?: -v)?$")


def shown(command: str, dump: Dump) -> bool:
    """True when the transcript already holds what `command` would print."""
    cmd = " ".join(command.split())
    if cmd in _STACK_COMMANDS:
        return dump.panic_stack is not None
    if cmd == "::panicinfo" and dump.panicinfo:
        return True
    m = _FINDSTACK.match(cmd)
    if m:
        addr = int(m.group(1), 16)
        return any(t.address == addr and t.kind is not SectionKind.STACKS and any(f.args for f in t.frames)
                   for t in dump.threads)
    first = cmd.split("|", 1)[0].strip()
    ran = {" ".join(s.command.split()) for s in dump.sections if s.command}
    return cmd in ran or first in ran


def signature_hints(sig: Signature, m: Match, dump: Dump) -> tuple[Hint, ...]:
    """What would settle a partial match of `sig`: the other thread's stack, or the crash's own."""
    values = {k: _hex(v) for k, v in m.bound}
    out: list[Hint] = []
    if m.stuck_thread is not None and m.stuck_thread.address is not None:
        values["address"] = _hex(m.stuck_thread.address)
    if m.confidence is Confidence.POSSIBLE or m.stuck_thread is not None:
        _add(out, sig.hints, values, dump)
    if m.confidence is Confidence.POSSIBLE:
        return tuple(out)
    for spec in sig.threads:
        if any(p.role == spec.role for p in m.partners):
            continue
        found = [c for c in m.candidates if c.role == spec.role]
        by_address = [h for h in spec.hints if "address" in template_fields(h.command)]
        # a thread of the right shape whose output shows no arguments: its own ::findstack -v
        for c in found:
            if not c.has_args and c.address is not None:
                _add(out, by_address, {**values, "address": _hex(c.address)}, dump)
        # the role's thread may be one the transcript does not show at all
        _add(out, [h for h in spec.hints if h not in by_address], values, dump)
    return tuple(out)


def crash_kind(dump: Dump, bkt: Bucket) -> CrashKind | None:
    """The kind of crash (data/crash_hints.toml) this dump is: the first whose test passes."""
    message = _message(dump)[:MAX_SUBJECT_LENGTH]
    functions = [f.function.lstrip("~")[:MAX_SUBJECT_LENGTH] for f in crash_frames(dump)]
    bucket_kind = bkt.key.split("|", 1)[0]
    for kind in crash_kinds():
        if kind.bucket and kind.bucket == bucket_kind:
            return kind
        if message:  # a message decides; the frames only speak for a crash whose message is missing
            if kind.message is not None and kind.message.search(message) and (
                    kind.also is None or kind.also.search(message)):
                return kind
        elif kind.frames is not None and any(kind.frames.fullmatch(fn) for fn in functions):
            return kind
    return None


def crash_hints(dump: Dump, bkt: Bucket) -> tuple[Hint, ...]:
    """The commands an engineer runs next on a crash no signature knows, with the dump's addresses."""
    kind = crash_kind(dump, bkt)
    if kind is None:
        return ()
    out: list[Hint] = []
    _add(out, kind.hints, _crash_values(dump), dump)
    return tuple(out)


def _crash_values(dump: Dump) -> dict[str, str]:
    values: dict[str, str] = {}
    message = _message(dump)
    for key, value in _KEYED.findall(message[:MAX_SUBJECT_LENGTH]):
        values.setdefault(key, value.lower())
    trap = dump.trap
    if trap is not None:  # the trap record's banner has them when the message was not captured
        for key, number in (("addr", trap.addr), ("rp", trap.rp)):
            if number is not None:
                values.setdefault(key, _hex(number))
    address = dump.panic_thread_address
    if address is None and dump.panic_thread is not None:
        address = dump.panic_thread.address
    if address is not None:
        values["panic_thread"] = _hex(address)
    frames = crash_frames(dump)
    stuck = None
    if not frames and not message:
        stuck = suspect_thread(dump)
        if stuck is not None:
            frames = stuck.frames
            if stuck.address is not None:
                values["thread"] = _hex(stuck.address)
    first = meaningful_frames(frames)[:1]
    if first:
        values["function"] = first[0].function.lstrip("~")
        if first[0].module:
            values["module"] = first[0].module
    return values


def _message(dump: Dump) -> str:
    # the panic message; without one, what the trap record says of the trap, in the message's words
    message = dump.panic_message
    if message:
        return message
    trap = dump.trap
    if trap is None or trap.type is None:
        return ""
    kind = " ".join(x for x in (trap.mnemonic, trap.name) if x)
    return f"BAD TRAP: type={trap.type}" + (f" ({kind})" if kind else "")


def _add(out: list[Hint], specs: Iterable[Hint], values: Mapping[str, str], dump: Dump) -> None:
    # filled, not yet shown in the transcript, and not given already
    for spec in specs:
        command, _ = fill_story(spec.command, values)
        settles, _ = fill_story(spec.settles, values)
        if command is None or settles is None or shown(command, dump):
            continue
        if all(h.command != command for h in out):
            out.append(Hint(command, settles))


def _hex(value: int) -> str:
    return hex_text(value) or ""
