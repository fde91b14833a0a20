"""Turn a parsed dump into a Verdict: match every signature, pick the best, bucket and explain it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dumpscope.bucket import NO_CRASH_TITLE, Bucket, bucket, crash_frames, frame_name, is_meaningful, suspect_thread
from dumpscope.dump import Dump, hex_text, thread_label
from dumpscope.errors import DumpscopeError
from dumpscope.hints import crash_hints, signature_hints
from dumpscope.match import Match, match
from dumpscope.signatures import Signature, SignatureSet, signature_set
from dumpscope.story import events as story_events
from dumpscope.verdict import Confidence, Fix, FixStatus, ShownFrame, ShownTrap, Verdict

if TYPE_CHECKING:
    from dumpscope.replay import Scenario

__all__ = [
    "CONFIDENCE_ORDER",
    "best_match",
    "fix_status",
    "match_all",
    "nothing_usable",
    "scenario_12476",
    "signature_bucket",
    "site_notes",
    "triage",
    "triage_text",
]

# Strongest first; used to rank matches of different signatures.
CONFIDENCE_ORDER = (Confidence.CONFIRMED, Confidence.PAIRED, Confidence.LIKELY, Confidence.POSSIBLE)
NO_MDB_OUTPUT = "no mdb output found (no ::status, stack, thread or panic message)"


def triage_text(text: str, source: str = "<input>", signatures: SignatureSet | None = None) -> Verdict:
    """Parse a transcript and triage it; an input that cannot be parsed gives an 'error' Verdict."""
    from dumpscope.parse import parse_transcript  # the parser is the lead's module; imported lazily

    try:
        dump = parse_transcript(text, source)
    except DumpscopeError as exc:
        return Verdict(source=source, status="error", error=str(exc))
    return triage(dump, source, signatures, text=text)


def triage(dump: Dump, source: str, signatures: SignatureSet | None = None, text: str | None = None) -> Verdict:
    """The verdict for one parsed dump: matched signature (if any), confidence, bucket, evidence.

    Never raises for an odd dump: a signature that raises while matching becomes a note. Raises
    SignatureFileError only when the signature files themselves are bad. `text`, the transcript, lets
    the bucket name a kmem_error report when the dump shows no panic at all.
    """
    sigs = signatures if signatures is not None else signature_set()
    notes: list[str] = list(dump.notes)
    try:
        bkt = bucket(dump, text)
    except Exception as exc:  # noqa: BLE001 - a bucket bug must not lose the verdict
        notes.append(f"bucketing failed ({type(exc).__name__}: {exc})")
        bkt = Bucket("0000000000", "unknown crash", "", "", ())
    notes.extend(bkt.notes)
    matches, raised = match_all(dump, sigs)
    notes.extend(raised)
    best, others = best_match(matches)
    msg = dump.panic_message
    base = dict(
        source=source,
        status="ok",
        panic_message=msg,
        platform=dump.platform,
        host=dump.status.host if dump.status else None,
        bucket=bkt.id,
        panic_thread=_panic_thread(dump),
        **_shown_stack(dump),
        trap=_shown_trap(dump),
        key_frames=bkt.frames,
    )
    if best is None:
        if dump.empty and bkt.title == NO_CRASH_TITLE:
            # nothing from mdb or the console at all (a README, prose, the wrong file): an error row,
            # which gets no bucket (it is not a crash; bulk summaries must not count it as one)
            return Verdict(source=source, status="error", error=NO_MDB_OUTPUT, bucket="",
                           title=f"error: {NO_MDB_OUTPUT}", notes=tuple(notes))
        notes.extend(site_notes(sigs, bkt.id, None))
        return Verdict(**base, title=bkt.title, hints=crash_hints(dump, bkt),  # type: ignore[arg-type]
                       notes=tuple(notes))
    sig = best.signature
    # a known bug's crashes share one bucket, whatever parts of the transcript are present (::status or
    # not, the remover thread or not): the signature is the bucket
    sig_bucket = base["bucket"] = signature_bucket(sig.id)
    notes.extend(best.notes)
    for o in others:
        notes.append(f"also matches {o.signature.id} ({o.confidence.value})")
    confidence = best.confidence
    replay_line: str | None = None
    unchecked: tuple[str, ...] = ()
    if sig.replay == "cyclic-12476" and confidence is Confidence.PAIRED:
        confidence, replay_line, unchecked, rnotes = _replay_12476(best, dump)
        notes.extend(rnotes)
    fix = fix_status(sig, dump.platform)
    if fix is not None and fix.status is FixStatus.HAS_FIX:
        notes.append(f"matched on a build that already has the fix ({fix.detail}): a regression, "
                     "or a different bug that looks the same")
    events = story_events(sig, best, msg) if best.stack_matched else ()
    notes.extend(site_notes(sigs, sig_bucket, sig))
    return Verdict(
        **base,  # type: ignore[arg-type]
        signature=sig.id,
        confidence=confidence,
        title=_title(sig, confidence, msg),
        bugs=sig.bugs,
        evidence=best.evidence,
        fix=fix,
        events=events,
        hints=signature_hints(sig, best, dump),
        notes=tuple(notes),
        replay=replay_line,
        unchecked=unchecked,
        conclusion=sig.notes or None,
    )


def site_notes(sigs: SignatureSet, bucket_id: str, sig: Signature | None) -> list[str]:
    """The verdict notes a site adds: which site file the signature came from, and the site's
    notes (ticket, owner, text) on this bucket or signature."""
    out = []
    if sig is not None and sig.site:
        replaced = f", replacing the bundled {sig.replaces}" if sig.replaces else ""
        out.append(f"signature {sig.id} from site file {sig.path}{replaced}")
    keys = (bucket_id, sig.id) if sig is not None else (bucket_id,)
    out.extend(f"site note: {n.text()}" for n in sigs.notes_for(*keys))
    return out


def signature_bucket(signature_id: str) -> str:
    """The bucket id of every crash matched to a known signature."""
    return hashlib.sha1(f"signature|{signature_id}".encode()).hexdigest()[:10]


def nothing_usable(dump: Dump, text: str | None = None) -> bool:
    """True when a transcript holds nothing to triage: no mdb output, console or FMA panic record, trap
    record, kmem report or panic-shaped text. `parse` and `triage` both call an input with nothing
    usable an error, and only then."""
    return dump.empty and bucket(dump, text).title == NO_CRASH_TITLE


def match_all(dump: Dump, sigs: SignatureSet) -> tuple[list[Match], list[str]]:
    """Every signature's match of a parsed dump, and a note for each signature that raised (it is
    skipped: one bad rule must not stop the others, as in siggen)."""
    matches: list[Match] = []
    raised: list[str] = []
    for sig in sigs:
        try:
            m = match(dump, sig)
        except Exception as exc:  # noqa: BLE001 - siggen: one bad rule must not stop the others
            raised.append(f"signature {sig.id} raised {type(exc).__name__}: {exc}; skipped")
            continue
        if m is not None:
            matches.append(m)
    return matches, raised


def best_match(matches: Sequence[Match]) -> tuple[Match | None, tuple[Match, ...]]:
    """The strongest match and the others still standing; a match loses to a more specific one."""
    beaten = {other for m in matches for other in m.signature.more_specific_than}
    alive = [m for m in matches if m.signature.id not in beaten]
    if not alive:
        return None, ()
    alive.sort(key=lambda m: (CONFIDENCE_ORDER.index(m.confidence), m.signature.id))
    return alive[0], tuple(alive[1:])


def fix_status(sig: Signature, platform: str | None) -> Fix | None:
    """Whether the platform build predates the signature's fix; None when the signature names no fix."""
    if sig.fix is None:
        return None
    refs = sig.fix.references
    if not platform:
        return Fix(refs, FixStatus.UNKNOWN, "the transcript shows no platform build (::status)")
    for line in sig.fix.lines:
        decided = line.status_of(platform)
        if decided is not None:
            return Fix(refs, decided[0], decided[1])
    return Fix(refs, FixStatus.UNKNOWN, f"cannot date platform build {platform} against the fix")


def _panic_thread(dump: Dump) -> str | None:
    parts = []
    addr = dump.panic_thread_address
    pt = dump.panic_thread
    if addr is None and pt is not None:
        addr = pt.address
    if addr is not None:
        parts.append(f"thread {addr:x}")
    if pt is not None and pt.description:
        parts.append(pt.description)
    if dump.panic_cpu is not None:
        parts.append(f"on cpu {dump.panic_cpu}")
    first = next((f for f in crash_frames(dump) if is_meaningful(f)), None)
    if first is not None:
        parts.append(f"in {frame_name(first)}")
    return " ".join(parts) or None


def _title(sig: Signature, confidence: Confidence, message: str | None) -> str:
    # A `possible` match rests on the panic message alone: its title says that much and no more (the
    # signature's title describes what its stack shows).
    if confidence is Confidence.POSSIBLE and message:
        return f"{message.strip()} (the panic message of {', '.join(sig.bugs)}; no stack in the transcript matches it)"
    return sig.title


def _shown_trap(dump: Dump) -> ShownTrap | None:
    # the panic's trap record, its fields as mdb prints them (bare hex addresses)
    t = dump.trap
    if t is None:
        return None
    kind = " ".join(x for x in (t.mnemonic, t.name) if x)
    fields = [
        ("type", f"{t.type} ({kind})" if t.type and kind else t.type or kind or None),
        ("process", f"{t.process} pid {t.pid}" if t.process and t.pid is not None else t.process),
        ("pc", f"{hex_text(t.pc)}{f' ({t.symbol})' if t.symbol else ''}" if t.pc is not None else t.symbol),
        ("addr", hex_text(t.addr)), ("rp", hex_text(t.rp)), ("sp", hex_text(t.sp)),
        ("cpu", None if t.cpu is None else str(t.cpu)), ("trap level", None if t.level is None else str(t.level)),
    ]
    return ShownTrap(t.line, t.end, tuple((k, v) for k, v in fields if v))


def _shown_stack(dump: Dump) -> dict[str, object]:
    # the panicking thread's frames as the verdict shows them, plumbing marked to be collapsed; without
    # a panic, the frames of the thread a hang is bucketed by (the one on CPU), and whose they are
    frames, owner = crash_frames(dump), None
    if not frames and not dump.panic_message:
        stuck = suspect_thread(dump)
        if stuck is not None:
            frames = stuck.frames
            owner = "the thread on CPU" if stuck.address is None else (
                thread_label(stuck.address, stuck.description)
                + (f", {stuck.state}" if stuck.state else ""))
    return {"stack": tuple(ShownFrame(f.line, f.text, not is_meaningful(f)) for f in frames), "stack_owner": owner}


def scenario_12476(m: Match, dump: Dump) -> Scenario:
    """The replay scenario of an illumos-12476 match, filled with this dump's own values.

    Without a paired remover thread the scenario says so (remover_blocked False), and replay will
    not confirm: the model can show the race, but not that this dump is an instance of it.
    """
    from dumpscope.replay import Scenario  # the reference model: only a 12476 match needs it

    remover = m.partners[0] if m.partners else None
    own = dict(remover.bound) if remover else {}
    handler = m.frame("handler")
    ndx = m.value("ndx")
    return Scenario(
        cpu=m.value("cpu") or 0,
        ndx=ndx if ndx is not None else -1,  # replay refuses a negative index, with a reason
        cyclic_id=m.value("id"),
        handler=handler.function if handler is not None else "vmm_glue_callout_handler",
        remover_thread=remover.address if remover else None,
        remover_process=(remover.description or "").strip("()") or None if remover else None,
        two_pending=m.frame("cyclic_remove_pend") is not None,
        remover_blocked=remover is not None and any(name == "sema_p" for name, _ in remover.frames),
        # None when the transcript shows no panic message: the replay then says it could not compare it
        expected_panic=dump.panic_message.strip() if dump.panic_message else None,
        remover_cpu=own.get("remover_cpu"),
        remover_ndx=own.get("remover_ndx"),
        remover_sema=own.get("remover_sema"),
        remover_cyclic_id=own.get("remover_cyclic_id"),
        expire=m.value("expire"),
        # the signature excludes cyclic_reprogram_xcall, so a matched stack is the local path
        local=True,
    )


def _replay_12476(m: Match, dump: Dump) -> tuple[Confidence, str | None, tuple[str, ...], list[str]]:
    # issue 4: a paired 12476 match is `confirmed` only when the reference model replays the dump's own
    # values to the same end state (and the fixed model does not panic).
    from dumpscope.replay import replay  # the reference model: only a 12476 match needs it

    try:
        result = replay(scenario_12476(m, dump), schedules=False)  # the verdict shows only the reason
    except DumpscopeError as exc:  # a model invariant broke: keep the pairing, say why
        return Confidence.PAIRED, None, (), [f"replay failed ({exc}); not confirmed"]
    if result.confirmed:
        head = "replay confirms, in part: " if result.absent else "replay confirms: "
        return Confidence.CONFIRMED, head + result.reason, result.absent, []
    line = "replay does not confirm: " + result.reason
    return Confidence.PAIRED, line, (), [line]

