"""A matched signature's sequence of events, told only as far as the dump's evidence goes.

The steps are the signature's `[[events]]` templates. A step is told only on the path the matched
frames show (`when`), a value the dump does not show is never printed as '?' (the '[...]' segment that
names it is left out, or the step when the value is essential), and what is missing is said once, at
the end. The other thread is named only when it paired; a thread of its shape that did not pair is
said to be there, with the reason it does not count.
"""

from __future__ import annotations

from collections.abc import Iterator

from dumpscope.dump import hex_text
from dumpscope.match import Candidate, Match
from dumpscope.signatures import Operand, Signature, fill_story, fill_template, resolve, template_fields
from dumpscope.verdict import Event

__all__ = ["events", "unpaired_reason"]

_WORDS = frozenset({"a", "an", "the", "thread"})


def events(sig: Signature, m: Match, panic_message: str | None) -> tuple[Event, ...]:
    """The signature's events for this match: its path, its values, and what the dump leaves unknown."""
    if not sig.events:
        return ()
    values = {k: _hex(v) for k, v in m.bound}
    lines = _lines(sig, m)
    derived = _derived(sig, m)
    for name, computed in derived.items():
        values.setdefault(name, computed)
    for name, named in _named_values(sig, m):
        values.setdefault(name, named)
    if panic_message:
        values["panic_message"] = panic_message.strip()
    roles = {spec.role for spec in sig.threads}
    out: list[Event] = []
    unknown: list[str] = []
    told: set[str] = set()  # roles whose unpaired threads of the right shape were told
    for spec in sig.events:
        if spec.when and (m.frame(spec.when.lstrip("!")) is None) != spec.when.startswith("!"):
            continue
        text, missing = fill_story(spec.text, values)
        unknown.extend(n for n in missing if n not in unknown)
        if text is None:
            continue
        used = template_fields(spec.text)
        ev_lines = tuple(sorted({ln for n in used for ln in lines.get(n, ())}))
        # a step that opens with a phrase ('{remover} tears ...': 'a remover thread ...', 'thread ...')
        # starts a sentence with it; a value (an address) or a function name keeps its case
        first = text.split(" ", 1)[0]
        inferred = bool(spec.rests_on) and not any(p.role == spec.rests_on for p in m.partners)
        out.append(Event(_cap(text) if spec.text.startswith("{") and first in _WORDS else text, ev_lines,
                         inferred))
        # the first step naming a thread that did not pair says, once, why its look-alikes do not count
        for role in sorted(roles.intersection(used) - told):
            told.add(role)
            if not any(p.role == role for p in m.partners):
                out.extend(Event(unpaired_reason(c), (c.line,)) for c in m.candidates if c.role == role)
    if unknown:
        out.append(Event("Not shown in this transcript, so left out above: "
                         + ", ".join(_describe(sig, n) for n in unknown) + "."))
    return tuple(out)


def unpaired_reason(c: Candidate) -> str:
    """Why a thread of the right shape is not the one the signature needs, in one sentence."""
    if not c.has_args:
        where = "::stacks" if c.source == "stacks" else c.source
        return (f"{_cap(c.label)} has the {c.role}'s stack, but {where} prints no arguments, so it cannot "
                f"be tied to this crash's values: it may be the {c.role}, or another one.")
    if c.mismatches:
        why = "; ".join(_differs(cl_text, lhs, rhs) for cl_text, lhs, rhs in _mismatch_texts(c))
        return f"{_cap(c.label)} has the {c.role}'s stack but is not this crash's {c.role}: it {why}."
    return f"{_cap(c.label)} has the {c.role}'s stack but does not show enough to pair: {c.reason}."


def _mismatch_texts(c: Candidate) -> Iterator[tuple[str, str, str]]:
    # each side as mdb prints it; a side computed from a bound value says so ('cpu + 0xa0')
    for cl, lhs, rhs in c.mismatches:
        sides = [_hex(v) + (f" (computed as {op})" if op.offset else "") for v, op in ((lhs, cl.lhs), (rhs, cl.rhs))]
        yield (cl.differs or f"{cl.label}: {{lhs}}, not {{rhs}}"), sides[0], sides[1]


def _differs(template: str, lhs: str, rhs: str) -> str:
    return fill_template(template, {"lhs": lhs, "rhs": rhs})


def _named_values(sig: Signature, m: Match) -> Iterator[tuple[str, str]]:
    # The template fields the signature's own data names ('{handler}': a named crash frame pattern,
    # its matched function, else 'the handler'; '{remover}': a [[threads]] role, the thread that
    # paired, else what the transcript shows of that role).
    for pat in sig.crash.frames:
        if pat.name:
            fr = m.frame(pat.name)
            yield pat.name, fr.function if fr is not None else f"the {pat.name}"
    for spec in sig.threads:
        partner = next((p for p in m.partners if p.role == spec.role), None)
        if partner is not None:
            yield spec.role, partner.label
        elif any(c.role == spec.role for c in m.candidates):
            yield spec.role, f"a {spec.role} thread this transcript does not identify"
        else:
            yield spec.role, f"a {spec.role} thread not shown in this transcript"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lines(sig: Signature, m: Match) -> dict[str, tuple[int, ...]]:
    # name -> the transcript lines of the frames its value was read from
    out: dict[str, tuple[int, ...]] = {}
    for name, op in sig.crash.bind:
        fr = m.frame(op.name)
        if fr is not None:
            out[name] = (fr.line,)
    for partner in m.partners:
        out[partner.role] = (partner.line,)
        spec = next((s for s in sig.threads if s.role == partner.role), None)
        for name, op in spec.bind if spec is not None else ():
            fr = next((f for n, f in partner.frames if n == op.name), None)
            if fr is not None:
                out[name] = (fr.line,)
    for name, fr in m.frames:  # a '{handler}' field: the line of the frame it names
        out.setdefault(name, (fr.line,))
    for name, op in sig.derive:
        out.setdefault(name, out.get(op.name, ()))
    return out


def _derived(sig: Signature, m: Match) -> dict[str, str]:
    # computed values, marked as computed: 'fffffdc5496f0de0, computed as cpu + 0xa0'
    bound = dict(m.bound)
    out = {}
    for name, op in sig.derive:
        if name in bound:
            continue
        value = resolve(op, {}, bound)
        if value is not None:
            out[name] = f"{_hex(value)}, computed as {op}"
    return out


def _describe(sig: Signature, name: str) -> str:
    # 'id (cyclic_reprogram.arg0)': the name and where the value would have come from
    where: Operand | None = next((op for n, op in sig.crash.bind if n == name), None)
    if where is None:
        where = next((op for s in sig.threads for n, op in s.bind if n == name), None)
    if where is None:
        where = next((op for n, op in sig.derive if n == name), None)
    return f"{name} ({where})" if where is not None else name


def _hex(value: int) -> str:
    return hex_text(value) or ""
