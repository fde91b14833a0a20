"""Match one dump against one signature: ordered frame patterns, value bindings and cross-thread pairing."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain
from operator import attrgetter

from dumpscope.bucket import crash_frames, is_meaningful, is_unresolved, meaningful_frames
from dumpscope.dump import Dump, Frame, Stack, Thread, hex_text, thread_label
from dumpscope.signatures import (
    MAX_SUBJECT_LENGTH,
    Clause,
    CrashSpec,
    FramePattern,
    Kind,
    Operand,
    Signature,
    ThreadSpec,
    resolve,
)
from dumpscope.verdict import Confidence, Evidence

__all__ = ["Candidate", "Match", "match", "match_frames"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A thread whose stack has the shape a signature's other thread needs, and how it compares."""

    role: str  # the ThreadSpec role ('remover')
    address: int | None  # kthread_t address; None for a standalone stack
    description: str | None  # '(bhyve/1 [vcpu 0])'
    line: int  # line of the thread header (or first frame)
    source: str  # 'findstack', 'stacks', 'threadlist' or 'stack'
    has_args: bool  # False for ::stacks, which prints no arguments
    frames: tuple[tuple[str, Frame], ...]  # pattern name -> matched frame
    bound: tuple[tuple[str, int], ...]  # this thread's own bindings ('sema')
    evidence: tuple[Evidence, ...]  # one per clause that could be checked
    paired: bool  # every required clause shown and agreeing, no contradiction
    reason: str  # why it does not pair ('' when paired)
    mismatches: tuple[tuple[Clause, int, int], ...] = ()  # clauses that do not hold: (clause, lhs, rhs)

    @property
    def label(self) -> str:
        """'thread fffffe55d37b8080 (bhyve/1 [vcpu 0])' or 'stack at line 40'."""
        if self.address is None:
            return f"{self.source} at line {self.line}"
        return thread_label(self.address, self.description)


@dataclass(frozen=True, slots=True)
class Match:
    """A signature that matched a dump, with everything a report needs to show why."""

    signature: Signature
    confidence: Confidence
    evidence: tuple[Evidence, ...]  # message, frames, then each clause against each candidate
    bound: tuple[tuple[str, int], ...]  # values bound from the crash stack and the paired threads
    frames: tuple[tuple[str, Frame], ...]  # crash pattern name -> matched frame
    partners: tuple[Candidate, ...] = ()  # the paired threads (one per role)
    candidates: tuple[Candidate, ...] = ()  # every thread that had the right shape, paired or not
    notes: tuple[str, ...] = ()  # near-misses and why they do not pair, contradictions
    message_matched: bool | None = None  # None when the transcript shows no panic message
    stack_matched: bool | None = None  # None when the transcript shows no crash stack
    stuck_thread: Thread | None = None  # for a hang signature: the thread that matched

    def value(self, name: str) -> int | None:
        """A bound value by name ('cpu', 'ndx', 'sema'), or None."""
        for key, val in self.bound:
            if key == name:
                return val
        return None

    def frame(self, name: str) -> Frame | None:
        """The crash frame matched by the pattern of this name, or None."""
        for key, fr in self.frames:
            if key == name:
                return fr
        return None


# ---------------------------------------------------------------------------------------------------
# Frame patterns


def _frame_matches(pat: FramePattern, frame: Frame) -> bool:
    # the name test first: it rejects nearly every frame, and is cheaper than the unresolved test
    lits = pat.literals
    if lits is not None:
        if not _in(frame.function, lits):
            return False
    elif pat.function.fullmatch(frame.function.lstrip("~")[:MAX_SUBJECT_LENGTH]) is None:
        return False
    return _frame_ok(pat, frame)


def _in(function: str, names: frozenset[str]) -> bool:
    # fullmatch of a plain-names pattern against the '~'-stripped name (names hold no '~', and none is
    # longer than the subject cut, so cutting cannot matter)
    return function in names or (function[:1] == "~" and function.lstrip("~") in names)


def _frame_ok(pat: FramePattern, frame: Frame) -> bool:
    # the tests after the name: a resolved frame, and a module that agrees when both show one
    if is_unresolved(frame):
        return False
    # $C prints bare function names (module None); console tracebacks print 'module:function'.
    return pat.module is None or frame.module is None or pat.module.fullmatch(frame.module) is not None


def match_frames(
    patterns: Sequence[FramePattern], frames: Sequence[Frame], anchored: bool = False
) -> tuple[tuple[FramePattern, Frame], ...] | None:
    """Match ordered patterns against frames (innermost first), other frames allowed between them.

    Required patterns take the earliest matching frame, which is optimal for a subsequence; an optional
    pattern is looked for only before the frame the next required pattern takes. With `anchored`, the
    first pattern must match the first meaningful frame (plumbing such as vpanic and unresolved
    addresses skipped). Linear in len(frames) * len(patterns).
    """
    pos = 0
    if anchored:
        first = next((i for i, f in enumerate(frames) if is_meaningful(f)), None)
        if first is None or not _frame_matches(patterns[0], frames[first]):
            return None
        pos = first
    out: list[tuple[FramePattern, Frame]] = []
    for k, pat in enumerate(patterns):
        if not pat.optional:
            j = _find(pat, frames, pos, len(frames))
            if j is None:
                return None
            out.append((pat, frames[j]))
            pos = j + 1
            continue
        limit = len(frames)
        nxt = next((p for p in patterns[k + 1:] if not p.optional), None)
        if nxt is not None:
            found = _find(nxt, frames, pos, len(frames))
            limit = found if found is not None else len(frames)
        j = _find(pat, frames, pos, limit)
        if j is not None:
            out.append((pat, frames[j]))
            pos = j + 1
    return tuple(out)


def _find(pat: FramePattern, frames: Sequence[Frame], start: int, stop: int) -> int | None:
    lits = pat.literals
    if lits is None:
        for j in range(start, stop):
            if _frame_matches(pat, frames[j]):
                return j
        return None
    # the common case, a plain name: a set lookup per frame, inlined (this loop is the matcher's hot spot)
    for j in range(start, stop):
        fn = frames[j].function
        if (fn in lits or (fn[:1] == "~" and fn.lstrip("~") in lits)) and _frame_ok(pat, frames[j]):
            return j
    return None


def _named(hit: Sequence[tuple[FramePattern, Frame]]) -> tuple[tuple[str, Frame], ...]:
    return tuple((p.name or p.function.pattern, f) for p, f in hit)


def _args(named: Sequence[tuple[str, Frame]]) -> dict[str, tuple[int, ...] | None]:
    return {name: fr.args for name, fr in named}


def _bind(
    bind: Sequence[tuple[str, Operand]], named: Sequence[tuple[str, Frame]]
) -> tuple[dict[str, int], dict[str, int]]:
    # name -> value and name -> transcript line of the frame it came from
    args = _args(named)
    lines = {name: fr.line for name, fr in named}
    values: dict[str, int] = {}
    where: dict[str, int] = {}
    for name, op in bind:
        v = resolve(op, args, {})
        if v is not None:
            values[name] = v
            where[name] = lines.get(op.name, 0)
    return values, where


# ---------------------------------------------------------------------------------------------------
# Matching


def match(dump: Dump, sig: Signature) -> Match | None:
    """Match a dump against a signature; None when it does not match at all.

    Confidence: `paired` when the crash stack matches and every other thread the signature needs is
    found and agrees by value; `likely` when the crash stack matches but no such thread can be
    checked; `possible` when only a specific panic message matches.
    """
    if sig.kind is Kind.HANG:
        return _match_hang(dump, sig)
    return _match_panic(dump, sig)


def _match_panic(dump: Dump, sig: Signature) -> Match | None:
    crash = sig.crash
    evidence: list[Evidence] = []
    notes: list[str] = []
    msg = dump.panic_message
    msg_ok: bool | None = None
    if msg and crash.message is not None:
        msg_ok = crash.message.search(msg[:MAX_SUBJECT_LENGTH]) is not None
        if not msg_ok:
            return None  # a different panic, whatever the stack looks like
        msg_line = dump.panic_message_line
        evidence.append(Evidence("panic message", (msg_line,) if msg_line else (), True, msg.strip()))

    frames = crash_frames(dump)
    stack_ok: bool | None = None
    named: tuple[tuple[str, Frame], ...] = ()
    if frames:
        hit = match_frames(crash.frames, frames, crash.anchored)
        excluded = _excluded(crash, frames)
        stack_ok = hit is not None and not excluded
        if hit is not None and not excluded:
            named = _named(hit)
            for name, fr in named:
                evidence.append(Evidence(f"panic stack frame {_role(name, fr)}", (fr.line,), True, fr.text))
        elif excluded:
            notes.append(
                f"the panic stack has {excluded[0].label} (line {excluded[0].line}), which {sig.id} excludes"
            )
            ex = excluded[0]
            evidence.append(Evidence(f"no {ex.function} in panic stack", (ex.line,), False, ex.label))
        else:
            first = meaningful_frames(frames)
            at = f"; it starts at {first[0].label} (line {first[0].line})" if first else ""
            notes.append(f"the panic stack does not have the frames {sig.id} needs{at}")

    if stack_ok:
        confidence = Confidence.LIKELY
    elif msg_ok and crash.message_suffices:
        confidence = Confidence.POSSIBLE
    else:
        return None

    values, where = _bind(crash.bind, named)
    candidates: list[Candidate] = []
    partners: list[Candidate] = []
    if confidence is Confidence.POSSIBLE:
        if not frames:
            notes.append("the transcript has no panic stack; only the panic message could be checked")
    for spec in sig.threads:
        found = _candidates(dump, spec, values, where)
        candidates.extend(found)
        paired = [c for c in found if c.paired]
        if confidence is Confidence.POSSIBLE:
            for c in found:
                notes.append(f"{spec.role}-shaped {c.label} (line {c.line}) found, but without a matching "
                             "panic stack there is nothing to pair it with")
            continue
        if paired:
            partners.append(paired[0])
        for c in found:
            evidence.extend(c.evidence)
            if not c.paired:
                notes.append(f"{spec.role}-shaped {c.label} (line {c.line}) does not pair: {c.reason}")
    if confidence is Confidence.LIKELY and sig.threads and len(partners) == len(sig.threads):
        confidence = Confidence.PAIRED
    elif confidence is Confidence.LIKELY and sig.threads and not candidates:
        notes.append(
            "no " + " or ".join(s.role for s in sig.threads) + " thread with arguments is in the transcript"
        )
    for p in partners:
        for k, v in p.bound:
            values.setdefault(k, v)
    return Match(
        signature=sig,
        confidence=confidence,
        evidence=tuple(evidence),
        bound=tuple(values.items()),
        frames=named,
        partners=tuple(partners),
        candidates=tuple(candidates),
        notes=tuple(notes),
        message_matched=msg_ok,
        stack_matched=stack_ok,
    )


def _excluded(crash: CrashSpec, frames: Sequence[Frame]) -> list[Frame]:
    # the frames whose function the signature excludes, in stack order
    if not crash.exclude:
        return []
    names = crash.exclude_names
    if names is not None:
        return [f for f in frames if _in(f.function, names)]
    return [
        f for f in frames
        if any(p.fullmatch(f.function.lstrip("~")[:MAX_SUBJECT_LENGTH]) for p in crash.exclude)
    ]


def _match_hang(dump: Dump, sig: Signature) -> Match | None:
    msg = dump.panic_message
    evidence: list[Evidence] = []
    msg_ok: bool | None = None
    if msg:
        if sig.crash.message is None or sig.crash.message.search(msg[:MAX_SUBJECT_LENGTH]) is None:
            return None  # a real panic is not a hang
        msg_ok = True
        msg_line = dump.panic_message_line
        evidence.append(Evidence("panic message of a forced dump", (msg_line,) if msg_line else (), True, msg.strip()))
    sources = _sources(dump)
    for i in _shaped(sig.crash.frames, sources):
        src, frames, thread = _source(sources[i])
        hit = match_frames(sig.crash.frames, frames, sig.crash.anchored)
        if hit is None:
            continue
        named = _named(hit)
        who = _who(thread, src, frames)
        for name, fr in named:
            evidence.append(Evidence(f"stuck thread frame {_role(name, fr)}", (fr.line,), True, f"{who}: {fr.text}"))
        notes = () if msg else ("no panic in the transcript: a hang",)
        return Match(sig, Confidence.LIKELY, tuple(evidence), (), named, notes=notes,
                     message_matched=msg_ok, stack_matched=True, stuck_thread=thread)
    return None


def _who(thread: Thread | None, src: str, frames: Sequence[Frame]) -> str:
    if thread is not None and thread.address is not None:
        return thread_label(thread.address, thread.description)
    return f"{src} at line {frames[0].line if frames else 0}"


def _sources(dump: Dump) -> list[Thread | Stack]:
    # Every stack of the dump, the panicking ones included: ::findstack/::stacks/::threadlist threads,
    # then standalone stacks ($C, $C on an address, an unprompted block). Looking for another thread
    # of a signature, _candidates leaves out the panicking ones (_is_panic), asking only of the few
    # that _shaped lets by.
    return [*dump.threads, *dump.stacks]


def _is_panic(dump: Dump, s: Thread | Stack) -> bool:
    if isinstance(s, Thread):
        return s.is_panic or (s.address is not None and s.address == dump.panic_thread_address)
    return s is dump.panic_stack


def _source(s: Thread | Stack) -> tuple[str, tuple[Frame, ...], Thread | None]:
    # (kind of output, frames, thread); asked only of the sources that get past _shaped
    if isinstance(s, Thread):
        return s.kind.value, s.frames, s
    return "stack", s.frames, None


_FRAMES = attrgetter("frames")
_FUNCTION = attrgetter("function")


def _shaped(patterns: Sequence[FramePattern], sources: Sequence[Thread | Stack]) -> Iterable[int]:
    """Indices (in order) of the sources whose stacks may match `patterns`: every source that shows a
    name of the rarest required plain-name pattern; every source when no such test is exact."""
    # Why: a dump has dozens of sleeping threads and at most a few of the right shape. Every step here
    # runs at C speed over all frames at once (a Python loop per thread costs more than the matching).
    needs = [p.literals for p in patterns if not p.optional and p.literals is not None]
    if not needs:
        return range(len(sources))
    names = list(map(_FUNCTION, chain.from_iterable(map(_FRAMES, sources))))
    counts = Counter(names)
    if "~" in "".join(counts):
        return range(len(sources))  # the matcher strips a leading '~'; the raw names would not do
    rare = min(needs, key=lambda need: sum([counts[n] for n in need]))
    if not any(counts[n] for n in rare):
        return ()
    ends = list(accumulate(map(len, map(_FRAMES, sources))))  # frame positions where each source ends
    hits: set[int] = set()
    for name in rare:
        at = -1
        while True:
            try:
                at = names.index(name, at + 1)
            except ValueError:
                break
            hits.add(bisect_right(ends, at))
    return sorted(hits)


def _candidates(dump: Dump, spec: ThreadSpec, values: Mapping[str, int], where: Mapping[str, int]) -> list[Candidate]:
    out = []
    sources = _sources(dump)
    for i in _shaped(spec.frames, sources):
        if _is_panic(dump, sources[i]):
            continue
        src, frames, thread = _source(sources[i])
        hit = match_frames(spec.frames, frames)
        if hit is None:
            continue
        named = _named(hit)
        # console tracebacks print "()" for every frame: an empty list shows no values either
        has_args = any(fr.args for _, fr in named)
        own, own_where = _bind(spec.bind, named)
        evidence: list[Evidence] = []
        mismatches: list[tuple[Clause, int, int]] = []
        contradictions: list[str] = []
        unknown: list[str] = []
        args = _args(named)
        lines = {name: fr.line for name, fr in named}
        names = {**values, **own}
        who = _who(thread, src, frames)
        for cl in spec.require:
            lhs = resolve(cl.lhs, args, names)
            rhs = resolve(cl.rhs, args, names)
            if lhs is None or rhs is None:
                if not cl.optional:
                    unknown.append(cl.label)
                continue
            sides = (_line(cl.lhs, lines, where, own_where), _line(cl.rhs, lines, where, own_where))
            ev_lines = tuple(sorted({ln for ln in sides if ln}))
            detail = f"{cl.lhs} = {hex_text(lhs) or '?'}, {cl.rhs} = {hex_text(rhs) or '?'}"
            if lhs == rhs:
                evidence.append(Evidence(f"{spec.role}: {cl.label}", ev_lines, True, f"{who}: {detail}"))
            else:
                evidence.append(Evidence(f"{spec.role}: {cl.label}", ev_lines, False, f"{who}: {detail}"))
                contradictions.append(f"{cl.label} does not hold ({detail})")
                mismatches.append((cl, lhs, rhs))
        if not has_args:
            reason = f"{_src(src)} shows no arguments, so its values cannot be compared"
        elif contradictions:
            reason = "; ".join(contradictions)
        elif unknown:
            reason = "not shown: " + "; ".join(unknown)
        else:
            reason = ""
        out.append(Candidate(
            role=spec.role,
            address=thread.address if thread is not None else None,
            description=thread.description if thread is not None else None,
            line=thread.line if thread is not None else (frames[0].line if frames else 0),
            source=src,
            has_args=has_args,
            frames=named,
            bound=tuple(own.items()),
            evidence=tuple(evidence),
            paired=has_args and not reason,
            reason=reason,
            mismatches=tuple(mismatches),
        ))
    # a paired thread first, then threads with arguments, then ::stacks-only ones
    out.sort(key=lambda c: (not c.paired, not c.has_args))
    return out


def _line(
    op: Operand, lines: Mapping[str, int], crash_where: Mapping[str, int], own_where: Mapping[str, int]
) -> int | None:
    if op.index is not None:
        return lines.get(op.name)
    return own_where.get(op.name) or crash_where.get(op.name)


def _role(name: str, frame: Frame) -> str:
    # a clause names the pattern's role and the function it matched: 'timer (vhpet_start_timer)'
    fn = frame.function.lstrip("~")
    return name if name == fn else f"{name} ({fn})"



def _src(src: str) -> str:
    # 'stacks' -> '::stacks' (the dcmd), 'stack' stays a standalone stack
    return src if src == "stack" else f"::{src}"
