"""What a transcript or a file name can put in front of a person (issue 18): nothing invisible, no formulas.

Text, table and CSV output show bidirectional controls, zero-width characters and the Unicode line and
paragraph separators escaped, as they do control characters; a CSV cell never starts a formula.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from _triage_samples import OTHER

from dumpscope.cli import main
from dumpscope.render import csv_cell, escape, render_csv, render_summary, render_table, render_verdict_text
from dumpscope.verdict import Verdict

# (character, how it must be shown)
INVISIBLE = [
    ("\u202a", "\\u202a"), ("\u202b", "\\u202b"), ("\u202c", "\\u202c"), ("\u202d", "\\u202d"),
    ("\u202e", "\\u202e"),  # LRE, RLE, PDF, LRO, RLO
    ("\u2066", "\\u2066"), ("\u2067", "\\u2067"), ("\u2068", "\\u2068"), ("\u2069", "\\u2069"),  # isolates
    ("\u200e", "\\u200e"), ("\u200f", "\\u200f"), ("\u061c", "\\u061c"),  # LRM, RLM, ALM
    ("\u200b", "\\u200b"), ("\u200c", "\\u200c"), ("\u200d", "\\u200d"), ("\u2060", "\\u2060"),
    ("\ufeff", "\\ufeff"),  # zero width: space, non-joiner, joiner, word joiner, no-break space (BOM)
    ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),  # line and paragraph separators
    ("\U000e0041", "\\U000e0041"),  # a tag character ("ASCII smuggling")
    ("\udcff", "\\xff"),  # an undecodable byte of a file name (surrogateescape)
    ("\x1b", "\\x1b"), ("\x85", "\\x85"),  # as before: C0 and C1 controls
]


@pytest.mark.parametrize("char, shown", INVISIBLE, ids=[f"U+{ord(c):04X}" for c, _ in INVISIBLE])
def test_invisible_characters_are_escaped(char: str, shown: str) -> None:
    assert escape(f"a{char}b") == f"a{shown}b"


def test_visible_text_is_left_alone() -> None:
    for text in ("plain", "tab\tkept", "caf\u00e9 \u4e2d\u6587", "cafe\u0301", "\u00a0nbsp"):
        assert escape(text) == text


def _sneaky() -> Verdict:
    # "Trojan source" in a title: RLO makes "txt.exe" read as "exe.txt"
    return Verdict(f"dumps/evil\u202etxt.exe\u200b{chr(0x2028)}x", "ok", bucket="0123456789",
                   title="panic\u2066 in\u2069 zfs\u2029 (\u200d)", platform="joyent\u200f_2018")


@pytest.mark.parametrize("render", [
    lambda v: render_verdict_text(v), lambda v: render_table([v]), lambda v: render_csv([v]),
    lambda v: render_summary([v]),
], ids=["text", "table", "csv", "summary"])
def test_no_output_shows_them_raw(render) -> None:  # type: ignore[no-untyped-def]
    out = render(_sneaky())
    assert not any(c in out for c, _ in INVISIBLE), repr(out)
    assert "\\u202e" in out and "\\u2066" in out


def test_a_transcript_panic_message_with_an_override_through_the_cli(tmp_path: Path, capsys) -> None:
    p = tmp_path / "rlo.txt"
    p.write_text(OTHER.replace("BAD TRAP", "BAD \u202eTRAP\u2069"))
    for fmt in ("text", "table", "csv"):
        with pytest.raises(SystemExit):
            main(["triage", str(p), "-f", fmt])
        out, err = capsys.readouterr()
        assert "\u202e" not in out and "\u2069" not in out
        assert "\\u202e" in out, (fmt, out)


# -- CSV formula injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "\\x0dcmd"),  # a CR is escaped first: a cell never starts with it
    ("a=b", "a=b"), ("", ""), (None, ""), ("plain-name.txt", "plain-name.txt"),
])
def test_csv_cell_prefixes_a_formula_start(text: str | None, cell: str) -> None:
    assert csv_cell(text) == cell


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_titles_messages_and_names_never_start_a_formula() -> None:
    v = Verdict("=cmd|' /C calc'!A0.txt", "ok", bucket="0123456789", title="+panic", platform="@build")
    e = Verdict("-dump.txt", "error", error="-1 bytes", title="error: -1 bytes")
    rows = _csv_rows(render_csv([v, e]))
    assert [r["file"] for r in rows] == ["'=cmd|' /C calc'!A0.txt", "'-dump.txt"]
    assert rows[0]["title"] == "'+panic" and rows[0]["platform"] == "'@build"
    assert rows[1]["error"] == "'-1 bytes"


def test_csv_file_names_through_the_cli_and_the_summary(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "=1+2.txt").write_text(OTHER)
    (tmp_path / "@x.txt").write_text(OTHER)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["triage", "-f", "csv", "=1+2.txt", "@x.txt"])
    out, _ = capsys.readouterr()
    assert [r["file"] for r in _csv_rows(out)] == ["'=1+2.txt", "'@x.txt"]
    with pytest.raises(SystemExit):
        main(["triage", "--summary", "-f", "csv", "=1+2.txt"])
    out, _ = capsys.readouterr()
    assert [r["example"] for r in _csv_rows(out)] == ["'=1+2.txt"]


def test_the_readme_states_the_rules() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "formula injection" in readme and "U+202A" in readme and "U+2028" in readme
