"""Turns transcript text into line tokens: removes paste artefacts and classifies each line by the grammars' terminals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lark import Token
from lark.lexer import Lexer

from dumpscope.dump import Frame

__all__ = ["LexInput", "LineLexer", "LineTok", "MAX_LINE", "split_lines"]

# A line longer than this is kept as raw text without running the line regexes on it: no mdb line
# is anywhere near it, and it bounds the work a hostile input can cause.
MAX_LINE = 64 * 1024

# Terminals whose consecutive lines form one token (a run of frames).
_RUNS = {"FRAME", "CONSOLE_FRAME", "STACKS_FRAME"}
# Status keys that end a wrapped "panic message:" (mdb prints them after it).
_AFTER_PANIC = {"dump content", "build version", "image uuid"}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_BR = re.compile(r"<br\s*/?>\s*$", re.IGNORECASE)
# "2019-01-14T19:09:19.831161+00:00 cube-sw genunix: [ID 655072 kern.notice] " and the classic
# "Jun 10 16:56:31 machine1 savecore: [ID 570001 auth.error] " syslog prefixes
_SYSLOG = re.compile(r"^\s*(?:\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ [\w.-]+: \[ID \d+ [\w.]+\] ?")
_RSYSLOG_ESC = re.compile(r"^(?:#01[25])+|(?:#01[25])+$")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
_QUOTE = re.compile(r"^\s*>\s?")
_SPARC_REGS = re.compile(r"^\s*%[lgoi]\d-\d:")
_WORDY = re.compile(r"[A-Za-z0-9_]{2}")
_CONT = re.compile(r"^\s*,?\s*(?P<args>[^()]*?)\s*(?P<close>\))?\s*$")


@dataclass(slots=True)
class LineTok:
    """The payload of a one-line token: where it is and what the terminal captured."""

    line: int  # 1-based line number
    text: str  # the cleaned line
    groups: dict[str, str | None]  # the terminal's named groups


@dataclass(slots=True)
class LexInput:
    """What the parser is given: the cleaned lines, plus notes the lexer adds while it works."""

    lines: list[str]  # cleaned lines, index 0 is line 1
    notes: list[str] = field(default_factory=list)
    consumed: dict[int, int] = field(default_factory=dict)  # continuation line -> line it was joined to


def split_lines(text: str) -> list[str]:
    """Split on newlines only (not on the other characters str.splitlines knows), so numbering matches editors."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _clean(line: str) -> str:
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


def _int(text: str | None, base: int = 16) -> int | None:
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def _offset(text: str | None) -> int | None:
    # mdb prints 0-9 without a base prefix, larger offsets as 0x..; 0t.. is decimal
    if text is None:
        return None
    if text.startswith("0t"):
        return int(text[2:])
    return int(text, 16)


def _args(text: str) -> tuple[int, ...]:
    text = text.strip()
    if not text:
        return ()
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part[0] == "(":  # 2025 printer with -t: "(vfs_t *)0xfffffe..."
            part = part[part.rfind(")") + 1:].strip()
        value = _int(part)
        if value is None:
            value = _int(part, 10) if part.isdigit() else None
        if value is not None:
            out.append(value)
    return tuple(out)


class LineLexer(Lexer):
    """Lark custom lexer: one token per line, one token per run of frame lines."""

    def __init__(self, lexer_conf: Any) -> None:
        terms = sorted(lexer_conf.terminals, key=lambda t: -t.priority)
        self.terminals: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
            (t.name, re.compile(t.pattern.to_regexp())) for t in terms
        )
        self._by_name = dict(self.terminals)

    # -- classification ------------------------------------------------------------------------

    def classify(self, line: str) -> tuple[str, re.Match[str] | None]:
        """The terminal a cleaned line matches (OTHER when none), and the match."""
        if len(line) > MAX_LINE:
            return "OTHER", None
        for name, rx in self.terminals:
            m = rx.match(line)
            if m is not None:
                if name == "PANICINFO_FIELD" and m.end("name") != 16:
                    continue  # ::panicinfo right-aligns names in 16 columns; prose does not
                if name == "OTHER" and line.lstrip().startswith(">"):
                    return self._unquote(line)
                return name, m
        if line.lstrip().startswith(">"):
            return self._unquote(line)
        return "OTHER", None

    def _unquote(self, line: str) -> tuple[str, re.Match[str] | None]:
        # "> ..." that is not an mdb prompt: a Markdown quote (or a bare prompt left at the end)
        rest = _QUOTE.sub("", line, count=1)
        if not rest.strip():
            return "BLANK", None
        return self.classify(rest)

    # -- the token stream ----------------------------------------------------------------------

    def lex(self, data: LexInput) -> Iterator[Token]:  # type: ignore[override]
        lines = data.lines
        kinds: list[tuple[str, re.Match[str] | None]] = []
        classify = self.classify
        frame_rx = self._by_name.get("FRAME")
        for text in lines:
            if not text or text.isspace():
                kinds.append(("BLANK", None))
                continue
            # the hot path: most lines of a big transcript are frames
            m = frame_rx.match(text) if frame_rx is not None and len(text) <= MAX_LINE else None
            if m is not None:
                kinds.append(("FRAME", m))
            else:
                if len(text) > MAX_LINE:
                    data.notes.append(f"line {len(kinds) + 1} is {len(text)} characters long; kept as raw text")
                kinds.append(classify(text))
        yield from self._tokens(data, kinds)

    def _tokens(self, data: LexInput, kinds: list[tuple[str, re.Match[str] | None]]) -> Iterator[Token]:
        lines = data.lines
        n = len(kinds)
        i = 0
        while i < n:
            kind, m = kinds[i]
            if kind == "BLANK":
                i += 1
                continue
            if kind in _RUNS:
                frames, i = self._run(data, kinds, i, kind)
                tok = Token(kind, "")
                tok.value = tuple(frames)
                yield tok
                continue
            groups = m.groupdict() if m is not None else {}
            tok = Token(kind, "")
            payload = LineTok(i + 1, lines[i], groups)
            tok.value = payload
            i += 1
            if kind == "STATUS_FIELD" and groups.get("key") == "panic message":
                i = self._join_status_panic(data, kinds, i, payload)
            elif kind in ("CONSOLE_PANIC", "SAVECORE_PANIC"):
                i = self._join_console_panic(data, kinds, i, payload)
            yield tok

    def _run(self, data: LexInput, kinds: list[tuple[str, re.Match[str] | None]], i: int,
             kind: str) -> tuple[list[Frame], int]:
        lines = data.lines
        n = len(kinds)
        frames: list[Frame] = []
        while i < n:
            k, m = kinds[i]
            if k != kind:
                # SPARC console frames carry two register lines each; they do not end the run
                if kind == "CONSOLE_FRAME" and _SPARC_REGS.match(lines[i]):
                    i += 1
                    continue
                break
            assert m is not None
            lineno = i + 1
            i += 1
            if kind == "STACKS_FRAME":
                sym = m["sym"]
                mod = None
                if "`" in sym:
                    mod, sym = sym.split("`", 1)
                frames.append(Frame(lineno, sym, mod, _offset(m["off"]), None, None))
                continue
            args_text = m["args"]
            if m["close"] is None:
                # wrapped argument list: ", more)" (mdb autowrap) or "  more)" (SPARC console)
                args_text, i = self._continue_args(data, kinds, i, args_text, lineno)
            fp = m["fp"]
            if kind == "FRAME":
                sym = m["sym"]
                mod = None
                if "`" in sym:
                    mod, sym = sym.split("`", 1)
                off = m["off"]
                if off is not None:
                    offset: int | None = int(off) if len(off) == 1 else _offset(off)
                elif m["neg"] is not None:
                    offset = -(_offset(m["neg"]) or 0)
                else:
                    offset = None
                frames.append(Frame(lineno, sym, mod, offset, _args(args_text),
                                    int(fp, 16) if fp else None))
            else:  # CONSOLE_FRAME: module:func+hexoff, or a bare pc
                func = m["func"]
                if func is None:
                    frames.append(Frame(lineno, "0x" + m["pc"].lower(), None, None, _args(args_text),
                                        int(fp, 16)))
                else:
                    frames.append(Frame(lineno, func, m["mod"], int(m["off"], 16), _args(args_text),
                                        int(fp, 16)))
        return frames, i

    def _continue_args(self, data: LexInput, kinds: list[tuple[str, re.Match[str] | None]], i: int,
                       args_text: str, lineno: int) -> tuple[str, int]:
        lines = data.lines
        for _ in range(4):
            if i >= len(kinds) or kinds[i][0] not in ("OTHER", "KEYVAL", "STACKS_FRAME"):
                break
            c = _CONT.match(lines[i])
            if c is None:
                break
            args_text = f"{args_text}, {c['args'].rstrip(',')}" if args_text.strip() else c["args"]
            data.consumed[i + 1] = lineno
            i += 1
            if c["close"]:
                return args_text, i
        data.notes.append(f"line {lineno}: argument list not closed (truncated frame)")
        # the last argument may have been cut mid-number: keep only the ones a comma ended
        head, sep, _ = args_text.rpartition(",")
        return (head if sep else ""), i

    def _join_status_panic(self, data: LexInput, kinds: list[tuple[str, re.Match[str] | None]], i: int,
                           payload: LineTok) -> int:
        # mdb before illumos 11186 (2019) wrapped output at the terminal width: the message may start
        # on the next line, or run onto it. It ends where the next status field begins.
        lines = data.lines
        n = len(kinds)
        value = (payload.groups.get("value") or "").strip()
        end = None
        for j in range(i, min(i + 5, n)):
            k, m = kinds[j]
            if k in ("PROMPT", "STATUS_HEAD") or k == "STATUS_FIELD" and m is not None and m["key"] in _AFTER_PANIC:
                end = j
                break
        if end is None:
            if value:
                return i  # a one-line message; the block was cut short
            j = i
            while j < n and j < i + 2 and kinds[j][0] == "BLANK":
                j += 1
            if j >= n or kinds[j][0] in ("BLANK", "FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            end = j + 1
        pieces = [value]
        for j in range(i, end):
            if kinds[j][0] != "BLANK":
                pieces.append(lines[j].strip())
                data.consumed[j + 1] = payload.line
        payload.groups = dict(payload.groups, value=_join_wrapped(pieces))
        return end

    def _join_console_panic(self, data: LexInput, kinds: list[tuple[str, re.Match[str] | None]], i: int,
                            payload: LineTok) -> int:
        lines = data.lines
        msg = (payload.groups.get("msg") or "").strip()
        pieces = [payload.groups.get("msg") or ""]
        if not msg:
            # "panic[cpu2]/thread=...:" with the message on the next line (msgbuf, syslog)
            j = i
            while j < len(kinds) and kinds[j][0] == "BLANK" and j < i + 2:
                j += 1
            if j >= len(kinds) or kinds[j][0] in ("FRAME", "CONSOLE_FRAME", "PROMPT"):
                return i
            pieces = [lines[j].strip()]
            data.consumed[j + 1] = payload.line
            i = j + 1
        # a message re-wrapped by a mailer or a web page continues on plain lines of words
        for _ in range(3):
            if i < len(kinds) and kinds[i][0] == "OTHER" and len(pieces[-1]) >= 40 \
                    and _WORDY.search(lines[i]):
                pieces.append(lines[i].strip())
                data.consumed[i + 1] = payload.line
                i += 1
            else:
                break
        payload.groups = dict(payload.groups, msg=_join_wrapped(pieces))
        return i


def _join_wrapped(pieces: list[str]) -> str:
    out = ""
    for piece in pieces:
        if not out:
            out = piece
        elif out.endswith(" "):
            out += piece.lstrip()
        else:
            out += " " + piece.strip()
    return out.strip()
