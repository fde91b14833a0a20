"""Turns transcript text into line tokens: removes paste artefacts, classifies lines by the grammars' terminals."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dumpscope.dump import Frame, FrameDraft, build_frame
from dumpscope.terminals import FirstTerminal

__all__ = [
    "MAX_LINE",
    "RELEASED",
    "RULE_TOKENS",
    "LexInput",
    "LineLexer",
    "LineTok",
    "Tok",
    "clean_line",
    "decode_label",
    "hex_value",
    "needs_cleaning",
    "offset_value",
    "split_lines",
    "split_symbol",
]

# A line longer than this is kept as raw text without running the line regexes on it: no mdb line
# is anywhere near it, and it bounds the work a hostile input can cause.
MAX_LINE = 64 * 1024

# Terminals whose consecutive lines form one token of Frames.
_RUNS = {"FRAME", "CONSOLE_FRAME", "STACKS_FRAME"}
# Terminals whose consecutive lines form one token of LineToks.
_LINE_RUNS = {"OTHER", "STACKS_GROUP"}
# Line kinds whose text nothing reads once their token is made (the thread headers of a ::findstack
# of every thread): released like frame lines, a big transcript has one of each per thread.
_RELEASED_AFTER_TOKEN = {"FINDSTACK_HEAD", "BRACKET"}
# Status keys that end a wrapped "panic message:" (mdb prints them after it).
_AFTER_PANIC = {"dump content", "build version", "image uuid"}

_ANSI = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_BR = re.compile(r"<br\s*/?>\s*$", re.IGNORECASE)
# "2019-01-14T19:09:19.831161+00:00 cube-sw genunix: [ID 655072 kern.notice] " and the classic
# "Jun 10 16:56:31 machine1 savecore: [ID 570001 auth.error] " syslog prefixes
_SYSLOG = re.compile(r"^\s*(?:\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ [\w.-]+: \[ID \d+ [\w.]+\] ?")
_RSYSLOG_ESC = re.compile(r"^(?:#01[25])+|(?:#01[25])+$")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_MAX_QUOTE_DEPTH = 8
_SEEN_MAX = 4096  # distinct non-frame lines remembered by the classifier
_QUOTE = re.compile(r"^\s*>\s?")
_SPARC_REGS = re.compile(r"^\s*%[lgoi]\d-\d:")
_WORDY = re.compile(r"[A-Za-z0-9_]{2}")
_CONT = re.compile(r"^\s*,?\s*(?P<args>[^()]*?)\s*(?P<close>\))?\s*$")
# The frame line exactly as mdb prints it in $C and ::findstack -v: "  fp func+0xoff(args)". Every line
# this matches, the FRAME terminal matches with the same groups (tests/test_lexer.py checks it on every
# fixture line and on generated ones); it is tried first because it costs half of FRAME's regex, which
# also takes quotes, modules, other offsets and wrapped argument lists. ASCII: \w is then a table lookup, not
# a Unicode category test per character; a symbol with other letters (mdb prints none) goes to FRAME.
_PLAIN_FRAME = re.compile(r"[ \t]*([0-9a-f]{8,16}) ([A-Za-z_$][\w.$]*+\+0x[0-9a-f]+)\(([^()]*)\)$", re.ASCII)


class Tok(NamedTuple):
    """A line token for grammar.TableParser: what lark.Token carries for the transformer, without its cost."""

    type: str  # the terminal name (or a rule's name, for a rule the lexer hands over whole)
    value: Any  # the lexer's payload: a LineTok, or a tuple of Frames / LineToks for a run (or the rule's value)


@dataclass(slots=True)
class LineTok:
    """The payload of a one-line token: where it is and what the terminal captured."""

    line: int  # 1-based line number
    text: str  # the cleaned line
    groups: dict[str, Any]  # the terminal's named groups: str, or None where an optional one is absent


@dataclass(slots=True)
class LexInput:
    """What the parser is given: the cleaned lines, plus notes the lexer adds while it works."""

    lines: list[str]  # cleaned lines, index 0 is line 1 (a built frame's line becomes RELEASED)
    notes: list[str] = field(default_factory=list)


def split_lines(text: str) -> list[str]:
    """Split on newlines only (not on the other characters str.splitlines knows), so numbering matches editors."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def needs_cleaning(text: str) -> bool:
    """True when the text holds any paste artefact clean_line() removes (most mdb output has none)."""
    return ("\r" in text or "\x1b" in text or _has(text, "<br") or _has(text, "<BR") or _has(text, "[ID ")
            or _has(text, "```") or _has(text, "~~~"))


def _has(text: str, needle: str) -> bool:
    # `needle in text` compares at every position; finding the needle's first character is a memchr,
    # and these first characters are rare in mdb output, so only a few places are compared.
    first = needle[0]
    i = text.find(first)
    for _ in range(32):
        if i < 0:
            return False
        if text.startswith(needle, i):
            return True
        i = text.find(first, i + 1)
    return i >= 0 and needle in text[i:]  # the character is common here after all


def clean_line(line: str) -> str:
    """The line without paste artefacts: CR, escape sequences, <br />, syslog prefixes, Markdown fences."""
    # Cheap membership tests first: the hot path is a plain mdb line needing none of this.
    if "\r" in line:
        line = line.rstrip("\r").replace("\r", "")
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "<br" in line or "<BR" in line:
        line = _BR.sub("", line)
    if "[ID " in line:
        m = _SYSLOG.match(line)
        if m:
            line = _RSYSLOG_ESC.sub("", line[m.end():].rstrip())
    if "```" in line or "~~~" in line:
        if _FENCE.match(line):
            return ""
    return line


def hex_value(text: str | None) -> int | None:
    """A number mdb printed in hex ('ffffff03eb144000', '0x1f'), or None when absent or unreadable."""
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def offset_value(text: str | None) -> int | None:
    """A symbol offset: mdb prints 0-9 bare, larger ones as 0x..; 0t.. is decimal. None if unreadable."""
    if not text:
        return None
    try:
        return int(text[2:]) if text.startswith("0t") else int(text, 16)
    except ValueError:
        return None


def _args(text: str) -> tuple[int, ...]:
    if not text or text.isspace():
        return ()
    try:  # the common case: bare hex, as mdb prints arguments (int() accepts spaces and "0x")
        return tuple([int(part, 16) for part in text.split(",")])
    except ValueError:
        pass
    out = []
    for part in text.split(","):
        part = part.strip()
        if part[:1] == "(":  # 2025 printer with -t: "(vfs_t *)0xfffffe...", "(proc_t *)NULL"
            part = part[part.rfind(")") + 1:].strip()
        value = 0 if part == "NULL" else hex_value(part)
        if value is None:
            # Arguments are positional: dropping one would slide the next into its place (and a
            # signature would bind the wrong value). Keep only the ones before it.
            break
        out.append(value)
    return tuple(out)


# Rules the lexer may hand over whole, as one token of the rule's name, by the terminal each starts
# with (grammar.TableParser takes such a token as if it had reduced the rule itself).
RULE_TOKENS = {"findstack_thread": "FINDSTACK_HEAD"}
# Builds a findstack_thread token's value: (header line number, header groups, bracket line number,
# bracket groups or None, frames) -> the value of the rule (parse.findstack_thread_value). The groups
# are the terminals' in order: FINDSTACK_HEAD (addr, free, desc, sp), BRACKET (sp, sym).
ThreadBuilder = Callable[[int, Any, int, Any, tuple[Frame, ...]], Any]

# Stands in LexInput.lines for a frame line whose text was released once its Frame was built.
RELEASED = "\x00"


def _no_match(_line: str) -> None:
    return None
# (function, module) per distinct symbol text: a big transcript names the same few hundred functions
# hundreds of thousands of times, and every frame then shares one string per name. Bounded, so a long
# bulk run over hostile input cannot grow it.
_names: dict[str, tuple[str, str | None]] = {}
_NAMES_MAX = 65536


def split_symbol(sym: str) -> tuple[str, str | None]:
    """(function, module) of a symbol as mdb prints it: 'swtch' -> ('swtch', None), 'libc.so.1`syscall'
    -> ('syscall', 'libc.so.1'). A module name holds no backtick, so the first one ends it."""
    hit = _names.get(sym)
    if hit is None:
        mod, tick, name = sym.partition("`")
        if len(_names) >= _NAMES_MAX:
            _names.clear()
        hit = _names[sym] = (name, mod) if tick else (sym, None)
    return hit


# (function, module, offset) per distinct "func+0xoff" of a frame line or a ::findstack bracket
# line: a big transcript repeats a few thousand of them. Bounded like _names.
_labels: dict[str, tuple[str, str | None, int | None]] = {}


def decode_label(label: str) -> tuple[str, str | None, int | None]:
    """(function, module, offset) of a location as mdb prints it: 'swtch+0x141', 'unix`swtch+8',
    'vpanic' (offset None). Decoded once per distinct text."""
    hit = _labels.get(label)
    if hit is None:
        symbol, _, off = label.partition("+")  # a symbol holds no "+"
        if len(_labels) >= _NAMES_MAX:
            _labels.clear()
        hit = _labels[label] = (*split_symbol(symbol), offset_value(off))
    return hit


_SIXTEEN = repeat(16)
_NEW = object.__new__


_symbols: dict[str, tuple[str, str | None, int | None]] = {}


def _stacks_symbol(m: re.Match[str]) -> tuple[str, str | None, int | None]:
    # (function, module, offset) of a ::stacks frame line, by the line's text: the same few lines
    # repeat in every group, and the lexer's loop looks a line up here before classifying it
    text = m.string
    hit = _symbols.get(text)
    if hit is None:
        if len(_symbols) >= 4096:
            _symbols.clear()
        hit = _symbols[text] = (*split_symbol(m["sym"]), offset_value(m["off"]))
    return hit


def _mdb_frame(lineno: int, groups: tuple[str | None, ...], args_text: str | None) -> Frame:
    # groups of the FRAME terminal, in order: fp, sym, off, neg, args, close
    fp, sym, off, neg, args, _close = groups
    hit = _names.get(sym) or split_symbol(sym)  # type: ignore[arg-type]  # the group is not optional
    if off is not None:
        offset: int | None = int(off[2:]) if "t" in off else int(off, 16)  # "0t12" is decimal
    elif neg is not None:
        offset = -(offset_value(neg) or 0)
    else:
        offset = None
    if args_text is None:
        args_text = args
    argv = _hex_args(args_text) if args_text else ()
    return build_frame(lineno, hit[0], hit[1], offset, argv, int(fp, 16) if fp else None)


def _hex_args(text: str) -> tuple[int, ...]:
    # A frame's argument list: bare hex as mdb prints it, the common case (int() accepts the blanks
    # and a "0x"); any other form goes to _args.
    try:
        parts = text.split(",")
        n = len(parts)
        # one or two arguments are the commonest lists; a tuple display beats tuple(map(...)) there
        if n == 1:
            return (int(text, 16),)
        if n == 2:
            return (int(parts[0], 16), int(parts[1], 16))
        return tuple(map(int, parts, _SIXTEEN))
    except ValueError:
        return _args(text)


@dataclass(slots=True)
class _Kinds:
    """What the first pass found on each line (index-aligned with LexInput.lines)."""

    names: list[str]  # terminal name per line ("BLANK" for empty lines)
    vals: list[Any]  # Frame for a complete frame line, else the terminal's match (or None)
    runs: dict[int, list[Frame]]  # runs of complete frame lines, by the index of their first line


class LineLexer:
    """One token per line, one token per run of frame lines (grammar.lark_lexer_class() puts it behind
    Lark's custom-lexer interface)."""

    def __init__(self, terminals: Iterable[Sequence[Any]]) -> None:
        """terminals: (name, regex, priority) of each line terminal, as the grammar defines them."""
        terms = sorted(terminals, key=lambda t: -t[2])  # stable: equal priorities keep their order
        self.terminals: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
            (name, re.compile(pattern)) for name, pattern, _priority in terms
        )
        self._by_name = dict(self.terminals)
        self._first = FirstTerminal(self.terminals)
        self._seen: dict[str, tuple[str, re.Match[str] | None]] = {}
        # By a line's first character: the terminal that outranks all others a line beginning with it
        # could match, tried before anything else. Not the frame kinds, which the first pass builds
        # itself: it is the ::findstack thread's header and bracket lines, one of each per thread of
        # a big transcript, and the mdb prompt.
        self._early: dict[str, tuple[str, Any]] = {}
        for code in range(33, 127):
            index = self._first.leader(chr(code))
            if index is not None and self.terminals[index][0] not in _RUNS | {"OTHER"}:
                name, rx = self.terminals[index]
                self._early[chr(code)] = (name, rx.match)
        # _mdb_frame and the thread builder take these terminals' groups by position
        for kind, order in (("FRAME", ["fp", "sym", "off", "neg", "args", "close"]),
                            ("FINDSTACK_HEAD", ["addr", "free", "desc", "sp"]), ("BRACKET", ["sp", "sym"])):
            pattern = self._by_name.get(kind)
            if pattern is not None and sorted(pattern.groupindex, key=pattern.groupindex.__getitem__) != order:
                raise ValueError(f"{kind} terminal groups changed: {pattern.groupindex}")

    # -- classification ------------------------------------------------------------------------

    def classify(self, line: str) -> tuple[str, re.Match[str] | None]:
        """The terminal a cleaned line matches (OTHER when none), and the match."""
        # Memoised: transcripts repeat lines verbatim (every ::stacks group ends in the same
        # "swtch+0x141 ... thread_start+8" frames). A match is immutable, so sharing it is safe.
        hit = self._seen.get(line)
        return hit if hit is not None else self._remember(line)

    def _remember(self, line: str) -> tuple[str, re.Match[str] | None]:
        # classify() of a line not in the memo: classify it and remember it
        kind, m = self._classify(line)
        if kind == "OTHER" and line.lstrip().startswith(">"):
            kind, m = self._unquote(line)
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()
        hit = self._seen[line] = (kind, m)
        return hit

    def _classify(self, line: str) -> tuple[str, re.Match[str] | None]:
        if len(line) > MAX_LINE:
            return "OTHER", None
        # FirstTerminal finds the first terminal that matches, in C: the likeliest candidate's own
        # regex, else one alternation of the others, after which the winner's own regex extracts its
        # named groups.
        hit = self._first(line)
        if hit is None:
            return "OTHER", None
        start, m = hit
        if m is not None:
            return self.terminals[start][0], m
        # the terminal found matches by construction (tests/test_grammar.py checks the dispatch against
        # trying every terminal); the loop only keeps a disagreement from losing the line
        terminals = self.terminals
        for j in range(start, len(terminals)):
            name, rx = terminals[j]
            mm = rx.match(line)
            if mm is not None:
                return name, mm
        return "OTHER", None

    def _unquote(self, line: str) -> tuple[str, re.Match[str] | None]:
        # "> ..." that is not an mdb prompt: a Markdown quote, possibly nested ("> > ::status"), or a
        # bare prompt left at the end. Peel one level at a time, a bounded number of times.
        for _ in range(_MAX_QUOTE_DEPTH):
            line = _QUOTE.sub("", line, count=1)
            if not line.strip():
                return "BLANK", None
            kind, m = self._classify(line)
            if kind != "OTHER" or not line.lstrip().startswith(">"):
                return kind, m
        return "OTHER", None

    # -- the token stream ----------------------------------------------------------------------

    def toks(self, data: LexInput, threads: ThreadBuilder | None = None) -> Iterator[Tok]:
        """The line tokens of the input, for grammar.TableParser: one per line, one per run.

        With `threads`, each ::findstack thread (its header, bracket line and frames) is one token of
        the findstack_thread rule, whose value `threads` builds from the lines' groups (see
        RULE_TOKENS); without it, as Lark's parser needs, one token per line or run.
        The lines are classified when this is called; the tokens are made as they are taken."""
        lines = data.lines
        # Two parallel lists, index-aligned with the lines: the terminal name of each line, and its
        # payload (the Frame of a complete frame line, else the terminal's match).
        names: list[str] = []
        vals: list[Any] = []
        name, val = names.append, vals.append
        # Runs of complete frame lines are gathered here as they are read, keyed by the index of their
        # first line, so the token pass hands each over whole instead of walking it line by line.
        runs: dict[int, list[Frame]] = {}
        run: list[Frame] | None = None  # the run the previous line added to
        run_kind, run_start = "", 0
        remember = self._remember
        seen = self._seen
        frame_rx = self._by_name.get("FRAME")
        frame_match = frame_rx.match if frame_rx is not None else _no_match
        plain_match = _PLAIN_FRAME.match if frame_rx is not None else _no_match
        early_get = self._early.get
        mdb_frame = _mdb_frame
        labels_get = _labels.get
        hex_args = _hex_args
        symbols = _symbols
        new = _NEW
        draft: Any = FrameDraft  # each draft becomes a Frame (f.__class__ = Frame) once filled
        for i, text in enumerate(lines):
            if not text:  # an empty line (one with only blanks is found below)
                name("BLANK")
                val(None)
                run = None
                continue
            early = early_get(text[0])
            if early is not None and len(text) <= MAX_LINE:
                m = early[1](text)
                if m is not None:
                    name(early[0])
                    val(m)
                    run = None
                    continue
            # most lines of a big transcript are complete mdb frames (every one has a "("), built
            # right away; their text is not needed again, so it is released
            if "(" in text and len(text) <= MAX_LINE:
                m = plain_match(text)
                if m is not None:
                    # the commonest frame line: _mdb_frame's work inline (a call costs 6% of a line)
                    fp, label, args = m.groups()
                    named = labels_get(label) or decode_label(label)
                    f = new(draft)
                    f.line = i + 1
                    f.function, f.module, f.offset = named
                    f.args = hex_args(args) if args else ()
                    f.fp = int(fp, 16)
                    f.__class__ = Frame
                else:
                    m = frame_match(text)
                    if m is None:
                        f = None
                    elif m.group(6):  # the closing parenthesis: the argument list is complete
                        f = mdb_frame(i + 1, m.groups(), None)
                    else:  # a wrapped argument list: the token pass joins it, and walks this run itself
                        name("FRAME")
                        val(m)
                        if run is not None and run_kind == "FRAME":
                            del runs[run_start]
                        run = None
                        continue
                if f is not None:
                    name("FRAME")
                    val(f)
                    lines[i] = RELEASED
                    if run is not None and run_kind == "FRAME":
                        run.append(f)
                    else:
                        run = runs[i] = [f]
                        run_kind, run_start = "FRAME", i
                    continue
            sym = symbols.get(text)  # a ::stacks frame line met before: the commonest line there
            if sym is None:
                if text.isspace():
                    name("BLANK")
                    val(None)
                    run = None
                    continue
                if len(text) > MAX_LINE:
                    data.notes.append(f"line {i + 1} is {len(text)} characters long; kept as raw text")
                    name("OTHER")
                    val(None)
                    run = None
                    continue
                hit = seen.get(text)  # classify()'s memo, looked up here: most lines repeat
                k, m = hit if hit is not None else remember(text)
                if k != "STACKS_FRAME" or m is None or m.string != text:
                    name(k)
                    val(m)
                    if run is not None and run_kind == k:  # a frame line seen through a quote: walk the run
                        del runs[run_start]
                    run = None
                    continue
                sym = _stacks_symbol(m)
            # a ::stacks frame line: build_frame, inline (a call per line costs 3% of a bulk run)
            f = new(draft)
            f.line = i + 1
            f.function, f.module, f.offset = sym
            f.args = None
            f.fp = None
            f.__class__ = Frame
            name("STACKS_FRAME")
            val(f)
            if run is not None and run_kind == "STACKS_FRAME":
                run.append(f)
            else:
                run = runs[i] = [f]
                run_kind, run_start = "STACKS_FRAME", i
        kinds = _Kinds(names, vals, runs)
        self._truncated_tail(data, kinds)
        return self._tokens(data, kinds, threads)  # returned, not yielded from: one generator less per token

    def _truncated_tail(self, data: LexInput, kinds: _Kinds) -> None:
        # An excerpt cut off inside its last frame: parse it as far as it goes, with a note.
        last = len(kinds.names) - 1
        while last >= 0 and kinds.names[last] == "BLANK":
            last -= 1
        if last < 1 or kinds.names[last] != "TRUNCATED_FRAME":
            return
        prev = last - 1
        while prev >= 0 and kinds.names[prev] == "BLANK":
            prev -= 1
        run = kinds.names[prev] if prev >= 0 else ""
        if run not in ("FRAME", "CONSOLE_FRAME") or prev != last - 1:
            return
        g = kinds.vals[last].groupdict()
        module = g["mod"] if run == "CONSOLE_FRAME" else g["mod"]
        off = g["off"]
        offset = int(off, 16) if off and off not in ("0x", "x") else None
        args_text = g["args"] or ""
        args = _args(args_text.rpartition(",")[0]) if g["args"] is not None else None
        frame = Frame(last + 1, g["func"], module, offset, args, int(g["fp"], 16))
        kinds.names[last], kinds.vals[last] = run, frame
        kinds.runs.clear()  # the frame joins the run before it: let the token pass walk the runs
        data.notes.append(f"line {last + 1}: input ends inside a frame; its name may be cut short")

    def _tokens(self, data: LexInput, kinds: _Kinds, threads: ThreadBuilder | None) -> Iterator[Tok]:
        new_tok = tuple.__new__  # a Tok without NamedTuple's Python-level __new__
        lines = data.lines
        names = kinds.names
        vals = kinds.vals
        runs = kinds.runs
        n = len(names)
        i = 0
        while i < n:
            kind, m = names[i], vals[i]
            if kind == "BLANK":
                i += 1
                continue
            if kind in _LINE_RUNS:
                # consecutive lines of these kinds make one token, a tuple of LineToks: raw text
                # nobody understands (prose, ::msgbuf chatter), and the member lines of a ::stacks -a group
                run = []
                while i < n and names[i] == kind:
                    m = vals[i]
                    vals[i] = None
                    run.append(LineTok(i + 1, lines[i], m.groupdict() if m is not None else {}))
                    i += 1
                yield new_tok(Tok, (kind, tuple(run)))
                continue
            if kind in _RUNS:  # _run releases each line it takes
                gathered = runs.pop(i, None)  # the token holds the frames now
                if gathered is not None:
                    frames, i = gathered, i + len(gathered)
                else:
                    frames, i = self._run(data, kinds, i, kind)
                yield new_tok(Tok, (kind, tuple(frames)))
                continue
            if kind == "FINDSTACK_HEAD" and threads is not None:
                # The findstack_thread rule, read as the parser reads it (the header, then a bracket
                # line if one follows, then a frame run if one follows, blank lines skipped): a big
                # ::findstack is one of these per thread, and this skips a token and a rule per line.
                vals[i] = None
                lines[i] = RELEASED
                head_line = i + 1
                i += 1
                while i < n and names[i] == "BLANK":
                    i += 1
                bracket = None
                bracket_line = 0
                if i < n and names[i] == "BRACKET":
                    bracket, bracket_line = vals[i], i + 1
                    vals[i] = None
                    lines[i] = RELEASED
                    i += 1
                    while i < n and names[i] == "BLANK":
                        i += 1
                thread_frames: Sequence[Frame] = ()
                if i < n and names[i] == "FRAME":
                    gathered = runs.pop(i, None)
                    if gathered is not None:
                        thread_frames, i = gathered, i + len(gathered)
                    else:
                        thread_frames, i = self._run(data, kinds, i, "FRAME")
                thread = threads(head_line, m.groups(), bracket_line, bracket and bracket.groups(),
                                 tuple(thread_frames))
                yield new_tok(Tok, ("findstack_thread", thread))
                continue
            vals[i] = None  # consumed: what the parser needs is in the token (lookahead only looks ahead)
            groups = m.groupdict() if m is not None else {}
            payload = LineTok(i + 1, lines[i], groups)
            if kind in _RELEASED_AFTER_TOKEN:
                lines[i] = RELEASED
            i += 1
            if kind == "STATUS_FIELD" and groups.get("key") == "panic message":
                i = self._join_status_panic(data, kinds, i, payload)
            elif kind in ("CONSOLE_PANIC", "SAVECORE_PANIC"):
                i = self._join_console_panic(data, kinds, i, payload)
            yield new_tok(Tok, (kind, payload))

    def _run(self, data: LexInput, kinds: _Kinds, i: int,
             kind: str) -> tuple[list[Frame], int]:
        lines = data.lines
        n = len(kinds.names)
        frames: list[Frame] = []
        append = frames.append
        while i < n:
            k, m = kinds.names[i], kinds.vals[i]
            if k != kind:
                # SPARC console frames carry two register lines each; they do not end the run
                if kind == "CONSOLE_FRAME" and _SPARC_REGS.match(lines[i]):
                    i += 1
                    continue
                break
            kinds.vals[i] = None
            i += 1
            if type(m) is Frame:
                append(m)
                continue
            lineno = i
            if kind == "STACKS_FRAME":
                append(build_frame(lineno, *_stacks_symbol(m), None, None))
                continue
            args_text = m["args"]
            if m["close"] is None:
                # wrapped argument list: ", more)" (mdb autowrap) or "  more)" (SPARC console)
                args_text, i = self._continue_args(data, kinds, i, args_text, lineno)
            if kind == "FRAME":
                append(_mdb_frame(lineno, m.groups(), args_text))
                continue
            fp = m["fp"]
            func = m["func"]  # CONSOLE_FRAME: module:func+hexoff, or a bare pc
            if func is None:
                append(Frame(lineno, "0x" + m["pc"].lower(), None, None, _args(args_text), int(fp, 16)))
            else:
                append(Frame(lineno, func, m["mod"], int(m["off"], 16), _args(args_text), int(fp, 16)))
        return frames, i

    def _continue_args(self, data: LexInput, kinds: _Kinds, i: int,
                       args_text: str, lineno: int) -> tuple[str, int]:
        lines = data.lines
        for _ in range(4):
            if i >= len(kinds.names) or kinds.names[i] not in ("OTHER", "KEYVAL", "STACKS_FRAME"):
                break
            c = _CONT.match(lines[i])
            if c is None:
                break
            more = c["args"].strip().rstrip(",")
            args_text = f"{args_text.strip().rstrip(',')}, {more}" if args_text.strip() else more
            i += 1
            if c["close"]:
                return args_text, i
        data.notes.append(f"line {lineno}: argument list not closed (truncated frame)")
        # the last argument may have been cut mid-number: keep only the ones a comma ended
        head, sep, _ = args_text.rpartition(",")
        return (head if sep else ""), i

    def _join_status_panic(self, data: LexInput, kinds: _Kinds, i: int,
                           payload: LineTok) -> int:
        # mdb before illumos 11186 (2019) wrapped output at the terminal width: the message may start
        # on the next line, or run onto it. It ends where the next status field begins.
        lines = data.lines
        n = len(kinds.names)
        value = (payload.groups.get("value") or "").strip()
        end = None
        for j in range(i, min(i + 5, n)):
            k, m = kinds.names[j], kinds.vals[j]
            if k in ("PROMPT", "STATUS_HEAD") or k == "STATUS_FIELD" and m is not None and m["key"] in _AFTER_PANIC:
                end = j
                break
        if value and end is not None and (len(lines[i - 1]) < 60 or any(
                kinds.names[j] not in ("OTHER", "TRAP_BANNER", "BLANK") for j in range(i, end))):
            return i  # a complete one-line message; what follows is more of ::status
        if end is None:
            if value:
                return i  # a one-line message; the block was cut short
            j = i
            while j < n and j < i + 2 and kinds.names[j] == "BLANK":
                j += 1
            if j >= n or kinds.names[j] in ("BLANK", "FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            end = j + 1
        pieces = [value]
        widths = [len(lines[i - 1])]
        for j in range(i, end):
            if kinds.names[j] != "BLANK":
                if not value and len(pieces) == 1:
                    payload.groups = dict(payload.groups, text_line=str(j + 1))
                pieces.append(lines[j].strip())
                widths.append(len(lines[j]))
        payload.groups = dict(payload.groups, value=_join_wrapped(pieces, widths))
        return end

    def _join_console_panic(self, data: LexInput, kinds: _Kinds, i: int,
                            payload: LineTok) -> int:
        lines = data.lines
        msg = (payload.groups.get("msg") or "").strip()
        pieces = [payload.groups.get("msg") or ""]
        widths = [len(lines[i - 1])]
        if not msg:
            # "panic[cpu2]/thread=...:" with the message on the next line (msgbuf, syslog)
            j = i
            while j < len(kinds.names) and kinds.names[j] == "BLANK" and j < i + 2:
                j += 1
            if j >= len(kinds.names) or kinds.names[j] in ("FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            pieces = [lines[j].strip()]
            widths = [len(lines[j])]
            payload.groups = dict(payload.groups, text_line=str(j + 1))
            i = j + 1
        # a message re-wrapped by a mailer or a web page continues on plain lines of words
        for _ in range(3):
            if i < len(kinds.names) and kinds.names[i] == "OTHER" and len(lines[i - 1].strip()) >= 60 \
                    and _WORDY.search(lines[i]):
                pieces.append(lines[i].strip())
                widths.append(len(lines[i]))
                i += 1
            else:
                break
        payload.groups = dict(payload.groups, msg=_join_wrapped(pieces, widths))
        return i


# mdb's autowrap (before illumos 11186) cuts an item longer than the terminal at the terminal's width,
# 80 columns when it is unknown, even inside a word ('NULL pointer deref' / 'erence'); a mailer or a
# web page wraps at a space, and its lines are shorter than that.
_MDB_WRAP_COLUMN = 80


def _join_wrapped(pieces: list[str], widths: list[int] | None = None) -> str:
    """The pieces of a wrapped message as one line: glued where mdb cut a word at the terminal width
    (the line before is that long and the cut falls between two letters or digits), with a space
    where the text was wrapped at a space."""
    out = ""
    for k, piece in enumerate(pieces):
        if not out:
            out = piece
        elif out.endswith(" "):
            out += piece.lstrip()
        elif (widths is not None and widths[k - 1] >= _MDB_WRAP_COLUMN and out[-1:].isalnum()
              and piece.lstrip()[:1].isalnum()):
            out += piece.lstrip()  # cut mid-word by mdb: no space was there
        else:
            out += " " + piece.strip()
    return out.strip()
