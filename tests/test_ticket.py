"""triage --format markdown (issue 16): a ticket body for one transcript, with transcript text made inert."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _triage_samples import other, positive

from dumpscope.cli import main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(args)
    out, err = capsys.readouterr()
    return int(ex.value.code or 0), out, err


def _fences(md: str) -> list[tuple[str, str]]:
    # (info string, body) of every fenced block, a fence closed only by the same run of backticks
    return [(m.group(2), m.group(3)) for m in re.finditer(r"^(`{3,})(\w*)\n(.*?)\n\1$", md, re.S | re.M)]


def test_ticket_of_a_12476_transcript(tmp_path: Path, capsys) -> None:
    f = tmp_path / "vmdump.22.txt"
    f.write_text(positive(host="dent"))
    rc, md, err = _run(["triage", "--format", "markdown", str(f)], capsys)
    assert (rc, err) == (0, "")
    # read off the transcript (_triage_samples.positive): line 5 is the panic message, line 9 the
    # cyclic_reprogram_cyclic frame; the build is of 2018, before OS-6684 (2019-07-18)
    assert md.startswith("# bhyve timer handler re-armed a cyclic missing from its CPU's heap")
    assert "| Host | dent |" in md
    assert "| Platform build | joyent\\_20180216T202957Z |" in md
    assert "| Signature | illumos-12476 (illumos 12476, SmartOS OS-6684) |" in md
    assert "| Confidence | likely |" in md
    fences = dict((body.splitlines()[0], (info, body)) for info, body in _fences(md))
    assert "attempt to reprogram non-existent cyclic" in fences
    evidence = next(body for info, body in _fences(md) if info == "text")
    assert "     5 | panic message: attempt to reprogram non-existent cyclic" in evidence.splitlines()
    assert "     9 | ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)" in evidence
    assert "## What happened" in md and "## Evidence" in md
    assert "Status: **predates-fix**" in md and "illumos-gate cb2d1b02582006a823e154df6807c505b73b1cb6" in md
    commands = md.split("## Next mdb commands", 1)[1]
    assert "::stacks -c cyclic_remove_here" in _fences(commands)[0][1]


def test_ticket_text_from_the_transcript_is_inert(tmp_path: Path, capsys) -> None:
    hostile = ("BAD TRAP: <script>alert(1)</script> ```` [x](javascript:alert(1)) *bold* | \x1b[31m"
               " occurred in module \"zfs\" due to a NULL pointer dereference")
    text = other(host="cn|<b>7</b>").replace(
        'BAD TRAP: type=e (#pf Page fault) rp=ffffff00f8e5e6a0 addr=18 occurred in module "zfs" due to a NULL '
        'pointer dereference', hostile)
    f = tmp_path / "evil.txt"
    f.write_text(text)
    rc, md, _ = _run(["triage", "-f", "markdown", str(f)], capsys)
    assert rc == 0
    outside = re.sub(r"^(`{3,})\w*\n.*?\n\1$", "", md, flags=re.S | re.M)
    assert "<script>" not in outside and "<b>" not in outside
    assert re.search(r"(?<!\\)\]\(", outside) is None  # no live link
    assert "\x1b" not in md
    assert "| Host | cn\\|\\<b\\>7\\</b\\> |" in md
    # the panic message is fenced by more backticks than it holds, so it cannot close its fence
    (message,) = [body for _, body in _fences(md) if "alert(1)" in body]
    assert "<script>alert(1)</script> ````" in message
    assert md.count("\n`````\n") >= 1


def test_markdown_takes_one_transcript(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text(other())
    (tmp_path / "b.txt").write_text(other())
    rc, _, err = _run(["triage", "-f", "markdown", str(tmp_path / "a.txt"), str(tmp_path / "b.txt")], capsys)
    assert rc == 2 and "one transcript" in err
    rc, _, err = _run(["triage", "-f", "markdown", str(tmp_path)], capsys)
    assert rc == 2


def test_ticket_of_an_unreadable_input_says_so(tmp_path: Path, capsys) -> None:
    f = tmp_path / "prose.txt"
    f.write_text("hello, not a transcript\n")
    rc, md, err = _run(["triage", "-f", "markdown", str(f)], capsys)
    assert rc == 1 and md.startswith("# dumpscope could not triage") and "prose.txt" in err
