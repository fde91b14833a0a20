"""The line lexer's helpers: the paste-artefact test, the line splitter, the plain-frame shortcut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from dumpscope.grammar import line_lexer
from dumpscope.parse import parse_transcript
from dumpscope.lexer import _PLAIN_FRAME, clean_line, decode_label, needs_cleaning, split_lines, split_symbol


@pytest.mark.parametrize("text", [
    "a\r\nb", "\x1b[31mred", "line<br />", "LINE<BR>", "genunix: [ID 655072 kern.notice] x", "```\n$C\n```",
    "~~~", "[" * 100 + "[ID 1 kern.notice] x",  # the needle after many of its first character
    "<" * 40 + "br", "`" * 33 + "``",
])
def test_needs_cleaning_finds_each_artefact(text: str) -> None:
    # a pre-filter: True whenever clean_line() might change a line
    assert needs_cleaning(text)


def test_needs_cleaning_is_true_wherever_clean_line_changes_a_line() -> None:
    lines = ["x\r", "\x1b]0;title\x07$C", "foo<br/>", "Jun 10 16:56:31 m1 savecore: [ID 570001 auth.error] x",
             "```", "~~~text"]
    for line in lines:
        assert clean_line(line) != line
        assert needs_cleaning("ok\n" * 50 + line)


@pytest.mark.parametrize("text", [
    "", "plain mdb output\n", "[ fffffb04249a9560 _resume_from_idle+0x12b() ]", "<NONE>" * 50,
    "[" * 100 + "[IDX", "libc.so.1`syscall+0x30()", "~~ ~", "<b r", "`` `",
])
def test_needs_cleaning_is_false_without_artefacts(text: str) -> None:
    assert not needs_cleaning(text)


def test_split_lines_splits_on_newline_only() -> None:
    assert split_lines("a\x0bb\nc\x1cd\n") == ["a\x0bb", "c\x1cd"]
    assert split_lines("a\n\nb") == ["a", "", "b"]


@pytest.mark.parametrize(("sym", "want"), [
    ("swtch", ("swtch", None)),
    ("libc.so.1`syscall", ("syscall", "libc.so.1")),
    ("zfs`0xfffffffff7a3c123", ("0xfffffffff7a3c123", "zfs")),
    ("a`b`c", ("b`c", "a")),  # a module name holds no backtick: the first one ends it
])
def test_split_symbol(sym: str, want: tuple[str, str | None]) -> None:
    assert split_symbol(sym) == want
    assert split_symbol(sym) is split_symbol(sym)  # one result per distinct text: frames share the names


def _frame_groups(line: str) -> tuple[str | None, ...] | None:
    m = line_lexer()._by_name["FRAME"].match(line)
    return m.groups() if m is not None else None


def _plain_agrees_with_frame(line: str) -> bool:
    # _PLAIN_FRAME is a shortcut for the FRAME terminal: whatever it matches, FRAME matches with the
    # same fp, symbol, offset and arguments, no negative offset, and the closing parenthesis
    m = _PLAIN_FRAME.match(line)
    if m is None:
        return True
    fp, label, args = m.groups()
    sym, _, off = label.partition("+")
    return _frame_groups(line) == (fp, sym, off, None, args, ")")


def test_plain_frame_lines_are_frame_lines_with_the_same_groups() -> None:
    from conftest import CORPUS, TRANSCRIPTS, read_text

    corpus = [p for p in CORPUS.rglob("*") if p.is_file()] if CORPUS.is_dir() else []
    lines = {line for p in [*TRANSCRIPTS.glob("*.txt"), *corpus] for line in read_text(p).split("\n")}
    plain = [line for line in lines if _PLAIN_FRAME.match(line)]
    assert len(plain) > 100  # the shortcut is the common case in the fixtures too
    assert [line for line in lines if not _plain_agrees_with_frame(line)] == []


_INDENT = st.sampled_from(["", "  ", "\t", " \t ", "> ", '"'])
_HEX = st.text("0123456789abcdef", min_size=6, max_size=18) | st.text("0123456789abcdefABCDEFx", min_size=6, max_size=18)
_SEP = st.sampled_from([" ", "  ", "\t", "", " ~"])
_SYM = st.sampled_from(["swtch", "cv_wait", "$x", "_a.b$c", "unix`swtch", ".L1", "9x", "zfs`0x1f", "é",
                        "vdev_queue_io_to_issue.isra.0", "a-b", "0xfffffffffba436e1"])
_OFF = st.sampled_from(["+0x1f", "+0x", "+8", "+0t12", "-0x4", "", "+0X1f", "+0x1F", "+0xg", "+0xx1", "+0x1+0x2", "+"])
_ARGS = st.sampled_from(["", "1", "fffffe0012345678, 1f", "0, 0, 0", "(vfs_t *)0xfff", "a)(b", ",", " ", "1,"])
_END = st.sampled_from([")", "", ") ", ")\"", "),", "))", ")x"])


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(_INDENT, _HEX, _SEP, _SYM, _OFF, _ARGS, _END)
def test_plain_frame_shortcut_on_generated_lines(indent: str, fp: str, sep: str, sym: str, off: str, args: str,
                                                 end: str) -> None:
    assert _plain_agrees_with_frame(f"{indent}{fp}{sep}{sym}{off}({args}{end}")


@pytest.mark.parametrize("line", [
    "  fffffb04249a9590 swtch+0x141()", "ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)",
    "\tfffffb04 $x.y+0x1(0)",
])
def test_plain_frame_shortcut_takes_mdb_frame_lines(line: str) -> None:
    assert _PLAIN_FRAME.match(line) is not None and _plain_agrees_with_frame(line)


@pytest.mark.parametrize("line", [
    "  " + "f" * 17 + " swtch+0x141()",  # no pointer column is that long: the symbol would start there
    "  " + "f" * 7 + " swtch+0x141()", "  fffffb04249a9590 swtch+0x141(1))", "  fffffb04249a9590 swtch+0x141(1)x",
    "  fffffb04249a9590 .L1+0x1()", "  fffffb04249a9590 swtch+0xx1()", "  FFFFFB04249A9590 swtch+0x141()",
    "  fffffb04249a9590 swtch+0x141() ", '"fffffb04249a9590 swtch+0x141()",', "  fffffb04249a9590 unix`swtch+0x141()",
    "  fffffb04249a9590 swtch+0x141((vfs_t *)0xfff)", "  fffffb04249a9590\tswtch+0x141()",
    "  fffffb04249a9590 swtch+()", "  fffffb04249a9590 swtch()", "  fffffb04249a9590 sw\u00e9tch+0x141(1)",
])
def test_plain_frame_shortcut_leaves_other_forms_to_the_frame_terminal(line: str) -> None:
    # near misses: each either is not taken by the shortcut, or FRAME reads it the same way
    assert _plain_agrees_with_frame(line)


def test_a_symbol_with_other_letters_is_read_by_the_frame_terminal() -> None:
    # the shortcut is ASCII-only; FRAME's \w takes any letter, and the line is still a frame
    line = "  fffffb04249a9590 sw\u00e9tch+0x141(1, 2)"
    assert _PLAIN_FRAME.match(line) is None
    (frame,) = parse_transcript(line + "\n").panic_stack.frames  # type: ignore[union-attr]
    assert (frame.function, frame.offset, frame.args, frame.fp) == ("sw\u00e9tch", 0x141, (1, 2), 0xfffffb04249a9590)


@pytest.mark.parametrize(("label", "want"), [
    ("swtch+0x141", ("swtch", None, 0x141)),
    ("unix`swtch+8", ("swtch", "unix", 8)),  # mdb prints offsets below 10 bare, in decimal and hex alike
    ("thread_start+0t12", ("thread_start", None, 12)),
    ("vpanic", ("vpanic", None, None)),
])
def test_decode_label(label: str, want: tuple[str, str | None, int | None]) -> None:
    assert decode_label(label) == want
    assert decode_label(label) is decode_label(label)  # decoded once per distinct text
