"""Stable buckets and human titles for any crash: normalised panic message plus the first meaningful frames."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dumpscope.dump import BAD_TRAP, Dump, Frame, SectionKind, Thread, Trap
from dumpscope.signatures import MAX_SUBJECT_LENGTH, load_irrelevant_frames

__all__ = [
    "BUCKET_FRAMES",
    "UNREADABLE_TITLE",
    "Bucket",
    "bucket",
    "crash_frames",
    "frame_name",
    "is_meaningful",
    "is_plumbing",
    "is_unresolved",
    "meaningful_frames",
    "normalise_message",
    "panic_shaped",
    "recursion",
    "suspect_thread",
]

# How many meaningful frames go into the bucket key (syzkaller uses the first one for the title and a
# few for the key; three keeps different callers of a common helper apart).
BUCKET_FRAMES = 3
# A console traceback symbolizes an address it cannot resolve to the nearest preceding symbol with a
# huge offset ('vmm:vmm_zsd_key+37dddca1', 'genunix:process_type+16c210'; mdb-formats §10). No real
# illumos kernel function is this long, so such a frame is treated as unresolved.
MISSYMBOLIZED_OFFSET = 0x10000


@dataclass(frozen=True, slots=True)
class Bucket:
    """Where a crash groups, and what to call it."""

    id: str  # 10 hex chars of sha1 over key
    title: str  # "BAD TRAP: page fault (NULL pointer dereference) in fss_update_list"
    key: str  # the text that was hashed: kind | normalised message | frames
    message: str  # the normalised panic message ('' when none)
    frames: tuple[str, ...]  # the meaningful frames' function names, innermost first
    notes: tuple[str, ...] = ()  # what the bucketing saw and could not use (panic-shaped text, with lines)


@functools.cache
def _irrelevant() -> re.Pattern[str]:
    # one alternation of every plumbing pattern, matched once per name (checked one by one at load)
    return re.compile("|".join(f"(?:{p.pattern})" for p in load_irrelevant_frames()))


def is_unresolved(frame: Frame) -> bool:
    """True for a raw address, or a console frame mis-symbolized with an impossibly large offset."""
    if _unresolved_name(frame.function):
        return True
    return frame.offset is not None and frame.offset >= MISSYMBOLIZED_OFFSET


def is_plumbing(frame: Frame) -> bool:
    """True when the frame is panic/trap/interrupt/sleep plumbing listed in data/irrelevant_frames.txt."""
    return _plumbing_name(frame.function, frame.module)


# Why caches: every triage asks these of the same few hundred kernel function names, over and over
# (bucket, panic thread, each anchored signature); both answers depend on the names alone.
@functools.lru_cache(maxsize=16384)
def _unresolved_name(function: str) -> bool:
    return Frame(0, function).unresolved or function.startswith("0x")


@functools.lru_cache(maxsize=16384)
def _plumbing_name(function: str, module: str | None) -> bool:
    fn = function.lstrip("~")[:MAX_SUBJECT_LENGTH]
    plumbing = _irrelevant().fullmatch
    if plumbing(fn):
        return True
    return bool(module) and bool(plumbing(f"{module}:{fn}") or plumbing(f"{module}`{fn}"))


@functools.lru_cache(maxsize=16384)
def _dull_name(function: str, module: str | None) -> bool:
    # unresolved or plumbing, whatever the offset: one cache lookup per frame in meaningful_frames
    return _unresolved_name(function) or _plumbing_name(function, module)


def is_meaningful(frame: Frame) -> bool:
    """True when the frame says where a crash happened: neither unresolved nor plumbing."""
    return not _dull_name(frame.function, frame.module) and (
        frame.offset is None or frame.offset < MISSYMBOLIZED_OFFSET
    )


def meaningful_frames(frames: Iterable[Frame]) -> tuple[Frame, ...]:
    """The frames that say where the crash happened: plumbing and unresolved addresses dropped."""
    dull = _dull_name
    return tuple(
        f for f in frames
        if not dull(f.function, f.module) and (f.offset is None or f.offset < MISSYMBOLIZED_OFFSET)
    )


def frame_name(frame: Frame) -> str:
    """'fss_update_list', or 'kvm:kvm_create_vm' when a console traceback names a non-core module."""
    fn = frame.function.lstrip("~")
    if frame.module and frame.module not in ("unix", "genunix"):
        sep = "`" if ".so" in frame.module else ":"
        return f"{frame.module}{sep}{fn}"
    return fn


def crash_frames(dump: Dump) -> tuple[Frame, ...]:
    """The panicking thread's frames: the panic stack, else the thread marked as panicking."""
    if dump.panic_stack is not None and dump.panic_stack.frames:
        return dump.panic_stack.frames
    pt = dump.panic_thread
    return pt.frames if pt is not None else ()


def suspect_thread(dump: Dump) -> Thread | None:
    """For a dump without a panic: the thread most likely to be the stuck one, or None.

    A thread on CPU (state RUN/ONPROC) wins; otherwise a thread someone chose to ::findstack, when
    there is exactly one. Threads that ::stacks shows asleep are the normal state of a kernel.
    """
    live = [t for t in dump.threads if meaningful_frames(t.frames)]
    running = [t for t in live if (t.state or "").upper() in ("RUN", "ONPROC")]
    if running:
        return running[0]
    chosen = [t for t in live if t.kind is SectionKind.FINDSTACK]
    if len(chosen) == 1:
        return chosen[0]
    return None


# ---------------------------------------------------------------------------------------------------
# Message normalisation

# 'key=value' numbers that vary between dumps of the same crash (mdb-formats §2 message families)
_KEYED = re.compile(r"\b(rp|addr|lp|owner|thread|wwwh|mmu_fsr|offset|size|buf|bufctl|pc|sp)=[0-9a-fA-Fx]+")
# hex or decimal numbers; words of 8+ letters a-f count as addresses too ('deadbeef')
_NUMBER = re.compile(r"\b(0x[0-9a-fA-F]+|[0-9a-fA-F]*[0-9][0-9a-fA-F]*|[a-fA-F]{8,16})\b")
_SPACE = re.compile(r"\s+")


def normalise_message(message: str | None) -> str:
    """The panic message with addresses and numbers masked, so the same crash gets the same text."""
    if not message:
        return ""
    return _normalise(message[:MAX_SUBJECT_LENGTH])  # only this much is read: a bounded cache key


# Why a cache: in a bulk run most dumps share a handful of panic messages, and bucket and title
# both normalise the same one.
@functools.lru_cache(maxsize=4096)
def _normalise(message: str) -> str:
    text = _SPACE.sub(" ", message[:MAX_SUBJECT_LENGTH]).strip()
    text = text.replace("\\x0a", "").rstrip()
    text = _KEYED.sub(lambda m: f"{m.group(1)}=N", text)

    def _num(m: re.Match[str]) -> str:
        # keep trap types: 'type=e' and 'type=31' name the trap, they are not addresses
        if text[max(0, m.start() - 5):m.start()] == "type=":
            return m.group(0)
        return "N"

    return _NUMBER.sub(_num, text)


# ---------------------------------------------------------------------------------------------------
# Recursion and trap records

# A cycle must repeat at least this many consecutive frames to count as recursion (one repeated
# function is ordinary: a helper called twice on the way down).
_CYCLE_MIN = 2


def recursion(frames: Sequence[Frame]) -> tuple[str, ...]:
    """The functions of a repeating cycle in a stack (innermost first), or () when none repeats.

    A stack that overflowed through recursion shows the same run of callers at two places, one cycle
    apart (smartos-live#143: ill_input_short_v4 -> ip_input_common_v4 -> ip_input -> dls_rx_promisc,
    thirteen frames apart). Plumbing and unresolved frames are left out before comparing.
    """
    names = [f.function.lstrip("~") for f in meaningful_frames(frames)]
    for i, name in enumerate(names):
        best: tuple[str, ...] = ()
        for j in range(i + 1, len(names)):
            if names[j] != name:
                continue
            run = 0
            while j + run < len(names) and i + run < j and names[i + run] == names[j + run]:
                run += 1
            if run >= _CYCLE_MIN and run > len(best):
                best = tuple(names[i:i + run])
        if best:
            return best  # the innermost cycle names the recursion
    return ()


def _trap_where(trap: Trap) -> str:
    # what a trap record says about where it happened: the pc's symbol, else the pc; and the process
    parts = []
    if trap.process:
        parts.append(f"process {trap.process}")
    if trap.symbol:
        parts.append(f"at {trap.symbol}")
    elif trap.pc is not None:
        parts.append(f"pc {trap.pc:#x}")
    return f" ({', '.join(parts)})" if parts else ""


def _trap_key(trap: Trap) -> str:
    # the symbol names the code; without one the pc does (on one build); the process says who
    pc = f"{trap.pc:x}" if trap.pc is not None and not trap.symbol else ""
    return " ".join(x for x in (f"type={trap.type}" if trap.type else "", trap.symbol or "", pc,
                                trap.process or "") if x)


def _trap_title(trap: Trap) -> str:
    # a trap record without a panic message: say what it is and where
    name = f" ({trap.name.lower()})" if trap.name else ""
    level = f" at TL={trap.level}" if trap.level is not None else ""
    return f"trap type={trap.type}{name}{level}{_trap_where(trap)} (panic message not captured)"


# ---------------------------------------------------------------------------------------------------
# Panic-shaped text the parser could not use

UNREADABLE_TITLE = "unreadable panic record"
# the shapes of the records themselves (not prose that mentions a panic)
_PANIC_SHAPED = re.compile(
    r"panic\[cpu\d+\]/thread=|BAD TRAP: type=|reboot after panic:|ireport\.os\.sunos\.panic\."
    r"|defect\.sunos\.kernel\.panic|\bpanicstr\s*[=:]|panic string:|assertion failed: .*, file: .*, line: \d"
)
# a panic a stack overflow causes: a double fault (its handler runs on its own stack), or a message saying so
_OVERFLOW = re.compile(r"#df|double fault|stack overflow|red zone", re.IGNORECASE)


def panic_shaped(text: str | None) -> tuple[int, ...]:
    """Lines (1-based, at most ten) that look like part of a panic record: a panic line, a trap
    message, an FMA panic event. Read only when nothing else in a transcript shows a crash."""
    if not text:
        return ()
    found = []
    for n, line in enumerate(text.splitlines()[:20000], 1):
        if _PANIC_SHAPED.search(line[:MAX_SUBJECT_LENGTH]):
            found.append(n)
            if len(found) >= 10:
                break
    return tuple(found)


def _spans(lines: Sequence[int]) -> str:
    return ", ".join(str(n) for n in lines[:5]) + (", ..." if len(lines) > 5 else "")


# ---------------------------------------------------------------------------------------------------
# Titles

_TRAP_MODULE = re.compile(r'occurred in module "(?P<mod>[^"]+)"(?: due to (?P<why>.*))?')
_ASSERT = re.compile(r"^(assertion failed: |VERIFY)|, file: [^,]+, line: \d+|, file: \S+ line \d+")
_MUTEX = re.compile(
    r"^(?P<what>(recursive )?(mutex|rw)_[a-z_]+(: [a-z ]+)?|recursive (mutex_enter|rw_enter)), (lp|wwwh)="
)
_ZFS_RECOVER = re.compile(r"^zfs: (?P<what>[a-z ]+?)(?: ?\(|$)")


def _where(frames: Sequence[Frame]) -> str:
    return f" in {frame_name(frames[0])}" if frames else ""


def _is_userland(dump: Dump, all_frames: Sequence[Frame]) -> bool:
    # a process core: ::status says so, or the stack runs through shared objects ('libc.so.1`abort')
    if dump.status is not None:
        return not dump.status.is_kernel
    return any(f.module is not None and ".so" in f.module for f in all_frames)


def _title(dump: Dump, message: str, frames: Sequence[Frame], all_frames: Sequence[Frame]) -> str:
    where = _where(frames)
    names = {f.function.lstrip("~") for f in all_frames}
    if _is_userland(dump, all_frames):
        what = message.strip().lstrip("*").strip() if message else "process core"
        what = what.replace("\\x0a", "").strip()
        return f"userland core: {what}{where}"
    if message:
        m = BAD_TRAP.match(message)  # (match: the message starts with the banner)
        if m:
            kind = (m.group("name") or "").strip().lower() or f"type={m.group('type')}"
            mm = _TRAP_MODULE.search(message)
            why = ""
            if mm and mm.group("why"):
                # 'due to a NULL pointer dereference' -> '(NULL pointer dereference)'
                why = " (" + re.sub(r"^(a|an) ", "", mm.group("why").strip().rstrip(".")) + ")"
            if not where and mm:
                where = f" in {mm.group('mod')}"
            trap = dump.trap
            if not frames and trap is not None:
                where += _trap_where(trap)  # no stack: say what the banner says (process, pc)
            return f"BAD TRAP: {kind}{why}{where}"
        m2 = _MUTEX.match(message)
        if m2:
            return f"{m2.group('what')}{where}"
        if "zfs_panic_recover" in names or message.startswith("zfs: "):
            mz = _ZFS_RECOVER.match(message)
            what = f"zfs: {mz.group('what')}" if mz else "zfs_panic_recover"
            return f"{what}{where}"
        if _ASSERT.search(message):
            return f"assertion failed{where}"
        short = normalise_message(message)
        if len(short) > 80:
            short = short[:77].rstrip() + "..."
        return f"{short}{where}"
    # no panic message in the transcript: say what the trap record and the stack show
    trap = dump.trap
    if trap is not None and trap.type:
        name = f" ({trap.name.lower()})" if trap.name else ""
        return f"trap type={trap.type}{name}{where or _trap_where(trap)}"
    if names & {"die", "trap", "cmntrap", "_cmntrap"}:
        return f"BAD TRAP{where}" if where else "BAD TRAP (panic message not captured)"
    if "zfs_panic_recover" in names:
        return f"zfs_panic_recover{where}"
    if names & {"assfail", "assfail3"}:
        return f"assertion failed{where}"
    if "mutex_panic" in names:
        return f"mutex panic{where}"
    if all_frames:
        if not frames:
            return "panic (no meaningful frames)"
        if names & {"vpanic", "panic", "panicsys"}:
            return f"panic{where}"
        return f"crash{where} (panic message not captured)"
    return ""


def bucket(dump: Dump, text: str | None = None) -> Bucket:
    """The bucket of a dump: the same crash with different addresses always gets the same id.

    `text` is the transcript itself; it is only read when the dump shows neither a panic message nor
    a stack, to name a kmem_error report the parser keeps as raw text (corpus 022).
    """
    all_frames = crash_frames(dump)
    message = dump.panic_message or ""
    kind = "panic"
    title = ""
    notes: list[str] = []
    extra = ""  # what else keys the bucket: the trap record of a crash without a stack, a recursion's cycle
    frames = meaningful_frames(all_frames)[:BUCKET_FRAMES]
    report = _kmem_report(text) if text and not message and not all_frames else None
    trap = dump.trap
    if report:
        kind = "kmem"
        message = report
        title = f"kmem_error: {report} (panic message not captured)"
    # recursion() compares every pair of frames: only when a missing or overflow message asks for it
    elif (not message or _OVERFLOW.search(message)) and (cycle := recursion(all_frames)):
        kind = "recursion"
        frames = ()
        extra = " ".join(cycle)
        title = f"stack overflow: recursion through {' -> '.join(cycle[:3])}"
    elif not message and not all_frames:
        suspect = suspect_thread(dump)
        shaped = panic_shaped(text) if trap is None and dump.fma is None and suspect is None else ()
        if trap is not None:
            kind = "trap"
            extra = _trap_key(trap)
            title = _trap_title(trap)
        elif dump.fma is not None or shaped:
            kind = "unreadable"
            title = UNREADABLE_TITLE
            if dump.fma is None:
                notes.append(f"panic-shaped text that was not understood (lines {_spans(shaped)})")
        elif suspect is not None:
            kind = "hang"
            frames = meaningful_frames(suspect.frames)[:BUCKET_FRAMES]
            title = f"hang (no panic){_where(frames)}"
        else:
            title = _no_crash_title(dump)
            kind = "none:" + title  # 'no crash', 'panic not captured' and 'no panic' are distinct buckets
    elif not frames and trap is not None:
        extra = _trap_key(trap)
    if not title:
        title = _title(dump, message, frames, all_frames)
    if _is_userland(dump, all_frames):
        kind = "core"
    norm = normalise_message(message)
    key = "|".join((kind, norm, " ".join(f.function.lstrip("~") for f in frames))) + (f"|{extra}" if extra else "")
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    return Bucket(digest, title, key, norm, tuple(f.function.lstrip("~") for f in frames), tuple(notes))


# kmem_error()'s first report line names the corruption (uts/common/os/kmem.c); the panic that follows
# ('kernel heap corruption detected') is often cut from excerpts.
_KMEM_REPORT = re.compile(
    r"\b(buffer freed to wrong cache|buffer modified after being freed|duplicate free|bad free"
    r"|redzone violation|boundary tag corrupted|bufctl corrupted|buffer corrupted|bad buffer control)\b"
)


def _kmem_report(text: str) -> str | None:
    for line in text.splitlines()[:5000]:
        m = _KMEM_REPORT.search(line[:MAX_SUBJECT_LENGTH])
        if m:
            return m.group(1)
    return None


NO_CRASH_TITLE = "no crash found in transcript"


def _no_crash_title(dump: Dump) -> str:
    if dump.threads:
        return f"no panic: {len(dump.threads)} thread stack(s), none on CPU"
    target = dump.status.target if dump.status else None
    if target and "live" in target:
        return "no panic: live kernel session"
    if target and "crash dump" in target:
        return "crash dump: panic message and stack not captured"
    return NO_CRASH_TITLE
