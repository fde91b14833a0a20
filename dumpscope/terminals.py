"""Picks, in C, the first line terminal (in priority order) that matches a line of a transcript."""

from __future__ import annotations

import re
import re._constants as _sre_constants  # type: ignore[import-not-found]  # no stubs for the regex parser
import re._parser as _sre_parse  # type: ignore[import-not-found]
from typing import Any

__all__ = ["FirstTerminal"]

_NAMED = re.compile(r"\(\?P<\w+>")
# Lark hands over "[ \\t]" with the tab already a literal character; accept both spellings.
_LEAD = ("^[ \\t]*", "^[ \\t]+", "^[ \t]*", "^[ \t]+")


class FirstTerminal:
    """Finds, in C, the first terminal (in priority order) whose regex matches a line.

    The terminals are tried as one alternation, but only those that can begin with the line's
    first non-blank character and whose required characters ('(' of a frame, ':' of a field) the
    line holds: most terminals begin with the same optional indentation, which is skipped once, and
    both the first and the required characters are read off the parsed regexes (a failing regex can
    cost several times a match while it backtracks; a membership test is a memchr). Terminals whose
    body could itself begin with a blank keep their own anchor in a second, small alternation, so the
    answer is exactly the first match of the terminals in order. The catch-all OTHER is left out.
    """

    def __init__(self, terminals: tuple[tuple[str, re.Pattern[str]], ...]) -> None:
        self._own = [rx.match for _, rx in terminals]  # each terminal's own regex, with its named groups
        # (index, body, first characters, required markers)
        self._bodies: list[tuple[int, str, frozenset[int], int]] = []
        self._wholes: list[tuple[int, str, int]] = []  # (index, anchored pattern, required markers)
        for i, (name, rx) in enumerate(terminals):
            if name == "OTHER":
                continue
            pattern = _NAMED.sub("(?:", rx.pattern)
            need = _required_markers(pattern)
            lead = next((lead for lead in _LEAD if pattern.startswith(lead)), None)
            body = pattern[len(lead):] if lead else ""
            first = _first_chars(body) if lead else None
            if first is None:
                self._wholes.append((i, f"(?P<T{i}>{pattern})", need))
                continue
            guard = "(?<=[ \\t])" if lead.endswith("+") else ""  # type: ignore[union-attr]
            self._bodies.append((i, guard + body, first, need))
        self._index = {f"T{i}": i for i in range(len(terminals))}  # group name -> terminal index
        # the earliest terminal in the second alternation: a first match before it needs no second look
        self._whole_first = min((i for i, _, _ in self._wholes), default=len(terminals))
        # alternations built on first use, by the markers a line holds, then by its first character
        self._by_char: list[dict[str, Any]] = [{} for _ in range(1 << len(_MARKERS))]
        self._whole: list[Any] = [self._whole_for(present) for present in range(1 << len(_MARKERS))]

    def _whole_for(self, present: int) -> Any:
        parts = [p for _, p, need in self._wholes if need & present == need]
        return re.compile("|".join(parts)).match if parts else None

    def _for(self, char: str, present: int) -> Any:
        # the terminals that can start with this character and whose required markers are all
        # present: the first one's own regex (a match there needs no second look to get its groups),
        # and one alternation of the others
        code = ord(char) if ord(char) < 128 else _NON_ASCII
        parts = [(i, f"(?P<T{i}>{body})") for i, body, first, need in self._bodies
                 if code in first and need & present == need]
        entry = None
        if parts:
            rest = [p for _, p in parts[1:]]
            alternation = re.compile("^[ \\t]*(?:" + "|".join(rest) + ")").match if rest else None
            entry = (parts[0][0], self._own[parts[0][0]], alternation)
        self._by_char[present][char] = entry
        return entry

    def leader(self, char: str) -> int | None:
        """The index of the terminal that outranks every other one a line beginning with `char` (not
        a blank) could match, or None when no terminal does: when it matches, it is the answer."""
        code = ord(char) if ord(char) < 128 else _NON_ASCII
        for i, _body, first, _need in self._bodies:  # in priority order
            if code in first:
                return i if i < self._whole_first else None
        return None

    def __call__(self, line: str) -> tuple[int, re.Match[str] | None] | None:
        """(index of the first terminal that matches the line, its match or None), or None if none does."""
        found: tuple[int, re.Match[str] | None] | None = None
        present = ("(" in line) | (":" in line) << 1  # the bits of _MARKERS
        head = line.lstrip(" \t")[:1]
        by_char = self._by_char[present]
        entry = by_char[head] if head in by_char else self._for(head, present) if head else None
        if entry is not None:
            first, own, others = entry
            m = own(line)
            if m is not None:
                found = (first, m)
            else:
                m = others(line) if others is not None else None
                if m is not None:
                    found = (self._index[m.lastgroup], None)
            if found is not None and found[0] < self._whole_first:
                return found
        whole = self._whole[present]
        m = whole(line) if whole is not None else None
        if m is not None:
            index = self._index[m.lastgroup]
            if found is None or index < found[0]:
                return index, None
        return found


_NON_ASCII = -1
_ALL = frozenset(range(128)) | {_NON_ASCII}
# Characters whose presence in a line is tested before any regex runs (bit i of a mask is _MARKERS[i]).
_MARKERS = "(:"


def _required_markers(pattern: str) -> int:
    """The mask of _MARKERS that every match of the regex must contain (0 when unsure)."""
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return 0
    mask = 0
    for bit, char in enumerate(_MARKERS):
        if ord(char) in _seq_required(list(parsed)):
            mask |= 1 << bit
    return mask


def _seq_required(items: list[Any]) -> set[int]:
    # characters every match of the sequence contains: the union over its items
    out: set[int] = set()
    for op, av in items:
        out |= _item_required(op, av)
    return out


def _item_required(op: Any, av: Any) -> set[int]:
    c = _sre_constants
    if op is c.LITERAL:
        return {av}
    if op is c.SUBPATTERN:
        return _seq_required(list(av[-1]))
    if op is c.ATOMIC_GROUP:
        return _seq_required(list(av))
    if op is c.ASSERT:  # a lookahead's text is in the line too (a lookbehind's as well)
        return _seq_required(list(av[1]))
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, _high, sub = av
        return _seq_required(list(sub)) if low >= 1 else set()
    if op is c.BRANCH:  # what every branch requires
        branches = [_seq_required(list(b)) for b in av[1]]
        return set.intersection(*branches) if branches else set()
    return set()  # character sets, negative lookarounds, ...: require nothing for sure


def _first_chars(pattern: str) -> frozenset[int] | None:
    """The characters a regex can start with (ASCII codes; -1 for any non-ASCII), or None when it
    could match empty text or start with a blank (then it is not safe to skip indentation for it)."""
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return None
    chars, nullable = _seq_first(list(parsed))
    if nullable or 9 in chars or 32 in chars:
        return None
    return frozenset(chars)


def _seq_first(items: list[Any]) -> tuple[set[int], bool]:
    # (characters the sequence may start with, may it match empty), conservatively
    out: set[int] = set()
    for op, av in items:
        chars, nullable = _item_first(op, av)
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _item_first(op: Any, av: Any) -> tuple[set[int], bool]:
    c = _sre_constants
    if op is c.LITERAL:
        return {av} if av < 128 else {_NON_ASCII}, False
    if op is c.IN:
        return _set_chars(av), False
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return set(), True  # zero-width
    if op is c.SUBPATTERN:
        return _seq_first(list(av[-1]))
    if op is c.ATOMIC_GROUP:
        return _seq_first(list(av))
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, _high, sub = av
        chars, nullable = _seq_first(list(sub))
        return chars, nullable or low == 0
    if op is c.BRANCH:
        results = [_seq_first(list(b)) for b in av[1]]
        return set().union(*(r[0] for r in results)), any(r[1] for r in results)
    return set(_ALL), True  # ANY, NOT_LITERAL, group references, ...: assume the worst


_CATEGORY_RX = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
                "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W"}


def _set_chars(items: Any) -> set[int]:
    c = _sre_constants
    chars: set[int] = set()
    negate = False
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            chars.add(av if av < 128 else _NON_ASCII)
        elif op is c.RANGE:
            chars.update(x if x < 128 else _NON_ASCII for x in range(av[0], min(av[1], 128) + 1))
            if av[1] >= 128:
                chars.add(_NON_ASCII)
        elif op is c.CATEGORY and str(av) in _CATEGORY_RX:
            rx = re.compile(_CATEGORY_RX[str(av)])
            chars.update(x for x in range(128) if rx.match(chr(x)))
            chars.add(_NON_ASCII)  # \w, \S and the rest also take non-ASCII characters
        else:
            return set(_ALL)
    return set(_ALL) - chars | {_NON_ASCII} if negate else chars
