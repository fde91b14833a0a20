"""Tests of render.py: the streamed `dumpscope.parse/2` writer (byte-for-byte the json.dumps of
dump_to_json) and the verdict table."""

from __future__ import annotations

import json
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import CORPUS, TRANSCRIPTS
from dumpscope.dump import Cpu, Dump, Frame, Section, SectionKind, Stack, Status, Thread
from dumpscope.parse import parse_transcript
from dumpscope.render import dump_to_json, iter_dump_json
from dumpscope.verdict import Confidence, Verdict


def reference(dump: Dump, source: str) -> str:
    """The document as the spec defines it: the dict of dump_to_json through json.dumps."""
    return json.dumps(dump_to_json(dump, source), sort_keys=True, separators=(",", ":")) + "\n"


def streamed(dump: Dump, source: str) -> str:
    return "".join(iter_dump_json(dump, source))


INPUTS = sorted(TRANSCRIPTS.glob("*.txt")) + (sorted(CORPUS.glob("*.txt")) if CORPUS.is_dir() else [])


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_streamed_json_is_the_reference_document(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    dump = parse_transcript(text, path.name)
    assert streamed(dump, str(path)) == reference(dump, str(path))


# -- every field, every branch ---------------------------------------------------------------------

# Text as transcripts can carry it: quotes, backslashes, controls, non-ASCII and astral characters.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["swtch", "0xfffffffffba436e1", 'a"b', "a\\b", "\x1b[2J", "\u00e9", "\U0001f600", "", "null"])
OPT_TEXT = st.none() | TEXT
INT = st.integers(min_value=-(2**70), max_value=2**70)
OPT_INT = st.none() | INT
ADDR = st.none() | st.integers(min_value=0, max_value=2**64 - 1)
KIND = st.sampled_from(list(SectionKind))

FRAMES = st.lists(st.builds(
    Frame, line=INT, function=TEXT, module=OPT_TEXT, offset=OPT_INT,
    args=st.none() | st.lists(INT, max_size=20).map(tuple), fp=ADDR,
), max_size=5).map(tuple)
STACKS = st.builds(Stack, line=INT, frames=FRAMES, command=OPT_TEXT, console=st.booleans())
THREADS = st.builds(
    Thread, line=INT, kind=KIND, address=ADDR, frames=FRAMES, description=OPT_TEXT, state=OPT_TEXT,
    sobj=OPT_TEXT, count=OPT_INT, stack_pointer=ADDR, proc=ADDR, lwp=ADDR, wchan=ADDR, failure=OPT_TEXT,
    is_panic=st.booleans(),
)
PAIRS = st.lists(st.tuples(TEXT, TEXT), max_size=3).map(tuple)
STATUS = st.builds(
    Status, line=INT, target=OPT_TEXT, host=OPT_TEXT, version=OPT_TEXT, panic_message=OPT_TEXT,
    bits=OPT_INT, extra=PAIRS, lines=st.lists(st.tuples(TEXT, INT), max_size=3).map(tuple),
)
DUMPS = st.builds(
    Dump, status=st.none() | STATUS, panic_message=OPT_TEXT, panic_message_line=OPT_INT,
    panic_stack=st.none() | STACKS, stacks=st.lists(STACKS, max_size=3).map(tuple),
    threads=st.lists(THREADS, max_size=4).map(tuple), panic_thread_address=ADDR, panic_cpu=OPT_INT,
    panicinfo=PAIRS,
    cpus=st.lists(st.builds(Cpu, line=INT, cpu_id=INT, address=INT, flags=INT, thread=ADDR, proc=OPT_TEXT),
                  max_size=2).map(tuple),
    sections=st.lists(st.builds(Section, kind=KIND, start=INT, end=INT, command=OPT_TEXT), max_size=4).map(tuple),
    notes=st.lists(TEXT, max_size=2).map(tuple), line_count=INT,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(DUMPS, TEXT)
def test_streamed_json_equals_the_reference_for_any_dump(dump: Dump, source: str) -> None:
    assert streamed(dump, source) == reference(dump, source)


def test_every_frame_and_thread_shape() -> None:
    # Every shape of frame and thread a transcript gives (::findstack -v, $C, $c without fp, console
    # frames with a module, ::stacks frames, unresolved frames without offset, long argument lists)
    frames = tuple(
        Frame(line, function, module, offset, args, fp)
        for line, (function, module, offset, args, fp) in enumerate(itertools.product(
            ["swtch", 'q"uote\u00e9'], [None, "unix"], [None, 0, 0x1a],
            [None, (), (1,), (0, 2**64 - 1, -3), tuple(range(16)), tuple(range(17))], [None, 0xfffffb04]))
    )
    threads = (
        Thread(1, SectionKind.FINDSTACK, 0xfffffe01, frames, "bhyve/1 [vcpu 0]", stack_pointer=0xfffffb04),
        Thread(2, SectionKind.FINDSTACK, 0xfffffe01, frames, "bhyve/1 [vcpu 0]", stack_pointer=0xfffffb08),
        Thread(3, SectionKind.FINDSTACK, None, (), failure="<thread not in memory>", stack_pointer=1),
        Thread(4, SectionKind.FINDSTACK, 0xfffffe02, frames[:3], is_panic=True),
        Thread(5, SectionKind.STACKS, 0xfffffe03, frames, state="SLEEP", sobj="CV", count=4),
        Thread(6, SectionKind.THREADLIST, 0xfffffe04, frames, "CMD: sched", proc=1, lwp=2, wchan=3),
    )
    stacks = (Stack(7, frames, "$C"), Stack(8, frames, console=True), Stack(9, ()))
    dump = Dump(panic_stack=stacks[0], stacks=stacks, threads=threads)
    assert streamed(dump, "x") == reference(dump, "x")


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 129])
def test_chunk_boundaries(n: int) -> None:
    # threads and sections are written in chunks of 64: no item lost, doubled or misjoined at the seams
    frame = Frame(3, "swtch", None, 0x141, (1, 0xfffffe0000001234), 0xfffffb0400001000)
    t = Thread(2, SectionKind.FINDSTACK, 0xfffffe0000000001, (frame, frame._replace(module="unix", args=None)))
    dump = Dump(threads=tuple(t._replace(line=i) for i in range(n)),
                sections=tuple(Section(SectionKind.FINDSTACK, i, i + 1) for i in range(n)), line_count=n)
    assert streamed(dump, "x") == reference(dump, "x")
    assert len(json.loads(streamed(dump, "x"))["threads"]) == n


def test_chunks_are_bounded() -> None:
    # streamed: many threads never become one string
    frame = Frame(3, "swtch", None, 0x141, (1, 2, 3), 0xfffffb0400001000)
    t = Thread(2, SectionKind.FINDSTACK, 1, (frame,) * 10)
    chunks = list(iter_dump_json(Dump(threads=(t,) * 1000), "x"))
    assert len(chunks) > 10 and max(map(len, chunks)) < 200_000


# --- the verdict table ---------------------------------------------------------------------------


def _table_verdicts() -> list[Verdict]:
    ok = Verdict("dumps/a.txt", "ok", platform="joyent_20180216T202957Z", signature="illumos-12476",
                 confidence=Confidence.LIKELY, bucket="9bcae4dcf7", title="cyclic reprogramming can race with removal")
    return [ok, Verdict("dumps/b.txt", "error", error="empty file", title="error: empty file"),
            Verdict("x" * 90, "ok", bucket="0123456789", title="t")]


def test_the_table_has_a_row_per_verdict_with_control_characters_escaped() -> None:
    from dumpscope.render import render_table

    rows = _table_verdicts() + [Verdict("tab\there \x1b[31m", "ok", bucket="0123456789", title="t")]
    lines = render_table(rows).splitlines()
    assert lines[0].split() == ["file", "title", "signature", "confidence", "bucket", "platform"]
    assert len(lines) == 2 + len(rows)
    assert lines[2].split()[:1] == ["dumps/a.txt"] and "likely" in lines[2]
    assert "error: empty file" in lines[3]
    assert "\x1b" not in lines[5] and "\\x1b" in lines[5]
