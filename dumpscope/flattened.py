"""Web-flattened pastes: one line that holds a whole ::status or stack block, split back into its lines."""

from __future__ import annotations

import re

__all__ = ["MIN_FLATTENED", "looks_flattened", "split_flattened"]

# A bug tracker or mail archive scraped to HTML loses its newlines, and a whole '> ::status' and '$C'
# arrive on one line (mdb-formats §2: corpus 004, 027). mdb never prints two frames, two ::status
# fields or a prompt and its output on one line, so each of those starts a line of the original.
_SPLIT = re.compile(
    r"\s+(?="
    r">\s*(?:::|\$[A-Za-z])"  # a prompt: '> ::status', '> $C'
    r"|(?:debugging (?:crash dump|live kernel|core file|domain crash dump)"
    r"|operating system:|image uuid:|panic message:|dump content:|build version:|git branch:|git rev:)\s"
    r")"
    # a frame: 'fp func+0xoff(' anywhere ('fp name(' cannot occur inside an argument list), and
    # 'func+0xoff(' without a frame pointer after the closing parenthesis of the frame before it
    r"|\s+(?=[0-9a-fA-F]{8,16}\s+(?:~?[A-Za-z_$][\w.$`]*(?:\+(?:0x[0-9a-fA-F]+|\d+))?|0x[0-9a-fA-F]+)\()"
    r"|(?<=\))\s+(?=~?[A-Za-z_$][\w.$`]*\+(?:0x[0-9a-fA-F]+|\d+)\()"
    # a console frame after '()' or after the message: 'fp mod:func+off ('
    r"|\s+(?=[0-9a-fA-F]{8,16}\s+[\w.-]+:[\w.$]+\+[0-9a-fA-F]+\s\()"
)
_FRAME_START = re.compile(
    r"^(?:[0-9a-fA-F]{8,16}\s+)?~?[A-Za-z_$][\w.$`:]*(?:\+(?:0x[0-9a-fA-F]+|\d+|[0-9a-fA-F]+))?\s?\("
)
_STATUS_START = re.compile(r"^(?:debugging |operating system:|image uuid:|panic message:|dump content:)")
# Pieces a line must split into, of which at least two frames or three ::status keys, to count as flattened.
MIN_FLATTENED = 3
# Cheaper than the split: only long lines with several frame or field marks are tried at all.
_LONG = 120


def looks_flattened(line: str) -> bool:
    """A cheap first test: long enough, and with two or more frame offsets or ::status keys."""
    return len(line) > _LONG and (line.count("+0x") + line.count("()") >= 2 or line.count("panic message:") >= 1)


def split_flattened(line: str) -> list[str] | None:
    """The lines a flattened paste ran together, or None when the line is not one: it must split into
    at least MIN_FLATTENED pieces, two of them frames or three of them different ::status keys."""
    if not looks_flattened(line):
        return None
    pieces = [p.strip() for p in _SPLIT.split(line) if p and p.strip()]
    if len(pieces) < MIN_FLATTENED:
        return None
    frames = sum(1 for p in pieces if _FRAME_START.match(p))
    keys = {m.group(0) for p in pieces if (m := _STATUS_START.match(p))}
    if frames < 2 and len(keys) < 3:  # a ::status block has at least three of its keys, each once
        return None
    return pieces
