"""Every regular expression dumpscope ships passes the signature loader's safety check (issue 18).

The list is found, not written down: every grammar terminal (the Lark parser's own list), every
compiled pattern a dumpscope module keeps at module level (in containers too: the lexer's helpers,
the bucket masks, the renderers'), and every pattern of the bundled data files (signatures, the
irrelevant-frame list, the crash hints), which their loaders check as they load. A new regex anywhere
is checked without anyone adding it here; a test below makes sure the finding finds the known ones.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Iterator

import pytest

import dumpscope
from dumpscope.grammar import transcript_parser
from dumpscope.signatures import check_regex, load_irrelevant_frames, signature_set


def _patterns_in(value: object, depth: int = 0) -> Iterator[re.Pattern[str]]:
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            yield value
    elif depth < 3 and isinstance(value, tuple | list | set | frozenset):
        for item in value:
            yield from _patterns_in(item, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in value.values():
            yield from _patterns_in(item, depth + 1)


def module_patterns() -> dict[str, str]:
    """pattern -> where it lives, for every pattern kept at module level in the dumpscope package."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(dumpscope.__path__):
        if info.name == "__main__":
            continue  # running it runs the CLI
        module = importlib.import_module(f"dumpscope.{info.name}")
        for name, value in vars(module).items():
            for p in _patterns_in(value):
                found.setdefault(p.pattern, f"{info.name}.{name}")
    return found


def terminal_patterns() -> dict[str, str]:
    """pattern -> terminal name, for every terminal of the composed transcript grammar."""
    return {t.pattern.to_regexp(): f"terminal {t.name}" for t in transcript_parser().terminals}


def data_patterns() -> dict[str, str]:
    found: dict[str, str] = {}
    for sig in signature_set():
        pats = [sig.crash.message, *sig.crash.exclude, *(f.function for f in sig.crash.frames),
                *(f.module for f in sig.crash.frames), *(f.function for t in sig.threads for f in t.frames)]
        for p in pats:
            if p is not None:
                found.setdefault(p.pattern, f"signature {sig.id}")
    for p in load_irrelevant_frames():
        found.setdefault(p.pattern, "irrelevant_frames.txt")
    return found


ALL = {**data_patterns(), **module_patterns(), **terminal_patterns()}


def test_the_finding_finds_what_we_know_is_there() -> None:
    where = set(ALL.values())
    assert len(ALL) >= 100
    assert any(w.startswith("terminal ") for w in where)  # the grammar
    assert any(w.startswith("lexer.") for w in where)  # lexer helpers
    assert any(w.startswith("bucket.") for w in where)  # bucket masks
    assert any(w.startswith("signature ") for w in where) and "irrelevant_frames.txt" in where


_PATTERNS = sorted(ALL)


@pytest.mark.parametrize("pattern", _PATTERNS, ids=[ALL[p] for p in _PATTERNS])
def test_every_shipped_regex_passes_the_safety_check(pattern: str) -> None:
    # as strict as the signature loader's (nested or alternated repeats, optional parts in repeats,
    # backreferences, lookaround, adjacent unbounded repeats sharing a character), without its
    # 300-character length cap. There are no exemptions: a regex that would repeat a group of repeats
    # uses possessive ones, and one that would look around leaves that to plain code (flattened.py).
    assert check_regex(pattern, max_length=None) is None, (ALL[pattern], pattern)


# -- long near-miss lines: the work grows with the line, not faster ----------------------------------

# Line starts that take a terminal some way in, and runs of the characters its repeats take; each line
# then ends in a NUL, which no terminal accepts, so every way to match is tried and refused.
_STARTS = ("", "  ", "ffffff000f832950 ", "ffffff000f832950 f+0x1(", "panic[cpu0]/thread=ffffff000f832950: ",
           "stack pointer for thread ", "panic message: ", "BAD TRAP: type=e ", "PC: f  CMD: ", "    cpu ",
           "genunix:f+1c (", "> ", "# ", "* panicstack = ", "rax: 1 ")
_RUNS = (" ", "\t", "(", "f+0x1(", "0", "a", ", 1", ": ", "x ", "# echo ", "| ", "m:f+1 () | ", "rax: 1 ")


def _cost(rx: re.Pattern[str], n: int) -> float:
    # the fastest of five CPU-time measurements of every near-miss line of about n characters
    lines = [start + run * (n // len(run)) + "\0" for start in _STARTS for run in _RUNS]
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        for line in lines:
            rx.match(line)
        best = min(best, time.process_time() - t)
    return best


def test_terminals_on_long_near_miss_lines_grow_linearly_like_the_baseline() -> None:
    # relative, in the same run: how much longer four times the line takes, against a regex that is
    # linear by construction; a quadratic terminal grows 16x where the baseline grows 4x
    baseline = re.compile(r"^[^\0]*\0x")
    n = 4096
    base_growth = _cost(baseline, 4 * n) / max(_cost(baseline, n), 1e-6)
    slow = []
    for t in transcript_parser().terminals:
        rx = re.compile(t.pattern.to_regexp())
        small, big = _cost(rx, n), _cost(rx, 4 * n)
        if big > 1e-3 and big / max(small, 1e-6) > 3 * max(base_growth, 4.0):
            slow.append(f"{t.name}: x{big / max(small, 1e-6):.1f} for 4x the line (baseline x{base_growth:.1f})")
    assert not slow, slow
