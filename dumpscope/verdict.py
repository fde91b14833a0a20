"""Typed triage results: what a transcript shows, how sure we are, and the evidence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "VERDICT_SCHEMA", "Confidence", "Event", "Evidence", "Fix", "FixStatus", "Hint", "ShownFrame", "ShownTrap",
    "Verdict",
]

# The schema name of a verdict's JSON object (render.verdict_to_json, cache.verdict_from_json).
VERDICT_SCHEMA = "dumpscope.verdict/2"


class Confidence(StrEnum):
    """How strongly a signature matched. The names are part of the JSON contract."""

    CONFIRMED = "confirmed"  # paired, and the reference-model replay reproduces the panic
    PAIRED = "paired"  # panic stack and a second thread match and agree by value
    LIKELY = "likely"  # the panic stack matches; the other thread is not in the transcript
    POSSIBLE = "possible"  # only the panic message matches


class FixStatus(StrEnum):
    """Whether the dump's platform build predates the fix of the matched bug."""

    PREDATES_FIX = "predates-fix"
    HAS_FIX = "has-fix"  # a match on a build that has the fix: regression, or a look-alike
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One clause of a signature checked against the transcript."""

    clause: str  # what was checked, e.g. "panic message", "same cpu in both stacks"
    lines: tuple[int, ...]  # transcript line numbers the clause rests on
    holds: bool = True  # False marks a contradiction
    detail: str = ""  # the values involved, e.g. "cpu=fffffdc5496f0d40"


@dataclass(frozen=True, slots=True)
class Fix:
    """The fix of a matched bug and where this dump's build stands."""

    references: tuple[str, ...]  # commits / tickets that fixed it
    status: FixStatus
    detail: str = ""  # e.g. "joyent_20180216T202957Z predates OS-6684 (2019-07-18)"


@dataclass(frozen=True, slots=True)
class Event:
    """One step of the inferred sequence of events, filled with this dump's values.

    Data, not prose for one renderer: text, JSON and ticket formats print the same records.
    """

    text: str
    lines: tuple[int, ...] = ()  # transcript lines of the frames whose values the step names
    inferred: bool = False  # the step rests on another thread the transcript does not show paired


@dataclass(frozen=True, slots=True)
class Hint:
    """An mdb command to run next and what its output settles: in a verdict with the dump's values
    filled in; in a signature (or data/crash_hints.toml) both fields are templates."""

    command: str  # 'fffffe55d37b8080::findstack -v'
    settles: str  # 'shows whether the remover waits on cpu ..., index ...'


@dataclass(frozen=True, slots=True)
class ShownFrame:
    """A frame of the panic stack as a verdict shows it, with the transcript line it was read from."""

    line: int
    text: str  # the frame as mdb printed it, without the frame pointer: 'fss_update_list+0x5c(0)'
    plumbing: bool = False  # panic/trap plumbing or an unresolved address: collapsed in text output


@dataclass(frozen=True, slots=True)
class ShownTrap:
    """The panic's trap record as a verdict shows it: where it is, and its fields as mdb prints them."""

    line: int
    end: int
    fields: tuple[tuple[str, str], ...] = ()  # ('type', 'e (#pf Page fault)'), ('addr', 'ffffff049f4c6000'), ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The triage of one input."""

    source: str  # the input's name as given ('-' is shown as '<stdin>')
    status: str  # "ok" or "error"
    error: str | None = None  # why the input could not be triaged
    panic_message: str | None = None
    platform: str | None = None  # platform build from ::status
    host: str | None = None
    signature: str | None = None  # id of the matched signature, or None
    confidence: Confidence | None = None
    bucket: str = ""  # stable short id for grouping crashes
    title: str = ""  # human title of the crash (signature title, or the bucket title)
    bugs: tuple[str, ...] = ()  # bug references of the matched signature
    evidence: tuple[Evidence, ...] = ()
    fix: Fix | None = None
    events: tuple[Event, ...] = ()  # inferred sequence of events, filled with this dump's values
    hints: tuple[Hint, ...] = ()  # mdb commands that would settle what the transcript leaves open
    notes: tuple[str, ...] = ()  # parse degradations, near-misses and why they do not pair
    panic_thread: str | None = None  # short description of the panicking thread
    replay: str | None = None  # one-line replay outcome, when replay ran
    stack: tuple[ShownFrame, ...] = ()  # the panicking thread's frames, innermost first
    key_frames: tuple[str, ...] = ()  # the bucket's key: its first meaningful frames' functions
    unchecked: tuple[str, ...] = ()  # what a confirming replay could not compare (not in the transcript)
    conclusion: str | None = None  # what the matched bug's source concluded (the signature's notes)
    trap: ShownTrap | None = None  # the panic's trap record, when the transcript has one
    stack_owner: str | None = None  # whose frames `stack` holds when not the panic's: 'thread ... (on CPU)'
