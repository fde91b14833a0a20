"""Issue 14: every sentence of a verdict follows from its evidence, and unknown crashes get help.

One test (or more) per bullet of the issue, through the CLI's own output, so each reads what a person
or a program reads. Expected strings are read off the transcripts by hand (line numbers in comments).
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from dumpscope.cli import main

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "transcripts"
STACKS_ONLY = TRANSCRIPTS / "near-miss-12476-remover-in-stacks-only.txt"
OTHER_CPU = TRANSCRIPTS / "near-miss-12476-remover-other-cpu.txt"
VATPIT = TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt"
VHPET = TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"
CONSOLE = TRANSCRIPTS / "variant-12476-console-traceback.txt"
TWO_PENDING = TRANSCRIPTS / "variant-12476-two-pending-remove-pend.txt"
MUTEX = TRANSCRIPTS / "near-miss-94-recursive-mutex-zfs.txt"
ASSERTION = TRANSCRIPTS / "near-miss-1229-brand-other-assertion.txt"
HANG = TRANSCRIPTS / "near-miss-16183-cyclic-juggle-cpu-offline.txt"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, err
    return out


def triage(path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    return run(["triage", *flags, str(path)], capsys)


def section(text: str, head: str) -> list[str]:
    """The indented lines under a heading of the text verdict ('sequence of events')."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(head))
    out = []
    for ln in lines[start + 1:]:
        if not ln.startswith("  "):
            break
        out.append(ln)
    return out


def hint_commands(text: str) -> list[str]:
    """The suggested mdb commands: the lines under 'to settle ...' (before issue 14, each hint was one
    'to settle it, run: CMD' line; read too, so these tests fail on that code for their own reason)."""
    lines = text.splitlines()
    old = [ln.split("run: ", 1)[1] for ln in lines if ln.startswith("to settle it, run: ")]
    if old or not any(ln.startswith("to settle") for ln in lines):
        return old
    return [ln.strip() for ln in section(text, "to settle") if not ln.startswith("      ")]


# --- the 12476 story follows the evidence -------------------------------------------------------------

def test_a_remover_shaped_thread_is_named_with_why_it_does_not_count(capsys: pytest.CaptureFixture[str]) -> None:
    # ::stacks shows thread ffffff0449d3a0c0 in cyclic_remove_here (line 20); it has no arguments
    out = triage(STACKS_ONLY, capsys)
    assert "not shown in this transcript" not in out
    assert "Thread ffffff0449d3a0c0 has the remover's stack, but ::stacks prints no arguments" in out
    # thread fffffe55d37b8080 waits on cpu ...1d40 (line 23), the handler ran on ...0d40 (line 9)
    out = triage(OTHER_CPU, capsys)
    assert "not shown in this transcript" not in out
    assert ("waits in cyclic_remove_here on cpu fffffdc5496f1d40, not the handler's cpu fffffdc5496f0d40"
            in out)


def test_cyp_modify_wait_is_the_computed_address(capsys: pytest.CaptureFixture[str]) -> None:
    # cpu = ffffff03eb144000 (line 11); + 0xa0 = ffffff03eb1440a0; no remover shows it
    out = triage(VATPIT, capsys)
    assert "cyp_modify_wait (ffffff03eb1440a0, computed as cpu + 0xa0)" in out
    assert "(?, cpu + 0xa0)" not in out


def test_a_console_transcript_tells_only_what_it_shows(capsys: pytest.CaptureFixture[str]) -> None:
    # console frames carry no arguments (lines 7-16): no value can be named, none is printed as '?'
    events = section(triage(CONSOLE, capsys), "sequence of events")
    assert events and not any("?" in e for e in events)
    missing = [e for e in events if "Not shown in this transcript" in e]
    assert len(missing) == 1
    for name in ("id (cyclic_reprogram.arg0)", "ndx (cyclic_reprogram_cyclic.arg1)",
                 "cpu (cyclic_reprogram_cyclic.arg0)"):
        assert name in missing[0]
    assert any("calls vhpet_handler" in e for e in events)


def test_cyclic_remove_pend_tells_the_two_pending_path(capsys: pytest.CaptureFixture[str]) -> None:
    # the panic stack runs through cyclic_remove_pend (line 16)
    out = triage(TWO_PENDING, capsys)
    events = "\n".join(section(out, "sequence of events"))
    assert "calls cyclic_remove_pend, which runs vatpit_callout_handler again" in events
    assert "two firings are pending" in events
    assert "until cyclic_remove_pend wakes it" not in events
    assert "confidence: confirmed" in out and "through cyclic_remove_pend" in out


def test_steps_about_an_unpaired_remover_are_marked_inferred(capsys: pytest.CaptureFixture[str]) -> None:
    # no remover in the vatpit excerpt: what the remover did is inference, what the panic stack shows is not
    events = section(triage(VATPIT, capsys), "sequence of events")
    marked = [e.split(". ", 1)[1].startswith("(inferred) ") for e in events]
    assert marked == [False, True, True, True, False, False]
    # the remover pairs in the vhpet excerpt: nothing is marked
    assert "(inferred)" not in "\n".join(section(triage(VHPET, capsys), "sequence of events"))


def test_the_markdown_ticket_marks_the_same_steps_inferred(capsys: pytest.CaptureFixture[str]) -> None:
    md = run(["triage", "--format", "markdown", str(VATPIT)], capsys)
    assert "\n2. (inferred) Before vatpit\\_callout\\_handler re-arms its timer" in md
    assert "\n1. The cyclic ffffff0437fa49d0" in md


def test_a_replay_says_what_it_compared_and_what_was_absent(capsys: pytest.CaptureFixture[str]) -> None:
    # the vhpet excerpt has no panic message (no ::status, no panic[cpu] line)
    out = run(["replay", str(VHPET)], capsys)
    assert "as the dump shows" not in out
    assert "not compared: the panic message" in out
    verdict = triage(VHPET, capsys)
    assert "confidence: confirmed, in part: the replay could not compare the panic message" in verdict
    # a transcript that has the message: the replay compared it, and says nothing is absent
    out = run(["replay", str(TWO_PENDING)], capsys)
    assert "panic message" in out and "not compared" not in out


def test_clause_labels_show_the_function(capsys: pytest.CaptureFixture[str]) -> None:
    out = triage(VHPET, capsys)
    assert "+ panic stack frame timer (vhpet_start_timer) (line 8)" in out
    assert "+ panic stack frame handler (vhpet_handler) (line 9)" in out


# --- hints only for what is missing ---------------------------------------------------------------------

_MESSAGE_ONLY = """\
> ::status
debugging crash dump vmcore.2 (64-bit) from host
operating system: 5.11 joyent_20190101T000000Z (i86pc)
panic message: attempt to reprogram non-existent cyclic
> $C
ffffff000f8328d0 vpanic()
ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)
ffffff000f832970 cyclic_reprogram_xcall+0x2d(ffffff000f8329a0)
ffffff000f832990 cbe_xcall_handler+0x30(0, 0)
"""


def test_no_hint_for_output_already_in_the_transcript(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # ::stacks -c cyclic_remove_here ran (line 18): not suggested again, in any pipeline; the other hints
    # are printed (an empty hint list would pass every 'not suggested' below)
    commands = hint_commands(triage(STACKS_ONLY, capsys))
    assert commands
    assert not any(c.startswith("::stacks -c cyclic_remove_here") for c in commands)
    # a message-only (possible) match whose transcript has $C: $C is not suggested
    path = tmp_path / "message-only.txt"
    path.write_text(_MESSAGE_ONLY)
    out = triage(path, capsys)
    assert "(possible)" in out
    assert hint_commands(out)
    assert "$C" not in hint_commands(out)
    # the other-cpu remover's ::findstack -v ran (line 18): not suggested for it
    commands = hint_commands(triage(OTHER_CPU, capsys))
    assert commands
    assert "fffffe55d37b8080::findstack -v" not in commands


def test_hints_carry_the_dumps_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert "ffffff0449d3a0c0::findstack -v" in hint_commands(triage(STACKS_ONLY, capsys))
    for path in (VATPIT, OTHER_CPU, CONSOLE):
        out = triage(path, capsys)
        assert "ADDR" not in out
        assert "::stacks -c cyclic_remove_here | ::findstack -v" in hint_commands(out)


def test_every_hint_says_what_it_settles(capsys: pytest.CaptureFixture[str]) -> None:
    # text: each command is followed by what its output settles; JSON: {command, settles}
    out = triage(STACKS_ONLY, capsys)
    hints = section(out, "to settle")
    assert hints[0].strip() == "ffffff0449d3a0c0::findstack -v"
    assert "whether it waits in cyclic_remove_here on the handler's cyc_cpu ffffff03eb144000 and index b" in hints[1]
    rows = run(["triage", "--format", "json", *map(str, sorted(TRANSCRIPTS.glob("*.txt")))], capsys).splitlines()
    hinted = [h for r in rows for h in json.loads(r)["hints"]]
    assert len(hinted) > 10
    assert all(isinstance(h, dict) and h["command"] and h["settles"] for h in hinted)


# --- unknown crashes ---------------------------------------------------------------------------------------

def test_an_unknown_crash_shows_its_stack_plumbing_collapsed_and_its_key_frames(
        capsys: pytest.CaptureFixture[str]) -> None:
    # mutex_panic and mutex_vector_enter (lines 5-6) are plumbing; dbuf_find (line 7) comes first
    out = triage(MUTEX, capsys)
    stack = section(out, "panic stack")
    assert stack[0].split() == ["7", "zfs`dbuf_find+0x5d()"]
    assert stack[-1].strip() == ("skipped as plumbing or unresolved: unix`mutex_panic+0x58 (5), "
                                 "unix`mutex_vector_enter+0x2b7 (6)")
    assert "keyed by the message and the frames dbuf_find <- dbuf_hold_impl <- dbuf_hold" in out


def test_a_hang_shows_the_stack_of_the_thread_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    # no panic; thread fffffe007a3e1c20 (psradm/1, line 1) spins in cyclic_juggle_one_to (line 8)
    out = triage(HANG, capsys)
    stack = section(out, "stack of thread fffffe007a3e1c20 (psradm/1)")
    assert stack[0].split() == ["8", "cyclic_juggle_one_to+0xbc(fffffe5973d9ef50,", "fffffe5931a04480)"]
    assert "drv_usecwait+0x9f (7)" in stack[-1]


def test_the_host_line_says_only_what_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    # a userland core's ::status names a host and no platform build
    out = triage(TRANSCRIPTS / "omnios-1119-bhyve-userland-core-upanic.txt", capsys)
    assert "host: bhyvetest" in out.splitlines()
    assert "platform: ?" not in out


_PAGE_FAULT = """\
panic[cpu1]/thread=fffffe0a2b3c4d00: BAD TRAP: type=e (#pf Page fault) rp=fffffe007a1b2c30 addr=fffffe0c99a1e8f0

fffffe007a1b2b10 unix:die+c0 ()
fffffe007a1b2c20 unix:trap+1035 ()
fffffe007a1b2c30 unix:cmntrap+e6 ()
fffffe007a1b2d50 genunix:avl_remove+52 ()
fffffe007a1b2d90 zfs:zio_remove_child+4b ()
"""


def test_an_unknown_crash_gets_the_hints_of_its_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # mutex panic: lp and owner from the message (line 2)
    assert hint_commands(triage(MUTEX, capsys))[:2] == ["fffff042e1093a88::mutex", "fffff04322d1a0c0::findstack -v"]
    # assertion: the panicking thread (line 1)
    assert "fffffe2d84a71020::findstack -v" in hint_commands(triage(ASSERTION, capsys))
    # hang: ::cpuinfo -v and the threads stuck where the one on CPU is (line 8)
    assert hint_commands(triage(HANG, capsys))[:2] == ["::cpuinfo -v", "::stacks -c cyclic_juggle_one_to"]
    # page fault at a real address: what it belongs to
    path = tmp_path / "pf.txt"
    path.write_text(_PAGE_FAULT)
    hints = hint_commands(triage(path, capsys))
    assert hints[0] == "fffffe0c99a1e8f0::whatis"
    assert "fffffe0a2b3c4d00::findstack -v" in hints


TRAP_164 = TRANSCRIPTS / "trap-illumos-joyent-164-zfs-two-pf-banners-registers.txt"


def test_an_unknown_crash_shows_its_trap_record(capsys: pytest.CaptureFixture[str]) -> None:
    # the second banner (lines 19-38): cpu1 (line 19), addr and rp (line 20), pid, pc and sp (line 25)
    out = triage(TRAP_164, capsys)
    line = next(ln for ln in out.splitlines() if ln.startswith("trap record"))
    assert line.startswith("trap record (lines 20-38): type e (#pf Page fault), process zfs pid 64403, "
                           "pc fffffffffb87085a, addr ffffff049f4c6000, rp ffffff003dd38830, sp ffffff003dd38928")
    # its faulting address is what ::whatis is asked about
    assert hint_commands(out)[0] == "ffffff049f4c6000::whatis"
    doc = json.loads(run(["triage", "--format", "json", str(TRAP_164)], capsys))
    assert ["addr", "ffffff049f4c6000"] in doc["trap"]["fields"]


# --- --explain ---------------------------------------------------------------------------------------------

def _explain(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tty: bool) -> str:
    if tty:
        out = _Tty()
        monkeypatch.setattr(sys, "stdout", out)
        with pytest.raises(SystemExit):
            main(["triage", "--explain", str(path)])
        return out.getvalue()
    return triage(path, capsys, "--explain")


def test_explain_quotes_two_lines_of_context(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    out = _explain(VATPIT, capsys, monkeypatch, tty=False)
    quoted = out.split("  + panic message (line 7)", 1)[1].split("\n  +", 1)[0].splitlines()[1:]
    assert [ln.split("|")[0].split()[-1] for ln in quoted] == ["5", "6", "7", "8", "9"]
    assert quoted[2].lstrip().startswith(">")
    assert "\x1b[" not in out  # not a terminal: no colour


def test_explain_highlights_on_a_terminal_only(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _explain(OTHER_CPU, capsys, monkeypatch, tty=True)
    # the clause 'same cyc_cpu' compared fffffdc5496f1d40 (line 23) with fffffdc5496f0d40 (line 9)
    assert re.search(r"> +23 \| .*\x1b\[[0-9;]*mfffffdc5496f1d40\x1b\[0m", out)
    assert re.search(r"> +9 \| .*\x1b\[[0-9;]*mfffffdc5496f0d40\x1b\[0m", out)
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _explain(OTHER_CPU, capsys, monkeypatch, tty=True)


# --- claims the signatures make -----------------------------------------------------------------------------

def test_titles_state_what_the_match_shows(capsys: pytest.CaptureFixture[str]) -> None:
    docs = {d["id"]: d for d in map(json.loads, run(["signatures", "--format", "json"], capsys).splitlines())}
    # root causes the sources inferred are notes, not titles
    assert "mdb -kw" not in docs["smartos-live-494"]["title"] and "mdb -kw" in docs["smartos-live-494"]["notes"]
    assert "freed" not in docs["smartos-live-485"]["title"] and "freed" in docs["smartos-live-485"]["notes"]
    assert "VM teardown" not in docs["illumos-12476"]["title"]
    # a likely match (no remover) is titled by what it shows
    out = triage(VATPIT, capsys)
    assert out.splitlines()[0].startswith("illumos-12476 (likely): bhyve timer handler re-armed a cyclic missing")


def test_a_message_only_match_is_titled_by_the_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # ::status has the 12476 message; the $C shown is the remote (xcall) path the signature excludes
    path = tmp_path / "message-only.txt"
    path.write_text(_MESSAGE_ONLY)
    head = triage(path, capsys).splitlines()[0]
    assert head.startswith("illumos-12476 (possible): attempt to reprogram non-existent cyclic (the panic message of "
                           "illumos 12476, SmartOS OS-6684; no stack in the transcript matches it)")
    assert "bhyve timer handler" not in head


def test_signatures_json_gives_bugs_fixes_fixtures_and_near_misses(capsys: pytest.CaptureFixture[str]) -> None:
    docs = {d["id"]: d for d in map(json.loads, run(["signatures", "--format", "json"], capsys).splitlines())}
    d = docs["illumos-12476"]
    assert d["bugs"] == ["illumos 12476", "SmartOS OS-6684"]
    assert any(f.startswith("illumos-gate cb2d1b02582006a823e154df6807c505b73b1cb6") for f in d["fixes"])
    assert "seed-12476-vhpet-with-remover" in d["fixtures"]
    assert "near-miss-12476-post-fix-xcall-assertion" in d["near_misses"]
    assert all(doc["fixtures"] and doc["near_misses"] for doc in docs.values())
