"""Numbers from a transcript are machine words (issue 18): far longer text is never converted, only kept and noted.

int() of thousands of digits trips CPython's 4,300-digit limit (an internal error before) and costs
quadratic time in decimal; an argument, offset, count or id far longer than a machine word stays text, the
frame or row keeps everything else, and the parse says what it did not read. A line over the 64 KiB
line limit is never read as part of a frame either.
"""

from __future__ import annotations

import pytest

from dumpscope.lexer import MAX_LINE, dec_value, hex_value, offset_value
from dumpscope.parse import parse_transcript
from dumpscope.render import iter_dump_json
from dumpscope.triage import triage_text


@pytest.mark.parametrize("text, value", [
    ("ffffffffffffffff", 2**64 - 1), ("0xffffffffffffffff", 2**64 - 1), ("f" * 32, 2**128 - 1), ("f" * 33, None),
    ("0x" + "f" * 33, None),
    ("1" * 5000, None), ("zz", None), ("", None), (None, None), ("8x108", None), ("0x0xff", None),
])
def test_hex_value_reads_a_machine_word_and_nothing_longer(text: str | None, value: int | None) -> None:
    assert hex_value(text) == value


@pytest.mark.parametrize("text, value", [
    ("42", 42), ("9" * 40, int("9" * 40)), ("9" * 41, None), ("9" * 5000, None), ("-1", None), ("\u0663", None),
])
def test_dec_value_reads_a_count_and_nothing_longer(text: str, value: int | None) -> None:
    assert dec_value(text) == value


@pytest.mark.parametrize("text, value", [("0x1f", 31), ("8", 8), ("0t10", 10), ("x11", None), ("0t" + "9" * 41, None)])
def test_offset_value(text: str, value: int | None) -> None:
    assert offset_value(text) == value


def _both(text: str) -> None:
    # triage, parse and the parse JSON document: each of them converted numbers before
    triage_text(text, "t")
    "".join(iter_dump_json(parse_transcript(text, "t"), "t"))


def _second_frame(text: str) -> tuple[tuple[object, ...], tuple[str, ...]]:
    _both(text)
    dump = parse_transcript(text)
    assert dump.panic_stack is not None
    frame = dump.panic_stack.frames[1]
    return (frame.function, frame.offset, frame.args), dump.notes


def test_an_argument_of_thousands_of_digits_is_kept_as_text_and_noted() -> None:
    frame, notes = _second_frame("> $C\nffffff000f832950 vpanic()\nffffff000f832990 cyclic_reprogram_cyclic+0x97("
                                 + "f" * 5000 + ", c3)\n")
    assert frame == ("cyclic_reprogram_cyclic", 0x97, ())
    assert "line 3: an argument of over 32 digits is kept as text, not read as a value" in notes


def test_an_offset_longer_than_a_word_is_unknown_with_a_note() -> None:
    frame, notes = _second_frame("> $C\nffffff000f832950 vpanic()\nffffff000f832990 cyclic_reprogram_cyclic+0x"
                                 + "f" * 5000 + "(1, 2)\n")
    assert frame == ("cyclic_reprogram_cyclic", None, (1, 2))
    assert any(n.startswith("line 3: offset '+0xffff") and n.endswith("the offset is unknown") for n in notes)


def test_a_stacks_count_of_5000_digits_is_no_count() -> None:
    text = ("> ::stacks\nTHREAD           STATE    SOBJ                COUNT\n"
            "ffffff000f832990 SLEEP    CV                  " + "9" * 5000 + "\n                 swtch+0x141\n")
    _both(text)
    (thread,) = parse_transcript(text).threads
    assert (thread.count, [f.function for f in thread.frames]) == (None, ["swtch"])


@pytest.mark.parametrize("console", [
    "panic[cpu0]/thread=ffffff000f832990: boom\n\nffffff000f832990 genunix:f+" + "f" * 5000 + " (1, 2)\n",
    "panic[cpu" + "9" * 5000 + "]/thread=ffffff000f832990: boom\n",
    "> ::cpuinfo\n ID ADDR             FLG NRUN BSPL PRI RNRN KRNRN SWITCH THREAD           PROC\n"
    + "9" * 5000 + " fffffffffbc3b000  1b    0    0  -1   no    no t-0    ffffff000f832990 (idle)\n",
])
def test_console_and_cpu_numbers_of_thousands_of_digits_raise_nothing(console: str) -> None:
    _both(console)


def test_a_line_over_the_limit_is_never_an_argument_continuation() -> None:
    # the continuation of a wrapped argument list is a line too: over MAX_LINE it is raw text
    text = "> $C\nffffff000f832950 f+0x1(1,\n" + ", 2" * (MAX_LINE // 3 + 10) + ")\n"
    dump = parse_transcript(text)
    assert dump.panic_stack is not None and dump.panic_stack.frames[0].args == (1,)
    assert any(n.startswith("line 3 is ") and n.endswith("kept as raw text") for n in dump.notes)
    assert "line 2: argument list not closed (truncated frame)" in dump.notes
