"""The line lexer's helpers: the paste-artefact test, the line splitter, continuation lines, labels."""

from __future__ import annotations

import pytest

from dumpscope.parse import parse_transcript
from dumpscope.lexer import clean_line, decode_label, needs_cleaning, split_lines, split_symbol


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


def test_a_symbol_with_other_letters_is_a_frame() -> None:
    # FRAME's \w takes any letter
    line = "  fffffb04249a9590 sw\u00e9tch+0x141(1, 2)"
    (frame,) = parse_transcript(line + "\n").panic_stack.frames  # type: ignore[union-attr]
    assert (frame.function, frame.offset, frame.args, frame.fp) == ("sw\u00e9tch", 0x141, (1, 2), 0xfffffb04249a9590)


@pytest.mark.parametrize("blanks", [200, 20_000])
def test_a_wrapped_argument_list_followed_by_blanks_and_a_parenthesis_is_linear(blanks: int) -> None:
    # `{ printf 'ffffff000f832950 f+0x1(1,\n'; printf '%200s(\n' ''; }` made the continuation regex
    # backtrack cubically (triage hung); the line is not a continuation (it holds a "(")
    dump = parse_transcript("ffffff000f832950 f+0x1(1,\n" + " " * blanks + "(\n")
    (frame,) = dump.panic_stack.frames  # type: ignore[union-attr]
    assert frame.args == (1,)
    assert "line 1: argument list not closed (truncated frame)" in dump.notes


@pytest.mark.parametrize(("line", "want"), [
    (", 2, 3)", ("2, 3", True)), ("  , fffffb04249a9670)", ("fffffb04249a9670", True)), ("  4, 5", ("4, 5", False)),
    (")", ("", True)), (" , ", ("", False)), ("a)b", None), ("a))", None), ("f(1)", None),
])
def test_continuation_lines(line: str, want: tuple[str, bool] | None) -> None:
    from dumpscope.lexer import _continuation

    assert _continuation(line) == want


@pytest.mark.parametrize(("label", "want"), [
    ("swtch+0x141", ("swtch", None, 0x141)),
    ("unix`swtch+8", ("swtch", "unix", 8)),  # mdb prints offsets below 10 bare, in decimal and hex alike
    ("thread_start+0t12", ("thread_start", None, 12)),
    ("vpanic", ("vpanic", None, None)),
])
def test_decode_label(label: str, want: tuple[str, str | None, int | None]) -> None:
    assert decode_label(label) == want
    assert decode_label(label) is decode_label(label)  # decoded once per distinct text
