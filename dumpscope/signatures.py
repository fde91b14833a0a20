"""Load and validate the declarative crash signatures shipped in dumpscope/data/signatures/*.toml."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import re
import string
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as _field
from enum import StrEnum
from pathlib import Path
from typing import Any

from dumpscope.errors import SignatureFileError
from dumpscope.verdict import FixStatus, Hint

# Python 3.11 moved the regex parser here (the old sre_parse name warns); typeshed has no stubs.
import re._constants as _sre_c  # type: ignore[import-not-found]
import re._parser as _sre_parse  # type: ignore[import-not-found]

__all__ = [
    "BUNDLED_PREFIX",
    "BucketNote",
    "ENV_SIGNATURES",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "MAX_PATTERN_LENGTH",
    "MAX_PATTERNS_PER_FILE",
    "MAX_SUBJECT_LENGTH",
    "EXTRA_FIELDS",
    "CRASH_FIELDS",
    "Clause",
    "CrashKind",
    "CrashSpec",
    "EventSpec",
    "FixLine",
    "FixSpec",
    "FramePattern",
    "Kind",
    "Operand",
    "Signature",
    "SignatureFile",
    "SignatureSet",
    "ThreadSpec",
    "check_dcmd",
    "check_regex",
    "compile_pattern",
    "crash_kinds",
    "fill_story",
    "fill_template",
    "template_fields",
    "literal_names",
    "load_crash_kinds",
    "load_irrelevant_frames",
    "load_signature_set",
    "load_signatures",
    "parse_signature_file",
    "read_signature_file",
    "resolve",
    "signature_set",
    "site_signature_set",
    "site_dirs",
    "site_files",
]

# The path prefix of the bundled signature files (Signature.path); anything else came from a site.
BUNDLED_PREFIX = "dumpscope/data/signatures/"
# A site's signature directories, as a path list (':'-separated on POSIX), before any --signatures.
ENV_SIGNATURES = "DUMPSCOPE_SIGNATURES"

# A pattern longer than this is almost certainly a mistake (or an attack on the matcher).
MAX_PATTERN_LENGTH = 300
# Subjects (panic messages, function names) are cut to this many characters before matching, so that
# even a pattern with several '.*' stays cheap on a pathological multi-megabyte line.
MAX_SUBJECT_LENGTH = 1024
# A signature file is a few KB (the largest shipped, illumos-12476, is 5 KB with 13 patterns): a file
# past these limits is a mistake or an attack, refused before its patterns are compiled one by one.
MAX_FILE_BYTES = 64 * 1024
MAX_PATTERNS_PER_FILE = 100  # message, exclude, frame function and module patterns together
MAX_NESTING = 8  # tables and arrays inside each other, the file's own table counted (the schema needs 5)

_ID_RE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_REF_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.arg([0-9]{1,2})")
_CLAUSE_RE = re.compile(
    r"\s*(?P<lhs>[A-Za-z_][A-Za-z0-9_.]*)\s*==\s*(?P<rhs>[A-Za-z_][A-Za-z0-9_.]*)"
    r"(?:\s*(?P<op>[+-])\s*(?P<num>0x[0-9A-Fa-f]{1,16}|[0-9]{1,20}))?\s*"
)
_MASK64 = (1 << 64) - 1


class Kind(StrEnum):
    """What sort of event a signature describes."""

    PANIC = "panic"  # the crash stack is the panicking thread's stack
    HANG = "hang"  # no panic: the crash frames are looked for in every thread (a stuck thread)


@dataclass(frozen=True, slots=True)
class FramePattern:
    """One frame of an ordered stack pattern; other frames may sit between two patterns."""

    name: str  # how clauses refer to the matched frame ('cyclic_remove_here'); '' when unnamed
    function: re.Pattern[str]  # fullmatch against Frame.function ('vhpet_handler|vatpit_callout_handler')
    module: re.Pattern[str] | None = None  # fullmatch against Frame.module when the frame shows one
    optional: bool = False  # the frame may be absent (inlined, or a variant of the path)
    line: int = 0  # line of the pattern in its signature file
    # The names `function` matches when it is plain names joined by '|' ('vhpet_handler|vatpit_...'),
    # else None. Derived once here so the matcher tests set membership instead of running the regex.
    literals: frozenset[str] | None = _field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "literals", literal_names(self.function))


@dataclass(frozen=True, slots=True)
class Operand:
    """One side of a clause: a named binding ('cpu') or a frame argument ('sema_p.arg0')."""

    name: str  # binding name, or frame pattern name when index is set
    index: int | None = None  # argument index for 'frame.argN'
    offset: int = 0  # added to the value ('cpu + 0xa0'); only on the right-hand side

    def __str__(self) -> str:
        base = self.name if self.index is None else f"{self.name}.arg{self.index}"
        if self.offset:
            sign = "+" if self.offset > 0 else "-"
            return f"{base} {sign} {abs(self.offset):#x}"
        return base


@dataclass(frozen=True, slots=True)
class Clause:
    """An equality between a value of another thread and a value bound from the crash stack."""

    text: str  # the clause as written ('sema_p.arg0 == cpu + 0xa0')
    label: str  # what agreement means ('the semaphore is cyp_modify_wait of that cpu')
    lhs: Operand
    rhs: Operand
    optional: bool = False  # checked only where both sides are shown (e.g. the cyclic id)
    line: int = 0
    # how a disagreement reads in a sentence about the other thread, '{lhs}' and '{rhs}' the two
    # values: 'waits in cyclic_remove_here on cpu {lhs}, not the handler's cpu {rhs}'
    differs: str = ""


@dataclass(frozen=True, slots=True)
class CrashSpec:
    """What the crash itself looks like: panic message and the ordered frames of its stack."""

    message: re.Pattern[str] | None  # searched in the panic message; None = any message
    message_suffices: bool  # a matching message alone is a `possible` match (the message is specific)
    frames: tuple[FramePattern, ...]  # innermost first, gaps allowed
    anchored: bool = False  # the first pattern must match the first meaningful (non-plumbing) frame
    exclude: tuple[re.Pattern[str], ...] = ()  # functions that must not appear anywhere in the stack
    bind: tuple[tuple[str, Operand], ...] = ()  # name -> 'frame.argN' of the crash stack
    message_line: int = 0
    frames_line: int = 0
    # Every name `exclude` matches when each of its patterns is plain names (see literal_names), else
    # None; derived here once so the matcher need not run each regex on each frame.
    exclude_names: frozenset[str] | None = _field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        union: frozenset[str] | None = frozenset()
        for p in self.exclude:
            names = literal_names(p)
            union = None if union is None or names is None else union | names
        object.__setattr__(self, "exclude_names", union)


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One step of a signature's sequence of events.

    `text` is a template; a '[...]' segment of it is left out when a field inside has no value in
    the dump, and a step whose field outside every segment has no value is left out whole.
    """

    text: str
    when: str = ""  # 'name': only when the crash frame pattern of that name matched; '!name': only when not
    line: int = 0
    rests_on: str = ""  # a thread role: the step tells what that thread did (inferred unless it pairs)


@dataclass(frozen=True, slots=True)
class ThreadSpec:
    """Another thread that must exist and agree by value (the 12476 remover)."""

    role: str  # 'remover'
    description: str  # one line for reports
    frames: tuple[FramePattern, ...]
    bind: tuple[tuple[str, Operand], ...] = ()  # name -> 'frame.argN' of this thread
    require: tuple[Clause, ...] = ()
    # mdb commands to find or show it: one with '{address}' is suggested for each thread of this
    # shape whose output shows no arguments, the others when no thread of the role pairs
    hints: tuple[Hint, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class FixLine:
    """A fix in one line of development, and how to tell whether a platform build has it."""

    name: str  # 'illumos-gate', 'illumos-joyent (SmartOS OS-6684)'
    commit: str
    date: _dt.date
    build: re.Pattern[str] | None = None  # platform builds of this line; group 'date' is YYYYMMDD

    def status_of(self, platform: str) -> tuple[FixStatus, str] | None:
        """Whether the build string predates this fix; None when the build is not of this line."""
        if self.build is None:
            return None
        m = self.build.fullmatch(platform[:MAX_SUBJECT_LENGTH])
        if m is None:
            return None
        try:
            built = _build_date(m.group("date"))
        except IndexError:
            return None
        if built is None:
            return None
        fix = f"{self.name} {self.commit[:12]} ({self.date.isoformat()})"
        if built < self.date:
            return FixStatus.PREDATES_FIX, f"{platform} (built {built.isoformat()}) predates {fix}"
        if built > self.date:
            return FixStatus.HAS_FIX, f"{platform} (built {built.isoformat()}) is newer than {fix}"
        return FixStatus.UNKNOWN, f"{platform} was built the day of {fix}; it may or may not have it"


@functools.lru_cache(maxsize=4096)
def _build_date(text: str) -> _dt.date | None:
    # strptime is slow and a bulk run sees the same few build dates again and again. Eight ASCII
    # digits can only split 4+2+2 under '%Y%m%d' (a shorter month leaves a digit over), so the date
    # is built directly; strptime decides every other text.
    try:
        if len(text) == 8 and text.isascii() and text.isdigit():
            return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return _dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class FixSpec:
    """Where the bug was fixed."""

    references: tuple[str, ...]
    lines: tuple[FixLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    """A known crash, as declared in one data file."""

    id: str  # 'illumos-12476'
    title: str
    version: int  # bumped when the signature's meaning changes
    kind: Kind
    bugs: tuple[str, ...]  # 'illumos 12476', 'SmartOS OS-6684'
    crash: CrashSpec
    threads: tuple[ThreadSpec, ...] = ()
    more_specific_than: tuple[str, ...] = ()  # ids this one wins over when both match
    fix: FixSpec | None = None
    events: tuple[EventSpec, ...] = ()  # inferred sequence of events; '{name}' placeholders are bindings
    hints: tuple[Hint, ...] = ()  # mdb commands that settle a partial match (templates)
    # values computed from bound ones ('remover_sema = cpu + 0xa0'), used in events when the dump
    # does not show them; the text marks them as computed
    derive: tuple[tuple[str, Operand], ...] = ()
    notes: str = ""  # what the bug's source concluded beyond what a match shows (the root cause)
    fixtures: tuple[str, ...] = ()  # transcripts (fixtures/transcripts stems) the signature matches
    near_misses: tuple[str, ...] = ()  # transcripts it must not match
    replay: str | None = None  # name of a replay model that can confirm a paired match
    description: str = ""
    path: str = ""  # file it came from
    # mdb commands that settle this signature on a dump; '{address}' ones are follow-ups, run once a
    # first pass names the address (the 12476 remover's '{address}::findstack -v')
    dcmds: tuple[str, ...] = ()
    site: bool = False  # from a site directory (--signatures, $DUMPSCOPE_SIGNATURES), not dumpscope's own data
    replaces: str = ""  # the bundled file this site signature replaces (same id), else ''


@dataclass(frozen=True, slots=True)
class BucketNote:
    """A site's note on a bucket or a signature: a ticket, an owner, a free-text note (WinDbg's triage file)."""

    key: str  # the bucket id ('3f9a0c12de') or signature id ('illumos-12476') it is about
    ticket: str = ""  # URL of the tracking ticket
    owner: str = ""  # who looks after it
    note: str = ""  # free text
    path: str = ""  # the site file it came from
    line: int = 0
    fixed: str = ""  # the platform build that fixed it: a dump on a newer build is a regression (history)

    def text(self) -> str:
        """The note as one line for a verdict: 'ticket URL; owner NAME; fixed in BUILD; NOTE (from FILE)'."""
        parts = [f"ticket {self.ticket}" if self.ticket else "", f"owner {self.owner}" if self.owner else "",
                 f"fixed in {self.fixed}" if self.fixed else "", self.note]
        return "; ".join(p for p in parts if p) + f" (site note from {self.path})"


@dataclass(frozen=True, slots=True)
class SignatureFile:
    """One signature file, read and parsed: what a lint checks file by file before the set is built."""

    path: str
    data: bytes  # the file's bytes (the set's version hashes them)
    signature: Signature | None  # None for a site file of [[bucket_notes]] only
    notes: tuple[BucketNote, ...]  # its [[bucket_notes]]


@dataclass(frozen=True, slots=True)
class SignatureSet:
    """Every loaded signature, and a version that changes whenever any file's bytes change."""

    signatures: tuple[Signature, ...]
    version: str  # sha256 over the files' names and bytes, in load order
    notes: tuple[BucketNote, ...] = ()  # site notes on buckets and signatures ([[bucket_notes]])

    def notes_for(self, *keys: str) -> tuple[BucketNote, ...]:
        """The site notes on any of these bucket or signature ids, in file order."""
        return tuple(n for n in self.notes if n.key in keys)

    def get(self, sig_id: str) -> Signature | None:
        """The signature with this id, or None."""
        for s in self.signatures:
            if s.id == sig_id:
                return s
        return None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.signatures)

    def __len__(self) -> int:
        return len(self.signatures)


# ---------------------------------------------------------------------------------------------------
# Regex safety


def check_regex(pattern: str, max_length: int | None = MAX_PATTERN_LENGTH) -> str | None:
    """Why a pattern could make matching super-linear, or None when it is safe.

    Rejected: backreferences, lookaround, a repeat inside a repeat (`(a+)+`, `(.*)*`), an
    optional part inside a repeat (`(?:a?a)*`: exponential, one way per choice of each iteration),
    an alternation inside a repeat (`(a|ab)*`), and two unbounded repeats with nothing between them
    but what may match nothing, when some character could be taken by either (`[^x]*[^y]*`,
    `\\d+\\w*`, `a*b?a*`, and `[^x]*[^y]*+` too): those are the shapes that make a backtracking
    engine explode (the last one polynomially: the engine tries every way to share a run between
    the repeats). Accepted because they cannot: a possessive repeat inside a repeat (`(?:,[^,]*+)*`:
    it never gives back, so an iteration matches in one way only), and an alternation of plain
    strings none of which begins another (`(?:(?:long|short) )*`: at most one of them matches at any
    place). Together with MAX_SUBJECT_LENGTH this keeps matching cheap on long lines. `max_length`
    (None: no limit) lets the project hold its own longer line regexes to the same rules.
    """
    if not pattern:
        return "empty pattern"
    if max_length is not None and len(pattern) > max_length:
        return f"pattern longer than {max_length} characters"
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    why = _walk(list(parsed), in_repeat=False, flags=parsed.state.flags)
    if why:
        return why
    try:
        _adjacent(list(parsed), [], _Chars(parsed.state.flags))
    except _Overlap as exc:
        return str(exc)
    return None
_REPEATS = {
    op for op in (getattr(_sre_c, n, None) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")) if op
}
_BACKREFS = {op for op in (getattr(_sre_c, n, None) for n in ("GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE")) if op}
_LOOKAROUND = {_sre_c.ASSERT, _sre_c.ASSERT_NOT}


_POSSESSIVE = getattr(_sre_c, "POSSESSIVE_REPEAT", None)
_ATOMIC = getattr(_sre_c, "ATOMIC_GROUP", None)


def _walk(items: Sequence[Any], in_repeat: bool, flags: int = 0) -> str | None:
    for op, av in items:
        if op in _BACKREFS:
            return "backreferences are not allowed"
        if op in _LOOKAROUND:
            return "lookahead/lookbehind is not allowed"
        if op in _REPEATS:
            _lo, hi, sub = av
            # a possessive repeat never gives back: whatever holds it, it matches in one way only
            if in_repeat and hi != 1 and op != _POSSESSIVE:
                return "nested quantifier (a repeat inside a repeat) can be super-linear"
            if in_repeat and op != _POSSESSIVE:  # 'x?' in a repeat: each iteration may take it or not
                return "an optional part inside a repeat can be super-linear (`(?:a?a)*`); make it possessive (`a?+`)"
            why = _walk(list(sub), in_repeat or hi != 1, flags)
            if why:
                return why
        elif op == _sre_c.SUBPATTERN:  # (group, flags it adds, flags it removes, body): '(?i:...)'
            why = _walk(list(av[-1]), in_repeat, (flags | av[1]) & ~av[2])
            if why:
                return why
        elif op == _sre_c.BRANCH:
            if in_repeat and not _prefix_free_strings(av[1], flags):
                return "alternation inside a repeat can be super-linear; use a character class"
            for branch in av[1]:
                why = _walk(list(branch), in_repeat, flags)
                if why:
                    return why
        elif op == _ATOMIC:
            why = _walk(list(av), in_repeat, flags)
            if why:
                return why
    return None


def _prefix_free_strings(branches: Sequence[Any], flags: int) -> bool:
    # Branches that are plain strings, none the beginning of another: at any place at most one of
    # them can match, so a repeat of them splits its text in one way only. (Not under IGNORECASE,
    # where two different strings can match the same text.)
    if flags & re.IGNORECASE:
        return False
    words = []
    for branch in branches:
        if not all(op == _sre_c.LITERAL for op, _av in branch):
            return False
        words.append(tuple(av for _op, av in branch))
    words.sort()
    return all(words[i] != words[i + 1][: len(words[i])] for i in range(len(words) - 1))


class _Overlap(Exception):
    pass


class _Chars:
    """The characters a one-character regex item can match, over a sample of the alphabet (ASCII,
    Latin-1 and beyond, and one of each kind of non-ASCII digit, space and letter) as a bit set: enough
    to tell whether two classes share a character, which is all the adjacency rule asks."""

    SAMPLE = [chr(c) for c in range(0x300)] + ["\u0660", "\u2028", "\u3000", "\u4e2d", "\uff10", "\U0001f600"]
    _ALL = (1 << len(SAMPLE)) - 1
    _CATEGORIES = {
        "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
        "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
    }

    def __init__(self, flags: int) -> None:
        self.ignore_case = bool(flags & re.IGNORECASE)
        self.dotall = bool(flags & re.DOTALL)

    def _where(self, test: Any) -> int:
        bits = 0
        for i, ch in enumerate(self.SAMPLE):
            if test(ch):
                bits |= 1 << i
        return bits

    def _literal(self, code: int) -> int:
        ch = chr(code)
        if self.ignore_case:
            return self._where(lambda c: c.lower() == ch.lower())
        return self._where(lambda c: c == ch)

    def _category(self, cat: Any) -> int:
        pat = self._CATEGORIES.get(str(cat))
        if pat is None:
            return self._ALL  # a category not listed (line breaks, locale): assume it may share anything
        rx = re.compile(pat)
        return self._where(lambda c: rx.fullmatch(c) is not None)

    def of(self, items: Sequence[Any]) -> int:
        """Every character some one-character item anywhere in `items` can match."""
        bits = 0
        for op, av in items:
            if op == _sre_c.LITERAL:
                bits |= self._literal(av)
            elif op == _sre_c.NOT_LITERAL:
                bits |= self._ALL & ~self._literal(av)
            elif op == _sre_c.ANY:
                bits |= self._ALL if self.dotall else self._ALL & ~self._literal(10)
            elif op == _sre_c.IN:
                inner = 0
                negate = False
                for iop, iav in av:
                    if iop == _sre_c.NEGATE:
                        negate = True
                    elif iop == _sre_c.LITERAL:
                        inner |= self._literal(iav)
                    elif iop == _sre_c.RANGE:
                        lo, hi = iav
                        inner |= self._where(lambda c, lo=lo, hi=hi: lo <= ord(c) <= hi)
                    elif iop == _sre_c.CATEGORY:
                        inner |= self._category(iav)
                    else:
                        inner |= self._ALL
                bits |= self._ALL & ~inner if negate else inner
            elif op in _REPEATS:
                bits |= self.of(av[2])
            elif op == _sre_c.SUBPATTERN:
                bits |= self.of(av[-1])
            elif op == _sre_c.BRANCH:
                for branch in av[1]:
                    bits |= self.of(branch)
            elif op == _ATOMIC:
                bits |= self.of(av)
            elif op not in (_sre_c.AT,):
                bits |= self._ALL
        return bits


def _may_be_empty(items: Sequence[Any]) -> bool:
    for op, av in items:
        if op == _sre_c.AT:
            continue
        if op in _REPEATS and av[0] == 0:
            continue
        if op == _sre_c.SUBPATTERN and _may_be_empty(av[-1]):
            continue
        if op == _ATOMIC and _may_be_empty(av):
            continue
        if op == _sre_c.BRANCH and any(_may_be_empty(b) for b in av[1]):
            continue
        return False
    return True


def _adjacent(items: Sequence[Any], open_sets: list[int], chars: _Chars) -> list[int]:
    # Walks a sequence left to right. `open_sets` are the character sets of the unbounded repeats
    # that the next item follows with nothing between them but what may match nothing; an unbounded
    # repeat whose set meets one of them raises _Overlap. Returns the open sets after the sequence.
    for op, av in items:
        if op == _sre_c.AT:
            continue
        if op in (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT):
            lo, hi, body = av
            if hi == _sre_c.MAXREPEAT:
                mine = chars.of(body)
                if any(mine & other for other in open_sets):
                    raise _Overlap("two unbounded repeats side by side can take the same characters "
                                   "(polynomial backtracking); make their character sets disjoint")
                # (what is inside it was checked by _walk: no unbounded repeat may nest in it)
                open_sets = open_sets + [mine] if lo == 0 or _may_be_empty(body) else [mine]
            else:
                after = _adjacent(body, list(open_sets), chars)
                open_sets = open_sets + after if lo == 0 or _may_be_empty(body) else after
        elif op == _sre_c.SUBPATTERN:
            open_sets = _adjacent(av[-1], open_sets, chars)
        elif op == _sre_c.BRANCH:
            merged: list[int] = []
            for branch in av[1]:
                merged += _adjacent(branch, list(open_sets), chars)
            open_sets = merged
        elif op == _POSSESSIVE or op == _ATOMIC:
            # It never gives back once matched, so nothing after it can share its characters; but the
            # open repeats before it can still give it theirs, one at a time (`[^x]*[^y]*+!`).
            body = av[2] if op == _POSSESSIVE else av
            if op == _POSSESSIVE and av[1] == _sre_c.MAXREPEAT:
                mine = chars.of(body)
                if any(mine & other for other in open_sets):
                    raise _Overlap("two unbounded repeats side by side can take the same characters "
                                   "(polynomial backtracking); make their character sets disjoint")
            _adjacent(body, list(open_sets), chars)  # what is inside backtracks while it matches
            open_sets = open_sets if _may_be_empty([(op, av)]) else []
        else:  # one character
            open_sets = open_sets if _may_be_empty([(op, av)]) else []
    return open_sets


_LITERALS_RE = re.compile(r"[A-Za-z0-9_|]+")  # and no empty name: literal_names checks


def literal_names(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """The strings a pattern fullmatches when it is plain names joined by '|', else None.

    Letters, digits and '_' mean themselves in a regex, so for such a pattern `fullmatch(s)` holds
    exactly when `s` is one of the names (only without flags that change matching, e.g. IGNORECASE).
    """
    # (a name longer than MAX_SUBJECT_LENGTH could never match the cut subject)
    text = pattern.pattern
    if pattern.flags & ~re.UNICODE or len(text) > MAX_SUBJECT_LENGTH or not _LITERALS_RE.fullmatch(text):
        return None
    names = text.split("|")
    return None if "" in names else frozenset(names)


def compile_pattern(pattern: str, checked: bool = True) -> re.Pattern[str]:
    """Compile a data-file regex after the safety check; raises ValueError with the reason.

    `checked=False` skips the check, for dumpscope's own data only: its patterns are checked by
    tests/test_signatures.py, not again on every start (the check parses each pattern once more).
    """
    why = check_regex(pattern) if checked else None
    if why:
        raise ValueError(why)
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# Loading


def load_irrelevant_frames(text: str | None = None, path: str = "irrelevant_frames.txt") -> tuple[re.Pattern[str], ...]:
    """The plumbing-frame regexes (one a line, '#' comments); bad lines raise SignatureFileError."""
    bundled = text is None
    if text is None:
        text = _data_dir().joinpath("irrelevant_frames.txt").read_text(encoding="utf-8")
    if len(text) > MAX_FILE_BYTES:
        raise SignatureFileError(path, None, f"larger than {MAX_FILE_BYTES // 1024} KiB")
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        try:
            out.append(compile_pattern(line, checked=not bundled))
        except ValueError as exc:
            raise SignatureFileError(path, n, f"bad frame pattern {line!r}: {exc}") from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CrashKind:
    """A kind of crash (page fault, mutex panic, assertion, hang) and the mdb commands to run next."""

    name: str
    message: re.Pattern[str] | None  # searched in the panic message
    also: re.Pattern[str] | None  # must be found in the message too
    frames: re.Pattern[str] | None  # fullmatched against the panic stack's functions
    bucket: str  # the bucket's kind ('hang')
    hints: tuple[Hint, ...]


# Fields the hints of data/crash_hints.toml may name (filled by dumpscope/hints.py).
CRASH_FIELDS = frozenset({"addr", "rp", "lp", "owner", "panic_thread", "function", "module", "thread"})
_KIND_KEYS = {"name", "message", "also", "frames", "bucket", "hints"}


def load_crash_kinds(text: str | None = None, path: str = "dumpscope/data/crash_hints.toml") -> tuple[CrashKind, ...]:
    """The kinds of crash of data/crash_hints.toml, checked like signature files (SignatureFileError)."""
    bundled = text is None
    if text is None:
        text = _data_dir().joinpath("crash_hints.toml").read_text(encoding="utf-8")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SignatureFileError(path, None, f"TOML syntax: {exc}") from None
    ctx = _Ctx(path, text, bundled=bundled)
    _keys(ctx, doc, {"kinds"}, ())
    out = []
    for w, k in _tables(ctx, doc.get("kinds", []), "kinds", _KIND_KEYS):
        pats = {key: _regex(ctx, k, key, w) if key in k else None for key in ("message", "also", "frames")}
        bucket = _str(ctx, k, "bucket", w) if "bucket" in k else ""
        if pats["message"] is None and pats["frames"] is None and not bucket:
            raise ctx.fail(w, "a kind needs message, frames or bucket")
        out.append(CrashKind(_str(ctx, k, "name", w), pats["message"], pats["also"], pats["frames"], bucket,
                             _hints(ctx, k.get("hints", []), w + ("hints",), CRASH_FIELDS)))
    return tuple(out)


@functools.cache
def crash_kinds() -> tuple[CrashKind, ...]:
    """The shipped kinds of crash, loaded once per process."""
    return load_crash_kinds()


def load_signatures(paths: Iterable[str | Path] | None = None) -> SignatureSet:
    """Load and validate signature files (default: every *.toml shipped in dumpscope/data/signatures).

    Raises SignatureFileError(path, line, message) for the first bad file: TOML syntax, unknown or
    missing keys, empty or unsafe patterns, dangling references, duplicate ids, or a
    more_specific_than naming an unknown id.
    """
    if paths is None:
        return _assemble(_bundled_files(), [], ours=True)
    files: list[tuple[str, bytes]] = []
    for p in sorted(Path(p) for p in paths):
        try:
            with p.open("rb") as f:
                files.append((str(p), f.read(MAX_FILE_BYTES + 1)))  # no more: _parse_any refuses it
        except OSError as exc:
            raise SignatureFileError(str(p), None, f"cannot read: {exc.strerror or exc}") from None
    return _assemble(files, [])


def load_signature_set(site: Sequence[str] = ()) -> SignatureSet:
    """The bundled signatures plus every *.toml in the `site` directories, in that order.

    A site signature with the id of a bundled one replaces it (and says so: `Signature.replaces`);
    two site files with one id are an error. A site file may carry `[[bucket_notes]]` (BucketNote),
    or be nothing but those. The set's version hashes every file, bundled and site, so adding or editing
    a site file changes the cache key. Raises SignatureFileError for the first bad file.
    """
    return _assemble(_bundled_files(), [f for d in site for f in site_files(d)], ours=True)


def site_signature_set(files: Sequence[SignatureFile]) -> SignatureSet:
    """The bundled signatures plus these site files, already parsed (read_signature_file), as
    load_signature_set builds them from their directories: nothing is parsed again (the bundled
    files come from signature_set()). Raises SignatureFileError as load_signature_set does."""
    bundled = signature_set()
    parsed = {s.path: SignatureFile(s.path, b"", s, tuple(n for n in bundled.notes if n.path == s.path))
              for s in bundled}
    parsed.update((f.path, f) for f in files)
    return _assemble(_bundled_files(), [(f.path, f.data) for f in files], ours=True, parsed=parsed)


def site_files(directory: str) -> list[tuple[str, bytes]]:
    """The (path, bytes) of every *.toml in a site signature directory, sorted by name."""
    try:
        names = sorted(e.name for e in os.scandir(directory) if e.name.endswith(".toml") and e.is_file())
    except NotADirectoryError:
        raise SignatureFileError(directory, None, "signature directory is not a directory") from None
    except OSError as exc:
        raise SignatureFileError(directory, None, f"cannot list signature directory: {exc.strerror or exc}") from None
    out = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                out.append((path, f.read(MAX_FILE_BYTES + 1)))  # no more: _parse_any refuses it
        except OSError as exc:
            raise SignatureFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return out


def site_dirs(given: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The site signature directories: $DUMPSCOPE_SIGNATURES (a path list) first, then `given`."""
    env = (os.environ if environ is None else environ).get(ENV_SIGNATURES, "")
    return tuple(d for d in env.split(os.pathsep) if d) + tuple(given)


def _bundled_files() -> list[tuple[str, bytes]]:
    sig_dir = _data_dir().joinpath("signatures")
    return [(BUNDLED_PREFIX + e.name, e.read_bytes())
            for e in sorted(sig_dir.iterdir(), key=lambda e: e.name) if e.name.endswith(".toml")]


def _assemble(bundled: list[tuple[str, bytes]], site: list[tuple[str, bytes]], *, ours: bool = False,
              parsed: Mapping[str, SignatureFile] | None = None) -> SignatureSet:
    # ours: `bundled` is dumpscope's own data, whose patterns the tests check (compile_pattern);
    # parsed: files already parsed, by path (site_signature_set)
    digest = hashlib.sha256()
    by_id: dict[str, Signature] = {}
    notes: list[BucketNote] = []
    texts: dict[str, str] = {}
    for n, (name, data) in enumerate(bundled + site):
        digest.update(Path(name).name.encode() + b"\0" + data + b"\0")
        done = parsed.get(name) if parsed is not None else None
        sig, file_notes = (done.signature, done.notes) if done is not None else \
            _parse_any(name, data, ours=ours and n < len(bundled))
        notes.extend(file_notes)
        if sig is None:
            continue
        if n >= len(bundled):
            sig = replace(sig, site=True)
        texts[name] = data.decode("utf-8")
        old = by_id.get(sig.id)
        if old is not None:
            if old.site or not sig.site:
                line = _Locator(name, texts[name]).key(("id",))
                raise SignatureFileError(name, line, f"duplicate id {sig.id!r} (also in {old.path})")
            sig = replace(sig, replaces=old.path)  # a site file replaces the bundled one of that id
        by_id[sig.id] = sig
    sigs = list(by_id.values())
    for sig in sigs:
        for other in sig.more_specific_than:
            if other not in by_id:
                line = _Locator(sig.path, texts[sig.path]).key(("more_specific_than",))
                raise SignatureFileError(sig.path, line, f"more_specific_than names unknown signature {other!r}")
    return SignatureSet(tuple(sigs), digest.hexdigest(), tuple(notes))


@functools.lru_cache(maxsize=8)
def signature_set(site: tuple[str, ...] = ()) -> SignatureSet:
    """The bundled signatures plus those of the `site` directories, loaded once per process."""
    return load_signature_set(site)


def _data_dir() -> Path:
    # beside this module, as grammar.grammar_dir finds the grammars (importlib.resources would cost
    # ~6 ms of a cold start to import, for the same folder of a package installed as files)
    return Path(__file__).resolve().parent / "data"


class _Locator:
    """Finds the line of a key in TOML text, so schema errors can name a line (tomllib gives none)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        # each line as a header compares ('[ a.b ]' -> '[a.b]'): loading asks for the line of
        # about a hundred keys a file, and the headers are scanned for each
        self._squeezed = [line.strip().replace(" ", "") for line in self.lines]

    def key(self, where: tuple[str | int, ...]) -> int | None:
        # Walk table headers: '[crash]', '[[crash.frames]]' (nth occurrence for an index), then the key.
        start, end = 0, len(self.lines)
        prefix: list[str] = []
        i = 0
        found_header = False
        while i < len(where):
            part = where[i]
            if not isinstance(part, str):
                i += 1
                continue
            fallback = start + 1 if found_header else 1
            if i + 1 == len(where):
                return self._key_line(part, start, end) or fallback
            # '[[a.b]]' with an index after it (nth array-of-tables entry), else '[a.b]'
            indexed = isinstance(where[i + 1], int)
            dotted = ".".join(prefix + [part])
            header = f"[[{dotted}]]" if indexed else f"[{dotted}]"
            hdr = self._nth_header(header, int(where[i + 1]) if indexed else 0)
            if hdr is None:
                return self._key_line(part, start, end) or fallback
            start, end = hdr, self._next_header(hdr + 1)
            found_header = True
            prefix.append(part)
            i += 2 if indexed else 1
        return start + 1 if found_header else 1

    def _nth_header(self, header: str, n: int) -> int | None:
        count = 0
        for idx, line in enumerate(self._squeezed):
            if line == header:
                if count == n:
                    return idx
                count += 1
        return None

    def _next_header(self, start: int) -> int:
        for idx in range(start, len(self.lines)):
            if self._squeezed[idx].startswith("["):
                return idx
        return len(self.lines)

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pat = re.compile(rf"\s*{re.escape(key)}\s*=")
        for idx in range(start, end):
            if pat.match(self.lines[idx]):
                return idx + 1
        # an inline table or a dotted key: settle for the first mention
        pat2 = re.compile(rf"(^|[\s{{,.]){re.escape(key)}\s*=")
        for idx in range(start, end):
            if pat2.search(self.lines[idx]):
                return idx + 1
        return None


class _Ctx:
    """Raises SignatureFileError with the line of the offending key."""

    def __init__(self, path: str, text: str, bundled: bool = False) -> None:
        self.path = path
        self.loc = _Locator(path, text)
        self.check = not bundled  # dumpscope's own data is checked by the tests, not on every start

    def fail(self, where: tuple[str | int, ...], msg: str) -> SignatureFileError:
        return SignatureFileError(self.path, self.loc.key(where), msg)

    def line(self, where: tuple[str | int, ...]) -> int:
        return self.loc.key(where) or 0


_TOP_KEYS = {
    "id", "title", "version", "kind", "bugs", "description", "more_specific_than", "fix", "crash",
    "threads", "events", "hints", "replay", "derive", "notes", "dcmds", "bucket_notes", "fixtures",
    "near_misses",
}
_EVENT_KEYS = {"text", "when", "rests_on"}
_HINT_KEYS = {"command", "settles"}
_CRASH_KEYS = {"message", "message_suffices", "frames", "anchored", "exclude", "bind"}
_FRAME_KEYS = {"function", "module", "name", "optional"}
_THREAD_KEYS = {"role", "description", "frames", "bind", "require", "hints"}
_CLAUSE_KEYS = {"check", "label", "optional", "differs"}
_FIX_KEYS = {"references", "lines"}
_FIXLINE_KEYS = {"name", "commit", "date", "build"}
# Names triage fills in for events and hints of every signature, besides its own bindings and the
# names its data gives (see _named_fields).
EXTRA_FIELDS = frozenset({"address", "panic_message"})
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def parse_signature_file(path: str, data: bytes) -> Signature | None:
    """The signature of one file's bytes, or None for a site file of [[notes]] only; raises
    SignatureFileError (path, line, message) when the file is bad."""
    return read_signature_file(path, data).signature


def read_signature_file(path: str, data: bytes) -> SignatureFile:
    """One file's bytes parsed, with its [[bucket_notes]]; raises SignatureFileError (path, line,
    message) when the file is bad. site_signature_set builds a set of such files."""
    sig, notes = _parse_any(path, data)
    return SignatureFile(path, data, sig, notes)


def _parse_any(path: str, data: bytes, ours: bool = False) -> tuple[Signature | None, tuple[BucketNote, ...]]:
    # A signature file (which may carry [[bucket_notes]]), or a site file of [[bucket_notes]] only (no 'id').
    if len(data) > MAX_FILE_BYTES:
        raise SignatureFileError(path, None, f"larger than {MAX_FILE_BYTES // 1024} KiB (a signature is a few KB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureFileError(path, None, f"not UTF-8: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        line = int(m.group(1)) if m else None
        if line is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        raise SignatureFileError(path, line, f"TOML syntax: {exc}") from None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        raise SignatureFileError(path, None, f"nested deeper than {MAX_NESTING} levels") from None
    if _depth(doc) > MAX_NESTING:
        raise SignatureFileError(path, None, f"nested deeper than {MAX_NESTING} levels")
    n = _count_patterns(doc)
    if n > MAX_PATTERNS_PER_FILE:
        raise SignatureFileError(path, None, f"{n} patterns, more than the limit of {MAX_PATTERNS_PER_FILE} a file")
    ctx = _Ctx(path, text, bundled=ours)
    if "id" not in doc and "bucket_notes" in doc:
        _keys(ctx, doc, {"bucket_notes"}, ())
        return None, _bucket_notes(ctx, doc["bucket_notes"])
    _keys(ctx, doc, _TOP_KEYS, ())
    for req in ("id", "title", "bugs", "crash"):
        if req not in doc:
            raise SignatureFileError(path, 1, f"missing required key {req!r}")
    sig_id = _str(ctx, doc, "id", ())
    if not _ID_RE.fullmatch(sig_id):
        raise ctx.fail(("id",), f"id {sig_id!r} must be lowercase letters, digits, '.', '+', '-'")
    if Path(path).stem != sig_id:
        raise ctx.fail(("id",), f"id {sig_id!r} must equal the file name stem {Path(path).stem!r}")
    title = _str(ctx, doc, "title", ())
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ctx.fail(("version",), "version must be a positive integer")
    try:
        kind = Kind(doc.get("kind", "panic"))
    except ValueError:
        raise ctx.fail(("kind",), f"kind must be one of {', '.join(k.value for k in Kind)}") from None
    bugs = _strlist(ctx, doc, "bugs", (), nonempty=True)
    crash = _crash(ctx, doc["crash"])
    threads = _threads(ctx, doc.get("threads", []), crash)
    bound = {n for n, _ in crash.bind} | {n for t in threads for n, _ in t.bind}
    derive = _derive(ctx, doc.get("derive", {}), bound)
    bound |= {n for n, _ in derive}
    named = _named_fields(crash, (t.role for t in threads))
    events = _events(ctx, doc.get("events", []), bound | named | EXTRA_FIELDS,
                     {f.name for f in crash.frames if f.name}, {t.role for t in threads})
    hints = _with_search_hints(_hints(ctx, doc.get("hints", []), ("hints",), bound | named | EXTRA_FIELDS), threads)
    replay = doc.get("replay")
    if replay is not None and (not isinstance(replay, str) or not _NAME_RE.fullmatch(replay.replace("-", "_"))):
        raise ctx.fail(("replay",), "replay must be a model name like 'cyclic-12476'")
    if kind is Kind.HANG and threads:
        raise ctx.fail(("threads",), "a hang signature cannot have cross-thread clauses")
    dcmds = _strlist(ctx, doc, "dcmds", ())
    for d in dcmds:
        why = check_dcmd(d)
        if why:
            raise ctx.fail(("dcmds",), f"dcmd {d!r}: {why}")
    dcmds += tuple(d for d in _follow_ups(threads) if d not in dcmds)
    sig = Signature(
        id=sig_id,
        title=title,
        version=version,
        kind=kind,
        bugs=bugs,
        crash=crash,
        threads=threads,
        more_specific_than=_strlist(ctx, doc, "more_specific_than", ()),
        fix=_fix(ctx, doc["fix"]) if "fix" in doc else None,
        events=events,
        hints=hints,
        derive=derive,
        notes=_str(ctx, doc, "notes", ()) if "notes" in doc else "",
        fixtures=_strlist(ctx, doc, "fixtures", ()),
        near_misses=_strlist(ctx, doc, "near_misses", ()),
        replay=replay,
        description=_str(ctx, doc, "description", ()) if "description" in doc else "",
        path=path,
        dcmds=dcmds,
    )
    return sig, _bucket_notes(ctx, doc.get("bucket_notes", []))


_NOTE_KEYS = {"bucket", "signature", "ticket", "owner", "note", "fixed"}
# A bucket id as bucket.py makes it: 10 lowercase hex digits.
_BUCKET_RE = re.compile(r"[0-9a-f]{10}")


def _tables(ctx: _Ctx, raw: Any, key: str, allowed: set[str]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    # The entries of an array of tables ([[key]]), each with where it is and its keys checked
    if not isinstance(raw, list):
        raise ctx.fail((key,), f"{key} must be an array of tables ([[{key}]])")
    for i, table in enumerate(raw):
        w: tuple[str | int, ...] = (key, i)
        _keys(ctx, table, allowed, w)
        yield w, table


def _bucket_notes(ctx: _Ctx, raw: Any) -> tuple[BucketNote, ...]:
    out = []
    for w, nt in _tables(ctx, raw, "bucket_notes", _NOTE_KEYS):
        keys = [k for k in ("bucket", "signature") if k in nt]
        if len(keys) != 1:
            raise ctx.fail(w, "a note names exactly one 'bucket' (its 10-digit id) or 'signature' (an id)")
        key = _str(ctx, nt, keys[0], w)
        if keys[0] == "bucket" and not _BUCKET_RE.fullmatch(key):
            raise ctx.fail(w + ("bucket",), f"bucket {key!r} must be a bucket id (10 lowercase hex digits)")
        if keys[0] == "signature" and not _ID_RE.fullmatch(key):
            raise ctx.fail(w + ("signature",), f"signature {key!r} is not a signature id")
        fields = {k: _str(ctx, nt, k, w) for k in ("ticket", "owner", "note", "fixed") if k in nt}
        if not fields:
            raise ctx.fail(w, "a note needs a 'ticket', an 'owner', a 'note' or 'fixed'")
        if len(fields.get("fixed", "")) > 200 or "fixed" in fields and not fields["fixed"].strip():
            raise ctx.fail(w + ("fixed",), "fixed must name the platform build that fixed it (1-200 characters)")
        ticket = fields.get("ticket", "")
        if ticket and not re.match(r"https?://\S+$", ticket):
            raise ctx.fail(w + ("ticket",), f"ticket {ticket!r} must be an http(s) URL")
        out.append(BucketNote(key, ticket, fields.get("owner", ""), fields.get("note", ""), ctx.path,
                              ctx.line(w + (keys[0],)), fields.get("fixed", "")))
    return tuple(out)


# What a declared dcmd may contain: mdb commands, options, addresses and pipes between dcmds. No '!'
# (a pipe to the shell), no '$<' (macro files) and no other '{...}' than '{address}': a site file
# is data, and running it must not run anything but mdb on the dump.
_DCMD_RE = re.compile(r"(?:\{address\}|[0-9a-fA-F]+)?(?:::[A-Za-z_]|\$[A-Za-z])[A-Za-z0-9_ .,:|$-]*")


def check_dcmd(text: str) -> str | None:
    """Why a signature's dcmd is not one dumpscope will run, or None when it is acceptable."""
    if "!" in text:
        return "a '!' pipes to the shell; not allowed"
    if "$<" in text:
        return "'$<' runs a macro file; not allowed"
    if ";" in text:
        return "one command per entry (no ';')"
    body = text.replace("{address}", "", 1) if text.startswith("{address}") else text
    if "{" in body or "}" in body:
        return "the only template field allowed is a leading '{address}'"
    if not _DCMD_RE.fullmatch(text.strip()):
        return "must be an mdb dcmd ('::stacks -c f', '$C', '{address}::findstack -v')"
    return None


def _depth(doc: Any) -> int:
    # How deep tables and arrays nest (a table at the top is 1), without recursion.
    deepest = 0
    todo: list[tuple[Any, int]] = [(doc, 1)]
    while todo:
        value, level = todo.pop()
        deepest = max(deepest, level)
        if level > MAX_NESTING:
            break
        children = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
        todo.extend((c, level + 1) for c in children if isinstance(c, Mapping | list))
    return deepest


def _count_patterns(doc: Mapping[str, Any]) -> int:
    # Counted before any is compiled or located (only the shapes the schema allows count; the schema
    # checks that come after refuse the rest).
    def frames(table: Any) -> int:
        fr = table.get("frames") if isinstance(table, Mapping) else None
        return sum(1 + ("module" in f) for f in fr if isinstance(f, Mapping)) if isinstance(fr, list) else 0

    crash = doc.get("crash")
    n = frames(crash)
    if isinstance(crash, Mapping):
        n += "message" in crash
        n += len(crash["exclude"]) if isinstance(crash.get("exclude"), list) else 0
    threads = doc.get("threads")
    if isinstance(threads, list):
        n += sum(frames(t) for t in threads)
    return n


def _keys(ctx: _Ctx, table: Any, allowed: set[str], where: tuple[str | int, ...]) -> None:
    if not isinstance(table, Mapping):
        raise ctx.fail(where, f"{'.'.join(map(str, where)) or 'file'} must be a table")
    for k in table:
        if k not in allowed:
            raise ctx.fail(where + (k,), f"unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")


def _str(ctx: _Ctx, table: Mapping[str, Any], key: str, where: tuple[str | int, ...]) -> str:
    v = table.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ctx.fail(where + (key,), f"{key} must be a non-empty string")
    return v


def _strlist(
    ctx: _Ctx, table: Mapping[str, Any], key: str, where: tuple[str | int, ...], nonempty: bool = False
) -> tuple[str, ...]:
    v = table.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ctx.fail(where + (key,), f"{key} must be a list of non-empty strings")
    if nonempty and not v:
        raise ctx.fail(where + (key,), f"{key} must not be empty")
    return tuple(v)


def _bool(ctx: _Ctx, table: Mapping[str, Any], key: str, where: tuple[str | int, ...]) -> bool:
    v = table.get(key, False)
    if not isinstance(v, bool):
        raise ctx.fail(where + (key,), f"{key} must be true or false")
    return v


def _regex(ctx: _Ctx, table: Mapping[str, Any], key: str, where: tuple[str | int, ...]) -> re.Pattern[str]:
    v = table.get(key)
    if not isinstance(v, str):
        raise ctx.fail(where + (key,), f"{key} must be a string (a regular expression)")
    try:
        return compile_pattern(v, checked=ctx.check)
    except ValueError as exc:
        raise ctx.fail(where + (key,), f"{key} {v!r}: {exc}") from None


def _frames(ctx: _Ctx, raw: Any, where: tuple[str | int, ...]) -> tuple[FramePattern, ...]:
    if not isinstance(raw, list) or not raw:
        raise ctx.fail(where, "frames must be a non-empty array of tables ([[...frames]])")
    out = []
    names: set[str] = set()
    for i, fr in enumerate(raw):
        w = where + (i,)
        _keys(ctx, fr, _FRAME_KEYS, w)
        if "function" not in fr:
            raise ctx.fail(w, "frame pattern needs 'function'")
        fn = _regex(ctx, fr, "function", w)
        mod = _regex(ctx, fr, "module", w) if "module" in fr else None
        if "name" in fr:
            name = _str(ctx, fr, "name", w)
            if not _NAME_RE.fullmatch(name):
                raise ctx.fail(w + ("name",), f"name {name!r} must be an identifier")
        else:
            name = fn.pattern if _NAME_RE.fullmatch(fn.pattern) else ""
        if name and name in names:
            raise ctx.fail(w + ("function",), f"two frame patterns named {name!r}; give one a 'name'")
        names.add(name)
        out.append(FramePattern(name, fn, mod, _bool(ctx, fr, "optional", w), ctx.line(w + ("function",))))
    if all(f.optional for f in out):
        raise ctx.fail(where, "at least one frame pattern must be required")
    if out[0].optional:
        raise ctx.fail(where + (0, "optional"), "the first frame pattern cannot be optional")
    return tuple(out)


def _operand(text: str, frames: Sequence[FramePattern], names: set[str]) -> Operand | str:
    m = _REF_RE.fullmatch(text)
    if m:
        if m.group(1) not in {f.name for f in frames if f.name}:
            return f"{text!r} refers to no named frame pattern of this stack"
        return Operand(m.group(1), int(m.group(2)))
    if _NAME_RE.fullmatch(text):
        if text not in names:
            return f"{text!r} is not a bound name"
        return Operand(text)
    return f"{text!r} is neither a name nor 'frame.argN'"


def _bind(
    ctx: _Ctx, raw: Any, frames: Sequence[FramePattern], where: tuple[str | int, ...]
) -> tuple[tuple[str, Operand], ...]:
    if not isinstance(raw, Mapping):
        raise ctx.fail(where, "bind must be a table of name = 'frame.argN'")
    out = []
    for name, ref in raw.items():
        if not _NAME_RE.fullmatch(name):
            raise ctx.fail(where + (name,), f"binding name {name!r} must be an identifier")
        if not isinstance(ref, str):
            raise ctx.fail(where + (name,), f"binding {name!r} must be a string 'frame.argN'")
        op = _operand(ref.strip(), frames, set())
        if isinstance(op, str) or op.index is None:
            raise ctx.fail(where + (name,), f"binding {name!r}: {op if isinstance(op, str) else 'must be frame.argN'}")
        out.append((name, op))
    return tuple(out)


def _crash(ctx: _Ctx, raw: Any) -> CrashSpec:
    w: tuple[str | int, ...] = ("crash",)
    _keys(ctx, raw, _CRASH_KEYS, w)
    message = _regex(ctx, raw, "message", w) if "message" in raw else None
    if "frames" not in raw:
        raise ctx.fail(w, "crash needs frames")
    frames = _frames(ctx, raw["frames"], w + ("frames",))
    exclude_raw = raw.get("exclude", [])
    if not isinstance(exclude_raw, list):
        raise ctx.fail(w + ("exclude",), "exclude must be a list of regular expressions")
    exclude = []
    for pat in exclude_raw:
        try:
            exclude.append(compile_pattern(pat if isinstance(pat, str) else "", checked=ctx.check))
        except ValueError as exc:
            raise ctx.fail(w + ("exclude",), f"exclude {pat!r}: {exc}") from None
    bind = _bind(ctx, raw.get("bind", {}), frames, w + ("bind",))
    if _bool(ctx, raw, "message_suffices", w) and message is None:
        raise ctx.fail(w + ("message_suffices",), "message_suffices needs a message pattern")
    return CrashSpec(
        message, _bool(ctx, raw, "message_suffices", w), frames, _bool(ctx, raw, "anchored", w), tuple(exclude), bind,
        ctx.line(w + ("message",)), ctx.line(w + ("frames",)),
    )


def _threads(ctx: _Ctx, raw: Any, crash: CrashSpec) -> tuple[ThreadSpec, ...]:
    if not isinstance(raw, list):
        raise ctx.fail(("threads",), "threads must be an array of tables ([[threads]])")
    out = []
    crash_names = {n for n, _ in crash.bind}
    # every role may be named in any thread's hints; a role that is not a string fails below
    roles = (th["role"] for th in raw if isinstance(th, Mapping) and isinstance(th.get("role"), str))
    named = _named_fields(crash, roles)
    for i, th in enumerate(raw):
        w: tuple[str | int, ...] = ("threads", i)
        _keys(ctx, th, _THREAD_KEYS, w)
        role = _str(ctx, th, "role", w)
        if not _NAME_RE.fullmatch(role):
            raise ctx.fail(w + ("role",), f"role {role!r} must be an identifier")
        if "frames" not in th:
            raise ctx.fail(w, "thread needs frames")
        frames = _frames(ctx, th["frames"], w + ("frames",))
        bind = _bind(ctx, th.get("bind", {}), frames, w + ("bind",))
        names = crash_names | {n for n, _ in bind}
        clauses = []
        req = th.get("require", [])
        if not isinstance(req, list) or not req:
            raise ctx.fail(w + ("require",), "a thread needs at least one [[threads.require]] clause")
        for j, cl in enumerate(req):
            cw = w + ("require", j)
            _keys(ctx, cl, _CLAUSE_KEYS, cw)
            text = _str(ctx, cl, "check", cw)
            clauses.append(_clause(ctx, cw, text, cl, frames, names))
        hints = _hints(ctx, th.get("hints", []), w + ("hints",), names | named | EXTRA_FIELDS)
        out.append(ThreadSpec(
            role, _str(ctx, th, "description", w) if "description" in th else role, frames, bind,
            tuple(clauses), hints, ctx.line(w + ("role",)),
        ))
    return tuple(out)


def _with_search_hints(own: tuple[Hint, ...], threads: Sequence[ThreadSpec]) -> tuple[Hint, ...]:
    # A match on the message alone needs, besides its own hints, the search for each other thread
    # (a role's hints that name no '{address}', the 12476 '::stacks -c cyclic_remove_here | ...'):
    # written once, under [[threads.hints]], and listed here too, each command once.
    out = list(own)
    for spec in threads:
        for h in spec.hints:
            if "address" not in template_fields(h.command) and all(o.command != h.command for o in out):
                out.append(h)
    return tuple(out)


def _follow_ups(threads: Sequence[ThreadSpec]) -> tuple[str, ...]:
    # A role's '{address}' hint that is a dcmd ('{address}::findstack -v') is the follow-up mdb runs
    # once a first pass names the thread (mdb.follow_ups runs only hints of a declared dcmd's shape):
    # written once, as the hint, and declared here. One that is not a dcmd stays a hint for a person.
    found = (h.command for spec in threads for h in spec.hints
             if h.command.startswith("{address}") and check_dcmd(h.command) is None)
    return tuple(dict.fromkeys(found))


def _named_fields(crash: CrashSpec, roles: Iterable[str]) -> set[str]:
    # The template fields a signature's data names beyond its bindings (story.py fills them): each
    # named crash frame pattern ('{handler}', the function it matched) and each [[threads]] role
    # ('{remover}', the thread that paired).
    return {f.name for f in crash.frames if f.name} | set(roles)


def _clause(ctx: _Ctx, where: tuple[str | int, ...], text: str, raw: Mapping[str, Any],
            frames: Sequence[FramePattern], names: set[str]) -> Clause:
    m = _CLAUSE_RE.fullmatch(text)
    if not m:
        raise ctx.fail(where + ("check",), f"clause {text!r} must read 'A == B' or 'A == B + 0xN'")
    lhs = _operand(m.group("lhs"), frames, names)
    rhs = _operand(m.group("rhs"), frames, names)
    for side in (lhs, rhs):
        if isinstance(side, str):
            raise ctx.fail(where + ("check",), f"clause {text!r}: {side}")
    assert isinstance(lhs, Operand) and isinstance(rhs, Operand)
    if m.group("op"):
        num = int(m.group("num"), 0)
        rhs = Operand(rhs.name, rhs.index, num if m.group("op") == "+" else -num)
    label = _str(ctx, raw, "label", where) if "label" in raw else text
    differs = _str(ctx, raw, "differs", where) if "differs" in raw else ""
    _check_template(ctx, where + ("differs",), differs, {"lhs", "rhs"})
    return Clause(text.strip(), label, lhs, rhs, _bool(ctx, raw, "optional", where), ctx.line(where + ("check",)),
                  differs)


def _derive(ctx: _Ctx, raw: Any, bound: set[str]) -> tuple[tuple[str, Operand], ...]:
    # name = "bound_name + 0xN": a value computed from a bound one (cyp_modify_wait from the cpu)
    if not isinstance(raw, Mapping):
        raise ctx.fail(("derive",), "derive must be a table of name = 'bound_name + 0xN'")
    out = []
    for name, text in raw.items():
        m = _CLAUSE_RE.fullmatch(f"{name} == {text}") if isinstance(text, str) else None
        op = _operand(m.group("rhs"), (), bound) if m else f"{text!r} must read 'name' or 'name + 0xN'"
        if isinstance(op, str) or not _NAME_RE.fullmatch(name):
            raise ctx.fail(("derive", name), f"derive {name!r}: {op if isinstance(op, str) else 'bad name'}")
        if m and m.group("op"):
            num = int(m.group("num"), 0)
            op = Operand(op.name, None, num if m.group("op") == "+" else -num)
        out.append((name, op))
    return tuple(out)


def _events(ctx: _Ctx, raw: Any, names: set[str], frames: set[str], roles: set[str]) -> tuple[EventSpec, ...]:
    if not isinstance(raw, list):
        raise ctx.fail(("events",), "events must be an array of tables ([[events]] with text and when)")
    out = []
    for i, ev in enumerate(raw):
        w: tuple[str | int, ...] = ("events", i)
        if isinstance(ev, str):  # a plain step: the text alone
            ev = {"text": ev}
            w = ("events",)
        _keys(ctx, ev, _EVENT_KEYS, w)
        text = _str(ctx, ev, "text", w)
        if _SEGMENT.sub("", text).count("[") or _SEGMENT.sub("", text).count("]"):
            raise ctx.fail(w + ("text",), f"event {text!r}: '[' and ']' mark optional segments, one level deep")
        _check_template(ctx, w + ("text",), text, names)
        when = _str(ctx, ev, "when", w) if "when" in ev else ""
        if when and when.lstrip("!") not in frames:
            raise ctx.fail(w + ("when",), f"when {when!r} must name a crash frame pattern ('name' or '!name')")
        rests_on = _str(ctx, ev, "rests_on", w) if "rests_on" in ev else ""
        if rests_on and rests_on not in roles:
            raise ctx.fail(w + ("rests_on",), f"rests_on {rests_on!r} must name a [[threads]] role")
        out.append(EventSpec(text, when, ctx.line(w + ("text",)), rests_on))
    return tuple(out)


def _hints(ctx: _Ctx, raw: Any, where: tuple[str | int, ...], names: set[str] | frozenset[str]) -> tuple[Hint, ...]:
    # every hint says what its output would settle (issue 14): a bare command string is refused
    if not isinstance(raw, list):
        raise ctx.fail(where, "hints must be an array of tables with command and settles")
    out = []
    for i, h in enumerate(raw):
        w = where + (i,)
        if not isinstance(h, Mapping):
            raise ctx.fail(where, f"hint {h!r} must be a table {{command = ..., settles = ...}}: "
                                  "every hint says what its output would settle")
        _keys(ctx, h, _HINT_KEYS, w)
        for key in ("command", "settles"):
            if key not in h:
                raise ctx.fail(w, f"a hint needs {key!r}")
            _check_template(ctx, w + (key,), _str(ctx, h, key, w), names)
        out.append(Hint(h["command"], h["settles"]))
    return tuple(out)


def _fix(ctx: _Ctx, raw: Any) -> FixSpec:
    w: tuple[str | int, ...] = ("fix",)
    _keys(ctx, raw, _FIX_KEYS, w)
    refs = list(_strlist(ctx, raw, "references", w))
    lines = []
    raw_lines = raw.get("lines", [])
    if not isinstance(raw_lines, list):
        raise ctx.fail(w + ("lines",), "fix.lines must be an array of tables ([[fix.lines]])")
    for i, fl in enumerate(raw_lines):
        lw = w + ("lines", i)
        _keys(ctx, fl, _FIXLINE_KEYS, lw)
        name = _str(ctx, fl, "name", lw)
        commit = _str(ctx, fl, "commit", lw)
        if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            raise ctx.fail(lw + ("commit",), f"commit {commit!r} must be 7-40 lowercase hex digits")
        date = fl.get("date")
        if not isinstance(date, _dt.date) or isinstance(date, _dt.datetime):
            raise ctx.fail(lw + ("date",), "date must be a TOML date (YYYY-MM-DD)")
        build = _regex(ctx, fl, "build", lw) if "build" in fl else None
        if build is not None and "date" not in build.groupindex:
            raise ctx.fail(lw + ("build",), "build pattern needs a named group 'date' (YYYYMMDD)")
        lines.append(FixLine(name, commit, date, build))
        ref = f"{name} {commit}"
        if not any(commit in r for r in refs):
            refs.append(ref)
    if not refs:
        raise ctx.fail(w, "fix needs references or lines")
    return FixSpec(tuple(refs), tuple(lines))


def _check_template(ctx: _Ctx, where: tuple[str | int, ...], text: str, names: set[str] | frozenset[str]) -> None:
    # Templates are filled with str.format_map; only bare names are allowed, so data cannot reach
    # attributes or items of the values (no '{cpu.__class__}').
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ctx.fail(where, f"bad template {text!r}: {exc}") from None
    for _lit, field, spec, conv in parts:
        if field is None:
            continue
        if not _NAME_RE.fullmatch(field) or conv or spec:
            raise ctx.fail(where, f"template field {{{field}}} in {text!r}: only a bare '{{name}}' is allowed")
        if field not in names:
            raise ctx.fail(where, f"template field {{{field}}} in {text!r} is not a bound name")


def resolve(op: Operand, args: Mapping[str, tuple[int, ...] | None], bound: Mapping[str, int]) -> int | None:
    """The value of an operand, given the matched frames' args and the bound names; None if not shown."""
    if op.index is None:
        base = bound.get(op.name)
    else:
        a = args.get(op.name)
        base = a[op.index] if a is not None and op.index < len(a) else None
    if base is None:
        return None
    return (base + op.offset) & _MASK64


class _Unknown(dict[str, str]):
    # a template field this dump has no value for reads '?'
    def __missing__(self, key: str) -> str:
        return "?"


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Fill an event or hint template; fields were checked at load time to be bare names, and a
    name with no value in this dump reads '?'."""
    return template.format_map(_Unknown(values))


def template_fields(template: str) -> list[str]:
    """The field names of a template, in order."""
    return [f for _lit, f, _spec, _conv in string.Formatter().parse(template) if f]


def fill_story(template: str, values: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """Fill an event template without ever printing '?': a '[...]' segment naming a field the dump
    has no value for is left out, and a step with such a field outside every segment is None.
    Returns the text (or None) and the names that had no value."""
    missing = [f for f in template_fields(template) if f not in values]

    def _segment(m: re.Match[str]) -> str:
        return "" if any(f not in values for f in template_fields(m.group(1))) else m.group(1)

    kept = _SEGMENT.sub(_segment, template)
    if any(f not in values for f in template_fields(kept)):
        return None, missing
    return kept.format_map(_Unknown(values)), missing
