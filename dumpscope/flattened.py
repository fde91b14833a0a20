"""Web-flattened pastes: one line that holds a whole ::status or stack block, split back into its lines."""

from __future__ import annotations

import re

__all__ = ["MIN_FLATTENED", "flattened_lines", "looks_flattened", "split_flattened"]

# A bug tracker or mail archive scraped to HTML loses its newlines, and a whole '> ::status' and '$C'
# arrive on one line (mdb-formats §2: corpus 004, 027). mdb never prints two frames, two ::status
# fields or a prompt and its output on one line, so each of those starts a line of the original.
# A line is cut at a run of white space that one of these follows (matched where the run ends; none
# of them starts with white space, so only whole runs count):
_STARTS_LINE = (
    re.compile(
        r">\s*(?:::|\$[A-Za-z])"  # a prompt: '> ::status', '> $C'
        r"|(?:debugging (?:crash dump|live kernel|core file|domain crash dump)"
        r"|operating system:|image uuid:|panic message:|dump content:|build version:|git branch:|git rev:)\s"
    ),
    # a frame: 'fp func+0xoff(' anywhere ('fp name(' cannot occur inside an argument list)
    re.compile(r"[0-9a-fA-F]{8,16}\s+(?:~?[A-Za-z_$][\w.$`]*(?:\+(?:0x[0-9a-fA-F]+|\d+))?|0x[0-9a-fA-F]+)\("),
    # a console frame after '()' or after the message: 'fp mod:func+off ('
    re.compile(r"[0-9a-fA-F]{8,16}\s+[\w.-]+:[\w.$]+\+[0-9a-fA-F]+\s\("),
)
# ... or, when the run follows the closing parenthesis of the frame before, 'func+0xoff(' without a
# frame pointer
_FRAME_AFTER_CLOSE = re.compile(r"~?[A-Za-z_$][\w.$`]*\+(?:0x[0-9a-fA-F]+|\d+)\(")
_BLANKS = re.compile(r"\s+")
_FRAME_START = re.compile(
    r"^(?:[0-9a-fA-F]{8,16}\s+)?~?[A-Za-z_$][\w.$`:]*(?:\+(?:0x[0-9a-fA-F]+|\d+|[0-9a-fA-F]+))?\s?\("
)
_STATUS_START = re.compile(r"^(?:debugging |operating system:|image uuid:|panic message:|dump content:)")
# Pieces a line must split into, of which at least two frames or three ::status keys, to count as flattened.
MIN_FLATTENED = 3
# Cheaper than the split: only long lines with several frame or field marks are tried at all.
_LONG = 120


def flattened_lines(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, the lines it came from) of every flattened line of a transcript."""
    return [(n, pieces) for n, line in enumerate(lines, 1) if (pieces := split_flattened(line)) is not None]


def looks_flattened(line: str) -> bool:
    """A cheap first test: long enough, and with two or more frame offsets or ::status keys."""
    return len(line) > _LONG and (line.count("+0x") + line.count("()") >= 2 or line.count("panic message:") >= 1)


def split_flattened(line: str) -> list[str] | None:
    """The lines a flattened paste ran together, or None when the line is not one: it must split into
    at least MIN_FLATTENED pieces, two of them frames or three of them different ::status keys."""
    if not looks_flattened(line):
        return None
    pieces = [p.strip() for p in _split_at_line_starts(line) if p and p.strip()]
    if len(pieces) < MIN_FLATTENED:
        return None
    frames = sum(1 for p in pieces if _FRAME_START.match(p))
    keys = {m.group(0) for p in pieces if (m := _STATUS_START.match(p))}
    if frames < 2 and len(keys) < 3:  # a ::status block has at least three of its keys, each once
        return None
    return pieces


def _split_at_line_starts(line: str) -> list[str]:
    """The line cut at every run of white space that a line of the original follows (see _STARTS_LINE).

    Plain code looks behind the run and ahead of it, where one regex would need lookaround (which
    is not linear in general, and which tests/test_regex_safety.py refuses).
    """
    pieces = []
    start = 0
    for run in _BLANKS.finditer(line):
        begin, end = run.span()
        if any(rx.match(line, end) for rx in _STARTS_LINE) or (
            begin > 0 and line[begin - 1] == ")" and _FRAME_AFTER_CLOSE.match(line, end)
        ):
            pieces.append(line[start:begin])
            start = end
    pieces.append(line[start:])
    return pieces
