"""Property tests: no input escapes the library API or the CLI as a traceback, and generated transcripts round-trip."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from _robust import CONTROL_OUTPUT, PROFILE, ROOT
from dumpscope.bulk import triage_source
from dumpscope.cli import main
from dumpscope.dump import Frame, SectionKind, Stack, Thread
from dumpscope.parse import parse_transcript
from dumpscope.sources import read_source
from dumpscope.triage import triage_text
from dumpscope.verdict import Verdict

# -- arbitrary input -------------------------------------------------------------------------------

# Pieces of mdb output, so that random text reaches deep into the grammar instead of being one raw line.
_PIECES = st.sampled_from([
    "> ", "::status", "$C", "$c", "::findstack -v", "::stacks", "[0]> ", "\n", "\n", "\n", " ", "  ", "\t",
    "(", ")", ", ", "+0x", "+8", "`", ":", "ffffff000f832950 ", "fffffdc5496f0d40", "c3", "0", "-",
    "debugging crash dump vmcore.0 (64-bit) from h\n", "operating system: 5.11 joyent_20180216T202957Z (i86pc)\n",
    "panic message: ", "attempt to reprogram non-existent cyclic", "dump content: kernel pages only\n",
    "stack pointer for thread fffffe55d37b8080 (bhyve/1 [vcpu 0]): fffffb04249a9560\n",
    "[ fffffb04249a9560 _resume_from_idle+0x12b() ]\n", "THREAD           STATE    SOBJ                COUNT\n",
    "ffffff0007a0bc40 SLEEP    CV                    287\n", "                 cv_wait+0x74\n",
    "cyclic_reprogram_cyclic", "cyclic_reprogram", "sema_p", "cyclic_remove_here", "cyclic_remove",
    "vmm_glue_callout_reset_sbt", "vhpet_handler", "vmm_glue_callout_handler", "cyclic_softint", "cbe_low_level",
    "panic[cpu0]/thread=ffffff0006761c40: ", "unix:die+df ()", "BAD TRAP: type=e (#pf Page fault)",
    "             cpu                1\n", "```\n", "<br />", "\r", "\x1b[1m", "\x1b]0;t\x07", "\x9b", "\x00", "\ufffd",
    "Jun 10 16:56:31 m savecore: [ID 570001 auth.error] reboot after panic: ", "#012",
])
MDBISH_TEXT = st.lists(_PIECES | st.text(max_size=8), max_size=120).map("".join)


def _library_accepts(text: str) -> Verdict:
    dump = parse_transcript(text, "<prop>")
    assert dump.line_count >= 0
    v = triage_text(text, "<prop>")
    assert v.status in ("ok", "error")
    if v.status == "error":
        assert v.error and "\n" not in v.error
    return v


@PROFILE
@given(st.text())
def test_arbitrary_text_parses_and_triages(text: str) -> None:
    _library_accepts(text)


@PROFILE
@given(MDBISH_TEXT)
def test_mdb_like_text_parses_and_triages(text: str) -> None:
    _library_accepts(text)


@PROFILE
@given(st.binary(max_size=2000), st.sampled_from(["utf-8", "latin-1"]))
def test_arbitrary_bytes_decoded_any_way_parse_and_triage(data: bytes, encoding: str) -> None:
    _library_accepts(data.decode(encoding, errors="replace"))


@PROFILE
@given(st.binary(max_size=2000) | MDBISH_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_through_sources_give_one_verdict(data: bytes) -> None:
    # the path the CLI takes: read and decode (or refuse) the bytes, then triage what was read
    src = read_source("-", stdin=io.BytesIO(data))
    v = triage_source(src)
    assert v.source == "<stdin>"
    assert (v.status == "error") == (src.error is not None or v.error is not None)


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with pytest.raises(SystemExit) as exc:
            main(argv)
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


CLI_PROFILE = settings(PROFILE, max_examples=max(40, PROFILE.max_examples // 3),
                       suppress_health_check=[HealthCheck.too_slow])


@CLI_PROFILE
@given(st.binary(max_size=3000) | MDBISH_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
       st.sampled_from([["parse"], ["parse", "--format", "json"], ["triage"], ["triage", "--format", "json"],
                        ["triage", "--format", "table"], ["triage", "--explain"]]))
def test_cli_in_process_exits_0_or_1_without_traceback(data: bytes, command: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.txt")
        with open(path, "wb") as f:
            f.write(data)
        extra = ["--jobs", "1"] if command[0] == "triage" else []
        code, out, err = _run_cli(command + extra + [path])
    assert code in (0, 1), (code, err)
    assert "Traceback" not in out + err
    assert "internal error" not in err
    assert CONTROL_OUTPUT.search(out) is None, out
    assert CONTROL_OUTPUT.search(err) is None, err
    if code == 1:
        assert err.startswith("dumpscope: error: ")


@pytest.mark.parametrize("payload", [
    bytes(range(256)) * 40,
    b"\x1b[2J\x1b]0;owned\x07> ::status\r\npanic message: \x9b31m\x07boom\r\n$C\nffffff00 \x1b[1mvpanic()\n",
], ids=["binary", "control-characters"])
@pytest.mark.parametrize("command", ["parse", "triage"])
def test_cli_subprocess_exits_0_or_1_without_traceback(tmp_path, payload: bytes, command: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "in.txt"
    path.write_bytes(payload)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "dumpscope", command, str(path)], capture_output=True,
                       timeout=120, env=env, cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr.decode(errors="replace")
    assert b"Traceback" not in r.stdout + r.stderr
    for stream in (r.stdout, r.stderr):
        assert CONTROL_OUTPUT.search(stream.decode("utf-8")) is None


# -- round trip of generated transcripts -----------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz_"
_IDENT = st.builds(lambda a, b: a + b, st.sampled_from(_LOWER), st.text(_LOWER + "0123456789", max_size=24))
_MODULE = st.sampled_from(["unix", "genunix", "zfs", "vmm", "libc.so.1", "ip", "apix", "mac_ether"])
_WORD64 = st.integers(min_value=0, max_value=2**64 - 1)
_ADDR = st.integers(min_value=0x10000000, max_value=2**64 - 1)  # always printed with 8-16 digits


@dataclass
class _Gen:
    """A transcript being generated: its lines and what the parser must find in them."""

    lines: list[str] = field(default_factory=list)
    stacks: list[Stack] = field(default_factory=list)
    threads: list[Thread] = field(default_factory=list)
    status: dict[str, object] | None = None
    used: set[int] = field(default_factory=set)  # thread addresses: each thread once (no linking)

    def add(self, line: str) -> int:
        self.lines.append(line)
        return len(self.lines)


@st.composite
def _symbol(draw: st.DrawFn, stacks_style: bool = False) -> tuple[str | None, str, int | None, str]:
    """(module, function, offset, text) of a frame's location, printed the way mdb prints it."""
    if draw(st.integers(0, 9)) == 0:
        func = f"0x{draw(_ADDR):x}"  # unresolved: no module, no offset
        return None, func, None, func
    module = draw(st.none() | st.none() | _MODULE)
    func = draw(_IDENT)
    text = f"{module}`{func}" if module else func
    kind = draw(st.sampled_from(["none", "decimal", "hex", "hex"]))
    if kind == "none":
        return module, func, None, text
    if kind == "decimal":  # mdb prints offsets 0-9 without a base prefix ('thread_start+8')
        off = draw(st.integers(0, 9))
        return module, func, off, f"{text}+{off}"
    off = draw(st.integers(0, 0xFFFFF))
    return module, func, off, f"{text}+0x{off:x}"


@st.composite
def _args(draw: st.DrawFn) -> tuple[tuple[int, ...], list[str]]:
    values = tuple(draw(st.lists(_WORD64, max_size=7)))
    style = draw(st.sampled_from(["bare", "bare", "0x", "mixed"]))
    texts = []
    for v in values:
        prefix = "0x" if style == "0x" or style == "mixed" and draw(st.booleans()) else ""
        texts.append(f"{prefix}{v:x}")
    return values, texts


@st.composite
def _mdb_frame(draw: st.DrawFn, g: _Gen, fp: bool, indent: str) -> Frame:
    module, func, off, loc = draw(_symbol())
    values, texts = draw(_args())
    fpv = draw(_ADDR) if fp else None
    head = f"{indent}{fpv:016x} " if fp else indent
    if len(texts) >= 2 and draw(st.integers(0, 5)) == 0:
        # mdb autowrap (before 2019): the argument list continues on a line starting with ', '
        cut = draw(st.integers(1, len(texts) - 1))
        line = g.add(f"{head}{loc}(" + ", ".join(texts[:cut]))
        g.add(", " + ", ".join(texts[cut:]) + ")")
    else:
        line = g.add(f"{head}{loc}(" + ", ".join(texts) + ")")
    return Frame(line, func, module, off, values, fpv)


@st.composite
def _stack_block(draw: st.DrawFn, g: _Gen) -> None:
    cmd = draw(st.sampled_from(["$C", "$c", "::stack"]))
    g.add(f"> {cmd}")
    fp = cmd == "$C"
    n = draw(st.integers(1, 12))
    frames = tuple(draw(_mdb_frame(g, fp, "")) for _ in range(n))
    g.stacks.append(Stack(frames[0].line, frames, command=cmd))


def _new_addr(draw: st.DrawFn, g: _Gen) -> int:
    addr = draw(_ADDR.filter(lambda a: a not in g.used))
    g.used.add(addr)
    return addr


# thread descriptions as thread_getdesc prints them: 'bhyve/1 [vcpu 0]', 'tq:zio_write_issue', 'thread_reaper()'
_DESC = st.builds(lambda name, tid, extra, start: start if start else f"{name}/{tid}{extra}",
                  _IDENT, st.integers(1, 999), st.sampled_from(["", " [vcpu 0]", " [vcpu-1]", " [worker]"]),
                  st.sampled_from(["", "", "thread_reaper()", "tq:zio_write_issue", "sched"]))


@st.composite
def _findstack_block(draw: st.DrawFn, g: _Gen) -> None:
    g.add("> ::walk thread | ::findstack -v")
    for k in range(draw(st.integers(1, 4))):
        if k:
            g.add("")
        addr = _new_addr(draw, g)
        sp = draw(_ADDR)
        desc = draw(st.none() | _DESC)
        head = g.add(f"stack pointer for thread {addr:x}" + (f" ({desc})" if desc else "") + f": {sp:x}")
        frames: list[Frame] = []
        if draw(st.booleans()):
            func = draw(_IDENT)
            off = draw(st.integers(0, 0xFFF))
            line = g.add(f"[ {sp:016x} {func}+0x{off:x}() ]")
            frames.append(Frame(line, func, None, off, (), sp))
        for _ in range(draw(st.integers(0 if frames else 1, 10))):
            frames.append(draw(_mdb_frame(g, True, "  ")))
        g.threads.append(Thread(line=head, kind=SectionKind.FINDSTACK, address=addr, frames=tuple(frames),
                                description=desc, stack_pointer=sp))


@st.composite
def _stacks_block(draw: st.DrawFn, g: _Gen) -> None:
    g.add("> ::stacks")
    g.add("THREAD           STATE    SOBJ                COUNT")
    for k in range(draw(st.integers(1, 4))):
        if k:
            g.add("")
        addr = _new_addr(draw, g)
        state = draw(st.sampled_from(["SLEEP", "RUN", "ONPROC", "FREE", "STOPPED", "WAIT", "ZOMB", "PANIC"]))
        sobj = draw(st.sampled_from(["CV", "SEMA", "MUTEX", "RW", "SHUTTLE", "<NONE>", "??"]))
        count = draw(st.integers(1, 5000))
        head = g.add(f"{addr:016x} {state:<8} {sobj:<19} {count:>5}")
        frames = []
        for _ in range(draw(st.integers(1, 10))):
            module, func, off, loc = draw(_symbol())
            line = g.add(" " * 17 + loc)
            frames.append(Frame(line, func, module, off, None, None))
        g.threads.append(Thread(line=head, kind=SectionKind.STACKS, address=addr, frames=tuple(frames),
                                state=state, sobj=sobj, count=count, is_panic=state == "PANIC"))


_MESSAGE = st.builds(lambda words: " ".join(words), st.lists(st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:=(),'\"/.#+*_-", min_size=1, max_size=16),
    min_size=1, max_size=12))


@st.composite
def _status_block(draw: st.DrawFn, g: _Gen) -> None:
    g.add("> ::status")
    n = draw(st.integers(0, 999))
    host = draw(_IDENT).replace("_", "-")
    version = draw(st.sampled_from(["joyent_20180216T202957Z", "omnios-r151046-4b2ce8d1e3", "illumos-5a3c1a9d"]))
    message = draw(_MESSAGE)
    g.add(f"debugging crash dump vmcore.{n} (64-bit) from {host}")
    g.add(f"operating system: 5.11 {version} (i86pc)")
    uuid = draw(st.none() | st.uuids().map(str))
    if uuid:
        g.add(f"image uuid: {uuid}")
    line = g.add(f"panic message: {message}")
    g.add("dump content: kernel pages only")
    g.status = dict(dump_file=f"vmcore.{n}", bits=64, host=host, release="5.11", version=version,
                    machine="i86pc", image_uuid=uuid, panic_message=message, dump_content="kernel pages only",
                    panic_line=line)


@st.composite
def transcripts(draw: st.DrawFn) -> _Gen:
    """A well-formed mdb session: optional ::status, then stacks, ::findstack -v and ::stacks blocks."""
    g = _Gen()
    if draw(st.booleans()):
        draw(_status_block(g))
    blocks = draw(st.lists(st.sampled_from(["stack", "findstack", "stacks"]), min_size=1, max_size=5))
    for b in blocks:
        if draw(st.booleans()):
            g.add("")
        draw({"stack": _stack_block, "findstack": _findstack_block, "stacks": _stacks_block}[b](g))
    return g


@PROFILE
@given(transcripts(), st.sampled_from(["\n", "\r\n"]))
def test_generated_transcripts_round_trip(g: _Gen, newline: str) -> None:
    text = newline.join(g.lines) + "\n"
    dump = parse_transcript(text, "<generated>")
    assert dump.stacks == tuple(g.stacks)
    assert dump.panic_stack == (g.stacks[0] if g.stacks else None)
    assert dump.threads == tuple(g.threads)
    assert not dump.raw_sections, dump.sections
    if g.status is None:
        assert dump.status is None
    else:
        s = dump.status
        assert s is not None
        want = dict(g.status)
        panic_line = want.pop("panic_line")
        for name, value in want.items():
            assert getattr(s, name) == value, name
        assert dump.panic_message == want["panic_message"]
        assert dump.panic_message_line == panic_line
    # the same text must triage without error, whatever it contains
    assert triage_text(text, "<generated>").status == "ok"

