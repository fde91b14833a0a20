"""The parser's model and its handling of pastes, degraded and bad input (library and `dumpscope parse`)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TRANSCRIPTS
from dumpscope.cli import main
from dumpscope.dump import Dump, Frame, SectionKind, Trap, trap_follows
from dumpscope.parse import _without_escaped_newlines, parse_transcript

VATPIT = TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt"
VHPET = TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"


def run(argv: list[str], stdin: bytes | None = None, capsys: pytest.CaptureFixture[str] | None = None,
        monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert capsys is not None
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# -- the model --------------------------------------------------------------------------------


def test_results_are_frozen() -> None:
    dump = parse_transcript(VATPIT.read_text())
    with pytest.raises(dataclasses.FrozenInstanceError):
        dump.panic_message = "x"  # type: ignore[misc]
    frame = dump.panic_stack.frames[1]  # type: ignore[union-attr]
    with pytest.raises(AttributeError):  # a NamedTuple
        frame.function = "x"  # type: ignore[misc]
    assert isinstance(frame, Frame) and not hasattr(frame, "__dict__")


def test_frame_fields_from_dollar_c() -> None:
    dump = parse_transcript(VATPIT.read_text())
    st = dump.panic_stack
    assert st is not None and st.command == "$C"
    f = st.frames[1]
    # line 11 of the excerpt: ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)
    assert (f.line, f.fp, f.function, f.offset, f.args) == (
        11, 0xffffff000f832950, "cyclic_reprogram_cyclic", 0xb0, (0xffffff03eb144000, 0xb, 0x2cc15105498))
    assert st.frames[-1].function == "thread_start" and st.frames[-1].offset == 8
    assert st.frames[0].args == ()


def test_findstack_thread_with_description() -> None:
    dump = parse_transcript(VHPET.read_text())
    (t,) = dump.threads
    assert t.address == 0xfffffe55d37b8080 and t.description == "bhyve/1 [vcpu 0]"
    assert t.stack_pointer == 0xfffffb04249a9560
    assert [f.function for f in t.frames[:4]] == ["_resume_from_idle", "swtch", "sema_p", "cyclic_remove_here"]
    assert t.frames[3].args == (0xfffffdc5496f0d40, 0xc3, 0, 0)


def test_findstack_of_every_thread_is_one_section_of_its_command() -> None:
    # `::walk thread | ::findstack -v` prints thread after thread, blank lines between: one command's
    # output, so one section that keeps the command (not one section per thread, the later ones orphaned)
    text = ("> ::walk thread | ::findstack -v\n"
            "stack pointer for thread fffffe0012345678 (bhyve/1 [vcpu 0]): fffffb0412345678\n"
            "[ fffffb0412345678 _resume_from_idle+0x12b() ]\n"
            "  fffffb0412345690 swtch+0x141()\n\n"
            "stack pointer for thread fffffe0012345680: fffffb0412345700\n"
            "  fffffb0412345720 cv_wait+0x70(fffffe0012345690, 1f)\n\n"
            "stack pointer for thread fffffe0012345700 (tq:zio): fffffb0412345800\n"
            "> $C\nfffffb0412345900 vpanic()\n")
    dump = parse_transcript(text)
    assert [(s.kind, s.start, s.end, s.command) for s in dump.sections] == [
        (SectionKind.COMMAND, 1, 1, "::walk thread | ::findstack -v"),
        (SectionKind.FINDSTACK, 2, 9, "::walk thread | ::findstack -v"),
        (SectionKind.COMMAND, 10, 10, "$C"),
        (SectionKind.STACK, 11, 11, "$C"),
    ]
    assert [(t.address, t.line, len(t.frames)) for t in dump.threads] == [
        (0xfffffe0012345678, 2, 2), (0xfffffe0012345680, 6, 1), (0xfffffe0012345700, 9, 0)]
    assert dump.threads[1].frames[0].args == (0xfffffe0012345690, 0x1f)


def test_panic_thread_is_linked_not_counted_twice() -> None:
    text = (
        "> ::panicinfo\n             cpu                1\n          thread ffffff001e817c40\n"
        "> ::stacks\nTHREAD           STATE    SOBJ                COUNT\n"
        "ffffff001e817c40 PANIC    <NONE>                  1\n                 vpanic\n\n"
        "> ffffff001e817c40::findstack -v\n"
        "stack pointer for thread ffffff001e817c40 (tq:zio_write_issue): ffffff001e817a00\n"
        "  ffffff001e817a30 vpanic()\n  ffffff001e817a60 zio_wait+0x5c(ffffff0123456789)\n"
    )
    dump = parse_transcript(text)
    assert len(dump.threads) == 1
    t = dump.threads[0]
    assert t.is_panic and dump.panic_thread is t
    assert t.state == "PANIC" and t.description == "tq:zio_write_issue"
    assert t.frames[1].args == (0xffffff0123456789,)  # the richer ::findstack -v stack is kept


def test_unknown_status_lines_are_kept() -> None:
    text = ("debugging crash dump vmcore.1 (64-bit) from h\noperating system: 5.11 joyent_20150101T000000Z (i86pc)\n"
            "git branch: release-20150101\ngit rev: 0123abc\nimage uuid: (not set)\n"
            "panic message: boom\nfrobnication level: 11\ndump content: kernel pages only\n")
    s = parse_transcript(text).status
    assert s is not None
    assert ("git branch", "release-20150101") in s.extra and ("frobnication level", "11") in s.extra
    assert s.panic_message == "boom" and s.dump_content == "kernel pages only"


def test_wrapped_dollar_c_arguments_are_joined() -> None:
    text = ("> $C\nffffffa0ffd84650 vpanic()\n"
            "ffffffa0ffd846e0 foo+0x4f(ffffffa0ffd84700, 1, ffffffff00000000\n"
            ", ffffffa0ffd847d8)\nffffffa0ffd84710 bar+0x10()\n")
    st = parse_transcript(text).panic_stack
    assert st is not None and [f.function for f in st.frames] == ["vpanic", "foo", "bar"]
    assert st.frames[1].args == (0xffffffa0ffd84700, 1, 0xffffffff00000000, 0xffffffa0ffd847d8)


def test_autowrapped_panic_message_is_joined() -> None:
    text = ("debugging crash dump vmcore.0 (64-bit) from h\npanic message: \n"
            "BAD TRAP: type=e (#pf Page fault) rp=ffffff002f332940 addr=0 occurred in module \n"
            '"FSS" due to a NULL pointer dereference\ndump content: kernel pages only\n')
    dump = parse_transcript(text)
    assert dump.panic_message == ('BAD TRAP: type=e (#pf Page fault) rp=ffffff002f332940 addr=0 occurred in '
                                  'module "FSS" due to a NULL pointer dereference')
    assert dump.panic_message_line == 3


@pytest.mark.parametrize("variant", ["crlf", "fenced", "quoted", "indented", "tabs", "prose", "html"])
def test_paste_variants_parse_the_same(variant: str) -> None:
    base = VATPIT.read_text().split("\n")[2:21]  # '> ::status' .. first frames
    lines = list(base)
    if variant == "crlf":
        text = "\r\n".join(lines) + "\r\n"
    elif variant == "fenced":
        text = "Here is the dump:\n```console\n" + "\n".join(lines) + "\n```\n"
    elif variant == "quoted":
        text = "\n".join("> " + x for x in lines) + "\n"
    elif variant == "indented":
        text = "\n".join("    " + x for x in lines) + "\n"
    elif variant == "tabs":
        text = "\n".join("\t" + x for x in lines) + "\n"
    elif variant == "prose":
        text = "\n".join(lines[:7]) + "\n\nI then ran this, which shows:\n\n" + "\n".join(lines[7:]) + "\n"
    else:
        text = "\n".join(x + "<br />" for x in lines) + "\n"
    want = parse_transcript("\n".join(base) + "\n")
    got = parse_transcript(text)
    assert got.panic_message == want.panic_message == "attempt to reprogram non-existent cyclic"
    assert got.platform == "joyent_20180216T202957Z"
    assert got.panic_stack is not None and want.panic_stack is not None
    assert [(f.function, f.offset, f.args) for f in got.panic_stack.frames] == \
        [(f.function, f.offset, f.args) for f in want.panic_stack.frames]


def test_unknown_text_is_kept_as_raw_with_line_numbers() -> None:
    text = "> ::status\npanic message: x\n> ::ps\nS PID\nR 0 sched\n> $C\nvpanic()\n"
    dump = parse_transcript(text)
    raw = dump.raw_sections
    assert [(s.start, s.end, s.command) for s in raw] == [(4, 5, "::ps")]
    assert any("not understood" in n for n in dump.notes)


def test_truncated_last_line_is_noted() -> None:
    text = "> $C\nffffff000f8328d0 vpanic()\nffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb1"
    dump = parse_transcript(text)
    st = dump.panic_stack
    assert st is not None and st.frames[-1].function == "cyclic_reprogram_cyclic"
    assert st.frames[-1].args == ()  # the cut-off argument is not guessed
    assert any("not closed" in n for n in dump.notes)


def test_garbage_between_sections_does_not_stop_the_parse() -> None:
    text = VATPIT.read_text().replace("> $C", "@@@@ \x00\x01 garbage %%%\n> $C")
    dump = parse_transcript(text)
    assert dump.panic_message and dump.panic_stack and len(dump.panic_stack.frames) == 19


def test_very_long_line_is_not_run_through_the_regexes() -> None:
    text = "> ::status\npanic message: x\n" + "A" * 200_000 + "\n> $C\nvpanic()\n"
    dump = parse_transcript(text)
    assert dump.panic_stack is not None
    assert any("characters long" in n for n in dump.notes)


@pytest.mark.parametrize("escapes", [1, 3, 5_000])
def test_upanic_message_loses_its_trailing_escaped_newlines_only(escapes: int) -> None:
    # issue 18: a regex substitution read a run of them not at the end once per position in it
    # (over a second for 5,000 pairs, 30 KB)
    middle = "\\x0a\\n" * escapes
    text = ("debugging core file of bhyve (64-bit) from h\nstatus: process panicked\n"
            f"upanic message: mutex_enter: {middle}bad mutex type{middle}\n")
    assert parse_transcript(text).panic_message == f"mutex_enter: {middle}bad mutex type"


def test_escaped_newlines_are_stripped_as_the_regex_did() -> None:
    rng = random.Random(18)
    for _ in range(5_000):
        value = "".join(rng.choice(["\\", "n", "x0a", "\\n", "\\x0a", "a", "x", "0"]) for _ in range(rng.randint(0, 10)))
        assert _without_escaped_newlines(value) == re.sub(r"(?:\\x0a|\\n)+$", "", value), value


def test_process_core_status_is_not_a_kernel_dump() -> None:
    dump = parse_transcript((TRANSCRIPTS / "omnios-1119-bhyve-userland-core-upanic.txt").read_text())
    assert dump.status is not None and not dump.status.is_kernel


# -- the CLI on bad input -----------------------------------------------------------------------


def test_parse_json_is_versioned_and_typed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["parse", str(VHPET), "--format", "json"], capsys=capsys)
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["schema"] == "dumpscope.parse/2"
    frame = doc["panic_stack"]["frames"][0]
    assert frame["function"] == "cyclic_reprogram_cyclic" and frame["offset"] == 0x97
    # parse/2: arguments as mdb prints them (bare lowercase hex strings), like every address
    assert frame["args"] == ["fffffdc5496f0d40", "c3", "370a98496f2f04"] and frame["line"] == 5
    assert frame["fp"] == "fffffb0410bc9980"
    (thread,) = doc["threads"]
    assert thread["address"] == "fffffe55d37b8080" and thread["description"] == "bhyve/1 [vcpu 0]"


def test_parse_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(["parse", "-"], stdin=VATPIT.read_bytes(), capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "attempt to reprogram non-existent cyclic" in out


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00" * 50, "binary file"),
    (b"just some words, nothing from mdb here\nat all\n", "no mdb output found"),
])
def test_bad_files_get_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           content: bytes, message: str) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    code, out, err = run(["parse", str(p)], capsys=capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_path_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["parse", str(tmp_path / "nope.txt")], capsys=capsys)
    assert code == 1 and "no such file" in err
    code, _, err = run(["parse", str(tmp_path)], capsys=capsys)
    assert code == 1 and "is a directory" in err


def test_non_utf8_bytes_still_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes(VATPIT.read_bytes().replace(b"dent", b"d\xe9nt"))
    code, out, _ = run(["parse", str(p)], capsys=capsys)
    assert code == 0 and "non-UTF-8" in out


def test_one_five_megabyte_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "long.txt"
    p.write_bytes(b"x" * (5 * 1024 * 1024))
    code, _, err = run(["parse", str(p)], capsys=capsys)
    assert code == 1 and "no mdb output found" in err and err.count("\n") == 1


def test_escape_sequences_are_never_echoed_raw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "esc.txt"
    p.write_text(VATPIT.read_text().replace("from dent", "from de\x1b]0;pwned\x07nt\x1b[2J\x07x"))
    code, out, _ = run(["parse", str(p)], capsys=capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out  # nothing raw reaches the terminal
    assert "host: dent\\x07x" in out  # a stray control character is shown escaped


def test_json_output_carries_no_control_character_raw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ctl.txt"
    message = "attempt to\x07 reprogram\x85 non-existent\x9b\u2028 cyclic"
    p.write_text(VATPIT.read_text().replace("attempt to reprogram non-existent cyclic", message))
    code, out, _ = run(["parse", str(p), "--format", "json"], capsys=capsys)
    assert code == 0 and out.endswith("}\n")
    assert out.isascii() and all(c >= " " for c in out[:-1])  # escaped, every one
    assert json.loads(out)["panic_message"] == message


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["parse", "--no-such-flag"], capsys=capsys)
    assert code == 2 and "Traceback" not in err


def test_python_dash_m_works() -> None:
    r = subprocess.run([sys.executable, "-m", "dumpscope", "parse", str(VATPIT), "--format", "json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and json.loads(r.stdout)["platform"] == "joyent_20180216T202957Z"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_parse_process_writes_all_it_printed_in_process(fmt: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # As a process, `parse` writes the same complete output as in-process. 600 threads give about
    # 400 KB of JSON, many times a pipe's buffer.
    lines = ["> ::walk thread | ::findstack -v"]
    for t in range(600):
        lines.append(f"stack pointer for thread fffffe00{t:08x} (bhyve/{t} [vcpu 0]): fffffb04{t:08x}")
        lines.append(f"[ fffffb04{t:08x} _resume_from_idle+0x12b() ]")
        lines += [f"  fffffb04{t:04x}{k:04x} cv_wait+0x{k + 16:x}({t:x}, {k:x})" for k in range(8)]
        lines.append("")
    path = tmp_path / "many.txt"
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = run(["parse", str(path), "--format", fmt], capsys=capsys)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as usual
    r = subprocess.run([sys.executable, "-m", "dumpscope", "parse", str(path), "--format", fmt],
                       capture_output=True, text=True, check=False, env=env)
    assert (r.returncode, r.stderr) == (code, "") == (0, "")
    assert r.stdout == out and len(out) > (100_000 if fmt == "json" else 10_000)


def test_a_parse_process_that_fails_exits_1_with_its_message(tmp_path: Path) -> None:
    (tmp_path / "prose.txt").write_text("nothing from mdb here\n")
    r = subprocess.run([sys.executable, "-m", "dumpscope", "parse", str(tmp_path / "prose.txt")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 1 and r.stdout == "" and "dumpscope: error:" in r.stderr


def test_sections_cover_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    dump = parse_transcript(VATPIT.read_text())
    kinds = [s.kind for s in dump.sections]
    assert kinds[:4] == [SectionKind.RAW, SectionKind.COMMAND, SectionKind.STATUS, SectionKind.COMMAND]
    assert SectionKind.STACK in kinds


def test_arguments_stay_in_their_positions() -> None:
    # typed arguments (2025 printer with -t) and NULL read as values; an unreadable argument ends the
    # list rather than letting the next one slide into its position
    text = ("> $C\nffffff000f832940 bar+0x2((proc_t *)NULL, (int)0x5)\n"
            "ffffff000f832950 foo+0x1(<unknown>, 1, 2)\n")
    st = parse_transcript(text).panic_stack
    assert st is not None
    assert [(f.function, f.args) for f in st.frames] == [("bar", (0, 5)), ("foo", ())]


def test_stacks_dash_a_members_share_the_group_stack() -> None:
    # ::stacks -a: the group line, a line per further member with COUNT "-", then the frames once
    text = ("> ::stacks -a -c cyclic_remove_here\nTHREAD           STATE    SOBJ                COUNT\n"
            "fffffe0000000001 SLEEP    SEMA                    3\n"
            "fffffe0000000002 SLEEP    SEMA                    -\n"
            "fffffe0000000003 SLEEP    SEMA                    -\n"
            "                 swtch+0x141\n                 sema_p+0x1d7\n                 cyclic_remove_here+0xac\n\n"
            "fffffe0000000009 SLEEP    CV                      1\n                 cv_wait+0x70\n")
    threads = parse_transcript(text).threads
    assert [t.address for t in threads] == [0xfffffe0000000001, 0xfffffe0000000002, 0xfffffe0000000003,
                                             0xfffffe0000000009]
    assert [t.count for t in threads] == [3, None, None, 1]
    assert all([f.function for f in t.frames] == ["swtch", "sema_p", "cyclic_remove_here"] for t in threads[:3])
    assert [f.function for f in threads[3].frames] == ["cv_wait"]


def test_one_window_pairs_a_trap_record_with_its_panic_message() -> None:
    # the parser (a banner after its console panic line) and Dump.trap (the panic's trap record among
    # several) use the same window: the record holds the message line or the one before, or starts at
    # most four lines after it (a blank line and the process line between)
    assert trap_follows(10, 14, 20) and not trap_follows(10, 15, 20)
    assert trap_follows(10, 5, 9) and not trap_follows(10, 5, 8)
    first, near, far = Trap(line=1, end=3), Trap(line=14, end=16), Trap(line=15, end=16)
    assert Dump(panic_message_line=10, traps=(first, near)).trap == near
    assert Dump(panic_message_line=10, traps=(first, far)).trap == first
    assert Dump(traps=(near, first)).trap == near  # no message line: the first record
    # a console banner four lines after the panic line is paired with it; five lines after is not
    panic = "panic[cpu3]/thread=ffffff0007a4bc40: BAD TRAP: type=e (#pf Page fault) rp=ffffff0007a4b9f0 addr=4\n"
    banner = "sched:\n#pf Page fault\nBad kernel fault at addr=0x4\npid=0, pc=0xfffffffffb8a1c7e, sp=0xffffff0007a4bae8\n"
    for blanks, paired in ((3, True), (4, False)):  # the banner on line 5, or 6
        trap = parse_transcript(panic + "\n" * blanks + banner, "t").trap
        assert trap is not None and (trap.cpu == 3) is paired, (blanks, trap)
