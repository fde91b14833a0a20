"""The line lexer: Lark's custom lexer for whole transcripts.

It removes paste artefacts, classifies each line by the grammars' line terminals (the first in
priority order that matches), and hands the LALR parser one token per line, except for runs:
consecutive frame lines become one token holding their Frames, consecutive raw lines and ::stacks
group lines one token holding their LineToks. It also joins what mdb or a mailer wrapped (argument
lists, panic messages), which a line grammar cannot see.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lark import Token
from lark.lexer import Lexer

from dumpscope.dump import Frame

__all__ = [
    "MAX_LINE",
    "LexInput",
    "LineLexer",
    "LineTok",
    "clean_line",
    "dec_value",
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
_FRAME_RUNS = {"FRAME", "CONSOLE_FRAME", "STACKS_FRAME"}
# Terminals whose consecutive lines form one token of LineToks.
_LINE_RUNS = {"OTHER", "STACKS_GROUP"}
# Status keys that end a wrapped "panic message:" (mdb prints them after it).
_AFTER_PANIC = {"dump content", "build version", "image uuid"}
# Terminals tried only on a line holding the given text, which every line they match holds: a plain
# substring test rejects most lines at once, where the regex would scan them (SHELL_MDB's lookahead
# did that once, but lookaround is not linear in general; tests/test_regex_safety.py refuses it).
_ONLY_WITH = {"SHELL_MDB": "mdb"}
# What clean_line() removes, by a substring each holds.
_ARTEFACTS = ("\r", "\x1b", "<br", "<BR", "[ID ", "```", "~~~")

# Every regex here is linear: no nested repeats, and no two unbounded repeats side by side that
# could both take the same characters.
_ANSI = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_BR = re.compile(r"<br\s*/?>\s*$", re.IGNORECASE)
# "2019-01-14T19:09:19.831161+00:00 cube-sw genunix: [ID 655072 kern.notice] " and the classic
# "Jun 10 16:56:31 machine1 savecore: [ID 570001 auth.error] " syslog prefixes
_SYSLOG = re.compile(r"^\s*(?:\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ [\w.-]+: \[ID \d+ [\w.]+\] ?")
_RSYSLOG_ESC = re.compile(r"^(?:#01[25])+|(?:#01[25])+$")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_MAX_QUOTE_DEPTH = 8
_QUOTE = re.compile(r"^\s*>\s?")
_SPARC_REGS = re.compile(r"^\s*%[lgoi]\d-\d:")
_WORDY = re.compile(r"[A-Za-z0-9_]{2}")
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


@dataclass(slots=True)
class LineTok:
    """The payload of a one-line token: where it is and what the terminal captured."""

    line: int  # 1-based line number
    text: str  # the cleaned line
    groups: dict[str, Any]  # the terminal's named groups: str, or None where an optional one is absent


@dataclass(slots=True)
class LexInput:
    """What the parser is given: the cleaned lines, plus what the lexer finds while it works."""

    lines: list[str]  # cleaned lines, index 0 is line 1
    notes: list[str] = field(default_factory=list)  # why the parse is degraded
    kinds: list[str] = field(default_factory=list)  # the terminal of each line ("BLANK" for blank ones)


def split_lines(text: str) -> list[str]:
    """Split on newlines only (not on the other characters str.splitlines knows), so numbering matches editors."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def needs_cleaning(text: str) -> bool:
    """True when the text holds any paste artefact clean_line() removes (most mdb output has none)."""
    return any(artefact in text for artefact in _ARTEFACTS)


def clean_line(line: str) -> str:
    """The line without paste artefacts: CR, escape sequences, <br />, syslog prefixes, Markdown fences."""
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
    if ("```" in line or "~~~" in line) and _FENCE.match(line):
        return ""
    return line


# A value mdb prints is a machine word: 16 hex digits. The bound is twice that, because real published
# text has a digit too many (a console panic line's 17-digit thread address, kept in the fixtures);
# longer text is not a value (a paste gone wrong, or an attack: int() of thousands of digits costs
# quadratic time in decimal and trips CPython's 4,300-digit limit); it stays text, and the parse notes it.
MAX_HEX_DIGITS = 32
MAX_DEC_DIGITS = 40
_OVERLONG = re.compile(r"[0-9a-fA-F]{33}")


def hex_value(text: str | None) -> int | None:
    """A number mdb printed in hex ('ffffff03eb144000', '0x1f'), or None when absent, unreadable or
    longer than MAX_HEX_DIGITS."""
    if not text:
        return None
    digits = text.strip()
    if len(digits) - 2 * digits[:2].lower().startswith("0x") > MAX_HEX_DIGITS:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None


def dec_value(text: str | None) -> int | None:
    """A decimal count, id or line number as printed, or None when absent, unreadable or too long."""
    if not text or len(text) > MAX_DEC_DIGITS or not text.isdigit() or not text.isascii():
        return None
    return int(text)


def offset_value(text: str | None) -> int | None:
    """A symbol offset: mdb prints 0-9 bare, larger ones as 0x..; 0t.. is decimal. None if unreadable
    or too long (the frame's offset is then unknown, and the parse says so)."""
    if not text:
        return None
    return dec_value(text[2:]) if text.startswith("0t") else hex_value(text)


def _args(text: str | None) -> tuple[int, ...]:
    """The values of an argument list as mdb prints it: bare hex, '(type *)0x...' casts, NULL."""
    if not text or text.isspace():
        return ()
    if _OVERLONG.search(text) is None:
        try:  # the common case: bare hex (int() accepts the blanks and a "0x")
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


# A big transcript names the same few hundred functions hundreds of thousands of times: decoding
# each distinct text once makes every frame share one string per name.
@lru_cache(maxsize=65536)
def split_symbol(sym: str) -> tuple[str, str | None]:
    """(function, module) of a symbol as mdb prints it: 'swtch' -> ('swtch', None), 'libc.so.1`syscall'
    -> ('syscall', 'libc.so.1'). A module name holds no backtick, so the first one ends it."""
    mod, tick, name = sym.partition("`")
    return (name, mod) if tick else (sym, None)


@lru_cache(maxsize=65536)
def decode_label(label: str) -> tuple[str, str | None, int | None]:
    """(function, module, offset) of a location as mdb prints it: 'swtch+0x141', 'unix`swtch+8',
    'vpanic' (offset None)."""
    symbol, _, off = label.partition("+")  # a symbol holds no "+"
    return (*split_symbol(symbol), offset_value(off))


def _frame(line: int, kind: str, m: dict[str, Any], args_text: str | None) -> Frame:
    """The Frame of a frame line, from its terminal's groups: every frame of every format is built here.
    `args_text` is the argument list, joined when it was wrapped onto further lines."""
    if kind == "FRAME":  # $C, $c, ::stack, ::findstack -v: [fp] [mod`]func[+off](args)
        fp, off, neg = m["fp"], m["off"], m["neg"]
        offset = offset_value(off) if off else -(offset_value(neg) or 0) if neg else None
        return Frame(line, *split_symbol(m["sym"]), offset, _args(args_text), int(fp, 16) if fp else None)
    if kind == "STACKS_FRAME":  # "  cv_wait+0x74": no arguments, no pointer column
        return Frame(line, *split_symbol(m["sym"]), offset_value(m["off"]), None, None)
    if kind == "BRACKET":  # "[ sp func+off() ]": the saved pc of a ::findstack thread
        return Frame(line, *decode_label(m["sym"]), (), hex_value(m["sp"]))
    pointer = int(m["fp"], 16)
    if kind == "TRUNCATED_FRAME":  # cut off at the end of the input: only the arguments a comma ended
        off, args = m["off"], m["args"]
        offset = offset_value(off) if off and off not in ("0x", "x") else None
        return Frame(line, m["func"], m["mod"], offset, None if args is None else _args(args.rpartition(",")[0]),
                     pointer)
    if m["func"] is None:  # CONSOLE_FRAME with a bare pc
        return Frame(line, "0x" + m["pc"].lower(), None, None, _args(args_text), pointer)
    return Frame(line, m["func"], m["mod"], offset_value(m["off"]), _args(args_text), pointer)


def _continuation(line: str) -> tuple[str, bool] | None:
    """(arguments, closed) of a line continuing a wrapped argument list: ", more)" as mdb's autowrap
    prints it, "  more)" on SPARC consoles; None when the line is not one. (Plain string steps: the
    regex this replaces backtracked cubically on a long run of blanks.)"""
    text = line.strip()
    if text.startswith(","):
        text = text[1:].lstrip()
    closed = text.endswith(")")
    if closed:
        text = text[:-1].rstrip()
    if "(" in text or ")" in text:
        return None
    return text, closed


def _note_overlong(data: LexInput, line: int, m: dict[str, Any], args_text: str | None, frame: Frame) -> None:
    # marks what hex_value and offset_value would not read: the frame keeps its name and the values
    # before the one that is too long; the transcript line keeps the text
    if args_text and _OVERLONG.search(args_text):
        data.notes.append(f"line {line}: an argument of over {MAX_HEX_DIGITS} digits is kept as text, "
                          "not read as a value")
    off = m.get("off")
    if off and frame.offset is None and off not in ("0x", "x"):
        data.notes.append(f"line {line}: offset '+{off[:20]}' is not one mdb prints; the offset is unknown")


# The indentation nearly every terminal starts with. Possessive, it takes all the leading blanks in
# one way only, so taking it once before the branches reads exactly what taking it in each does.
_INDENT = r"^[ \t]*+"


def _alternation(patterns: dict[str, str]) -> re.Pattern[str]:
    """One regex that finds, in one call in C, the first terminal (in the dict's priority order) that
    matches a line: `lastgroup` names it. The terminal's own regex then gives the line's groups.

    re tries the branches of an alternation in order, so the first branch that matches is the first
    terminal that does (as Lark's own lexers find them). Each branch ends in an empty group named
    for its terminal, and its own groups do not capture (names may not repeat, and captures cost);
    so a branch starts with its terminal's first character test, which lets re pass over a branch
    whose first character cannot match without entering it. Consecutive terminals that start
    with _INDENT share one copy of it."""
    branches: list[str] = []
    shared: list[str] = []  # branches after the shared indentation, not yet closed
    for name, pattern in patterns.items():
        body = _NAMED_GROUP.sub("(?:", pattern)
        if body.startswith(_INDENT):
            shared.append(f"{body[len(_INDENT):]}(?P<{name}>)")
            continue
        if shared:
            branches.append(f"{_INDENT}(?:{'|'.join(shared)})")
            shared = []
        branches.append(f"(?:{body})(?P<{name}>)")
    if shared:
        branches.append(f"{_INDENT}(?:{'|'.join(shared)})")
    return re.compile("|".join(branches))


def _token(kind: str, payload: Any) -> Token:
    tok = Token(kind, "")  # Token is a str: its text stays empty, the payload is its value
    tok.value = payload
    return tok


class LineLexer(Lexer):
    """Lark's custom lexer over the line terminals of the grammar (Lark(..., lexer=LineLexer)).

    Lark hands it the terminals; parse_transcript hands Lark a LexInput instead of text.
    """

    def __init__(self, lexer_conf: Any) -> None:
        """lexer_conf: Lark's, or anything with its `terminals` (TerminalDefs: name, pattern, priority)."""
        terms = sorted(lexer_conf.terminals, key=lambda t: -t.priority)  # stable: equal priorities keep their order
        self._patterns = {t.name: t.pattern.to_regexp() for t in terms}  # in priority order
        # each terminal's own regex, compiled when a line of its kind first turns up (a transcript
        # shows a few kinds; compiling all of them is a third of a short run's lexer set-up)
        self._own: dict[str, re.Pattern[str]] = {}
        # The terminals of _ONLY_WITH are left out of it and tried after it, on the lines holding their
        # text, when the terminal it found (if any) comes after them in the order.
        self._first = _alternation({name: p for name, p in self._patterns.items()
                                    if name != "OTHER" and name not in _ONLY_WITH})
        self._rank = {name: i for i, name in enumerate(self._patterns)}
        self._gated = tuple(sorted(((name, text) for name, text in _ONLY_WITH.items() if name in self._patterns),
                                   key=lambda gate: self._rank[gate[0]]))
        # Transcripts repeat lines verbatim (every ::stacks group ends in the same "swtch+0x141 ...
        # thread_start+8" frames): each distinct line is classified once. The groups are shared
        # between the lines, and nothing changes them.
        self.classify = lru_cache(maxsize=4096)(self._classify_line)  # type: ignore[method-assign]

    # -- classification ------------------------------------------------------------------------

    def classify(self, line: str) -> tuple[str, dict[str, Any] | None]:
        """The terminal a cleaned line matches (OTHER when none), and its named groups (not to be changed)."""
        return self._classify_line(line)

    def _classify_line(self, line: str) -> tuple[str, dict[str, Any] | None]:
        kind, groups = self._classify(line)
        if kind == "OTHER" and line.lstrip().startswith(">"):
            kind, groups = self._unquote(line)
        return kind, groups

    def _classify(self, line: str) -> tuple[str, dict[str, Any] | None]:
        if len(line) > MAX_LINE:
            return "OTHER", None
        m = self._first.match(line)
        kind: str = "OTHER" if m is None else m.lastgroup  # type: ignore[assignment]  # every branch is named
        kind = self._gated_kind(line, kind)
        if kind == "OTHER":
            return "OTHER", None
        return kind, self.regex(kind).match(line).groupdict()  # type: ignore[union-attr]  # it matched

    def _gated_kind(self, line: str, kind: str) -> str:
        # the first of the _ONLY_WITH terminals ranked before `kind` that matches the line, else `kind`
        for name, text in self._gated:
            if text in line and self._rank[name] < self._rank[kind] and self.regex(name).match(line):
                return name
        return kind

    def regex(self, kind: str) -> re.Pattern[str]:
        """The compiled regex of one terminal."""
        rx = self._own.get(kind)
        if rx is None:
            rx = self._own[kind] = re.compile(self._patterns[kind])
        return rx

    @property
    def terminals(self) -> tuple[tuple[str, re.Pattern[str]], ...]:
        """(name, compiled regex) of every line terminal, in priority order."""
        return tuple((name, self.regex(name)) for name in self._patterns)

    def _unquote(self, line: str) -> tuple[str, dict[str, Any] | None]:
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

    def lex(self, data: LexInput) -> Iterator[Token]:  # type: ignore[override]  # a custom lexer gets the input
        """The tokens of the input: one per line, one per run (see the module's docstring)."""
        lines = data.lines
        kinds = data.kinds
        found: list[Any] = []  # per line: the terminal's groups, or a Frame built ahead (_truncated_tail)
        for i, line in enumerate(lines):
            if not line or line.isspace():
                kind, m = "BLANK", None
            elif len(line) > MAX_LINE:
                data.notes.append(f"line {i + 1} is {len(line)} characters long; kept as raw text")
                kind, m = "OTHER", None
            else:
                kind, m = self.classify(line)
            kinds.append(kind)
            found.append(m)
        self._truncated_tail(data, found)
        n = len(lines)
        i = 0
        while i < n:
            kind, m = kinds[i], found[i]
            if kind == "BLANK":
                i += 1
            elif kind in _LINE_RUNS:
                # raw text nobody understands (prose, ::msgbuf chatter), or the member lines of a
                # ::stacks -a group: one token of LineToks
                start = i
                while i < n and kinds[i] == kind:
                    i += 1
                yield _token(kind, tuple([LineTok(j + 1, lines[j], found[j] or {}) for j in range(start, i)]))
            elif kind in _FRAME_RUNS:
                frames, i = self._run(data, found, i, kind)
                yield _token(kind, tuple(frames))
            elif kind == "BRACKET":
                yield _token(kind, _frame(i + 1, kind, m, None))
                i += 1
            else:
                payload = LineTok(i + 1, lines[i], m if m is not None else {})
                i += 1
                if kind == "STATUS_FIELD" and payload.groups.get("key") == "panic message":
                    i = self._join_status_panic(data, found, i, payload)
                elif kind in ("CONSOLE_PANIC", "SAVECORE_PANIC"):
                    i = self._join_console_panic(data, i, payload)
                yield _token(kind, payload)

    def _truncated_tail(self, data: LexInput, found: list[Any]) -> None:
        # An excerpt cut off inside its last frame: parse it as far as it goes, with a note.
        kinds = data.kinds
        last = len(kinds) - 1
        while last >= 0 and kinds[last] == "BLANK":
            last -= 1
        if last < 1 or kinds[last] != "TRUNCATED_FRAME" or kinds[last - 1] not in ("FRAME", "CONSOLE_FRAME"):
            return
        kinds[last] = kinds[last - 1]  # the frame joins the run before it
        found[last] = _frame(last + 1, "TRUNCATED_FRAME", found[last], None)
        data.notes.append(f"line {last + 1}: input ends inside a frame; its name may be cut short")

    def _run(self, data: LexInput, found: list[Any], i: int, kind: str) -> tuple[list[Frame], int]:
        # the frames of a run of `kind` lines starting at line i; the index after the run
        lines, kinds = data.lines, data.kinds
        n = len(kinds)
        frames: list[Frame] = []
        while i < n:
            if kinds[i] != kind:
                # SPARC console frames carry two register lines each; they do not end the run
                if kind == "CONSOLE_FRAME" and _SPARC_REGS.match(lines[i]):
                    i += 1
                    continue
                break
            m = found[i]
            i += 1
            if type(m) is Frame:
                frames.append(m)
                continue
            line = i
            args_text = None
            if kind != "STACKS_FRAME":
                args_text = m["args"]
                if m["close"] is None:  # wrapped: ", more)" (mdb autowrap) or "  more)" (SPARC console)
                    args_text, i = self._continue_args(data, i, args_text, line)
            frame = _frame(line, kind, m, args_text)
            frames.append(frame)
            _note_overlong(data, line, m, args_text, frame)
        return frames, i

    def _continue_args(self, data: LexInput, i: int, args_text: str, lineno: int) -> tuple[str, int]:
        # a wrapped argument list goes on over at most four lines
        lines, kinds = data.lines, data.kinds
        for _ in range(4):
            if i >= len(kinds) or kinds[i] not in ("OTHER", "KEYVAL", "STACKS_FRAME") or len(lines[i]) > MAX_LINE:
                break  # (a line over MAX_LINE is raw text, never a continuation)
            more = _continuation(lines[i])
            if more is None:
                break
            text, closed = more
            text = text.rstrip(",")
            args_text = f"{args_text.strip().rstrip(',')}, {text}" if args_text.strip() else text
            i += 1
            if closed:
                return args_text, i
        data.notes.append(f"line {lineno}: argument list not closed (truncated frame)")
        # the last argument may have been cut mid-number: keep only the ones a comma ended
        head, sep, _ = args_text.rpartition(",")
        return (head if sep else ""), i

    def _join_status_panic(self, data: LexInput, found: list[Any], i: int, payload: LineTok) -> int:
        # mdb before illumos 11186 (2019) wrapped output at the terminal width: the message may start
        # on the next line, or run onto it. It ends where the next status field begins.
        lines, kinds = data.lines, data.kinds
        n = len(kinds)
        value = (payload.groups.get("value") or "").strip()
        end = None
        for j in range(i, min(i + 5, n)):
            k, m = kinds[j], found[j]
            if k in ("PROMPT", "STATUS_HEAD") or k == "STATUS_FIELD" and m is not None and m["key"] in _AFTER_PANIC:
                end = j
                break
        if value and end is not None and (len(lines[i - 1]) < 60 or any(
                kinds[j] not in ("OTHER", "TRAP_BANNER", "BLANK") for j in range(i, end))):
            return i  # a complete one-line message; what follows is more of ::status
        if end is None:
            if value:
                return i  # a one-line message; the block was cut short
            j = i
            while j < n and j < i + 2 and kinds[j] == "BLANK":
                j += 1
            if j >= n or kinds[j] in ("BLANK", "FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            end = j + 1
        pieces = [value]
        widths = [len(lines[i - 1])]
        for j in range(i, end):
            if kinds[j] != "BLANK":
                if not value and len(pieces) == 1:
                    payload.groups = dict(payload.groups, text_line=str(j + 1))
                pieces.append(lines[j].strip())
                widths.append(len(lines[j]))
        payload.groups = dict(payload.groups, value=_join_wrapped(pieces, widths))
        return end

    def _join_console_panic(self, data: LexInput, i: int, payload: LineTok) -> int:
        lines, kinds = data.lines, data.kinds
        msg = (payload.groups.get("msg") or "").strip()
        pieces = [payload.groups.get("msg") or ""]
        widths = [len(lines[i - 1])]
        if not msg:
            # "panic[cpu2]/thread=...:" with the message on the next line (msgbuf, syslog)
            j = i
            while j < len(kinds) and kinds[j] == "BLANK" and j < i + 2:
                j += 1
            if j >= len(kinds) or kinds[j] in ("FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            pieces = [lines[j].strip()]
            widths = [len(lines[j])]
            payload.groups = dict(payload.groups, text_line=str(j + 1))
            i = j + 1
        # a message re-wrapped by a mailer or a web page continues on plain lines of words
        for _ in range(3):
            if i < len(kinds) and kinds[i] == "OTHER" and len(lines[i - 1].strip()) >= 60 \
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
