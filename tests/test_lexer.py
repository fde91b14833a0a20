"""The line lexer's helpers: the paste-artefact test and the line splitter."""

from __future__ import annotations

import pytest

from dumpscope.lexer import clean_line, needs_cleaning, split_lines, split_symbol


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
