"""Every frame line in every transcript of ../shared/corpus is parsed as a frame.

Frame lines are found here by a deliberately loose, independent detector (not the grammar): any
line showing 'func+off(' / 'func()' / 'FP module:func+off (' / '::stacks' frames. Each such line
must be the line of some parsed Frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import CORPUS
from dumpscope.parse import parse_transcript

_LOOSE = [
    re.compile(r"\b[A-Za-z_][\w.`]*\+(?:0x)?[0-9a-fA-F]+\("),  # mdb: func+0x1f( / func+8(
    re.compile(r"^\W*(?:[0-9a-f]{8,16}\s+)?[A-Za-z_][\w`.]*\([0-9a-f, ]*\)\W*$"),  # vpanic() / vpanic(fea6388c)
    re.compile(r"\b0x[0-9a-f]{8,16}\(\)"),  # mdb unresolved
    re.compile(r"\b[0-9a-f]{8,16} [\w.-]+:[\w.$]+\+[0-9a-f]+ \("),  # console module:func+off (
    re.compile(r"\b[0-9a-f]{8,16} [0-9a-f]{8,16} \("),  # console unresolved pc
    re.compile(r"^ {9,}[A-Za-z_][\w.]*(?:\+0x[0-9a-f]+)?\s*$"),  # ::stacks frame (17 or 9 columns)
]
_HEADER_END = "# ---"
# a ::threadlist row (ADDR PROC LWP CMD/LWPID): its last column may be an unresolved start function
# ('0xfffffea31d21c9c0()'), which names the thread, not a frame of a stack
_THREADLIST_ROW = re.compile(r"^\s*[0-9a-f]{8,16}\s+[0-9a-f]{8,16}\s+[0-9a-f]+\s+\S+\s*$")


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("[0-9]*.txt")) if CORPUS.is_dir() else []


def _frame_lines(text: str) -> list[int]:
    found = []
    in_header = text.startswith("# ")
    for n, line in enumerate(text.split("\n"), 1):
        if in_header:
            in_header = line.strip() != _HEADER_END
            continue
        if any(rx.search(line) for rx in _LOOSE) and not _THREADLIST_ROW.match(line):
            found.append(n)
    return found


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.stem[:40])
def test_every_frame_line_is_a_frame(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    dump = parse_transcript(text, path.name)
    parsed = {f.line for s in dump.stacks for f in s.frames}
    parsed |= {f.line for t in dump.threads for f in t.frames}
    missing = [n for n in _frame_lines(text) if n not in parsed]
    lines = text.split("\n")
    assert not missing, "frame lines not parsed as frames:\n" + "\n".join(
        f"  {n}: {lines[n - 1]}" for n in missing)


def test_the_detector_finds_frames(corpus_dir: Path) -> None:
    # guard against a detector that finds nothing (and so lets everything pass)
    total = sum(len(_frame_lines(p.read_text(encoding="utf-8", errors="replace"))) for p in _corpus_files())
    assert total >= 200
