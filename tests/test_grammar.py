"""Each .lark grammar loads; each line terminal accepts its positive snippets and rejects negative ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from lark import Lark

from dumpscope.dump import SectionKind
from dumpscope.grammar import (
    CACHE_FILE,
    FORMAT_GRAMMARS,
    grammar_dir,
    grammar_stamp,
    grammar_text,
    line_lexer,
    transcript_parser,
)
from dumpscope.lexer import LexInput, LineLexer, split_lines
from dumpscope.parse import TRANSFORMER, parse_transcript


def _lexer() -> LineLexer:
    return line_lexer()


@pytest.mark.parametrize("name", FORMAT_GRAMMARS)
def test_each_grammar_file_exists_and_documents_itself(name: str) -> None:
    text = (grammar_dir() / f"{name}.lark").read_text()
    assert text.startswith("//"), "each grammar opens with a comment saying what it parses"


@pytest.mark.parametrize("name", [n for n in FORMAT_GRAMMARS if n not in ("common", "transcript")])
def test_each_format_grammar_loads_on_its_own(name: str) -> None:
    # a format grammar + the shared terminals + a start rule naming its section rule
    rule = {"console": "console_stack"}.get(name, name)
    text = grammar_text(("common", "status", "findstack", name)) if name == "threadlist" else \
        grammar_text(("common", name))
    Lark(text + f"\nstart: {rule}+\n", parser="lalr", lexer=LineLexer)


def test_saved_parser_is_current() -> None:
    # grammars/transcript.lark.cache is the parser Lark built from the grammar (saved by Lark.save):
    # after a .lark change, regenerate it with `python -m dumpscope.grammar` (a stale file is not
    # used, but every process then spends ~70 ms building the table)
    from lark import __version__ as lark_version

    with (grammar_dir() / CACHE_FILE).open("rb") as f:
        stamp = f.readline().decode()
    if f"lark-{lark_version} " not in stamp:
        pytest.skip(f"saved by another Lark release ({stamp.split()[2]}); this one builds the parser itself")
    assert stamp.encode() == grammar_stamp(TRANSFORMER), "stale: python -m dumpscope.grammar"


def test_the_saved_parser_parses_as_the_one_built_from_the_grammar() -> None:
    from conftest import TRANSCRIPTS, read_text

    from dumpscope.grammar import _build

    built = _build(TRANSFORMER)
    for p in sorted(TRANSCRIPTS.glob("*.txt"))[:40]:
        text = read_text(p)
        assert transcript_parser(TRANSFORMER).parse(LexInput(split_lines(text))) == \
            built.parse(LexInput(split_lines(text))), p.name  # type: ignore[arg-type]


def test_a_parser_saved_from_another_grammar_or_transformer_is_not_used(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import dumpscope.grammar as grammar

    for name in FORMAT_GRAMMARS:
        shutil.copy(grammar_dir() / f"{name}.lark", tmp_path)
    monkeypatch.setattr(grammar, "grammar_dir", lambda: tmp_path)
    assert grammar_stamp(TRANSFORMER) != grammar_stamp(None)  # the transformer is part of the stamp
    load = grammar.transcript_parser.__wrapped__  # not the process's cached parser
    text = SECTIONS[SectionKind.STACK]
    for stale in (grammar_stamp(None), grammar_stamp(TRANSFORMER).replace(b" lark-", b" lark-0")):
        (tmp_path / CACHE_FILE).write_bytes(stale + b"not what Lark.save writes")
        assert load(TRANSFORMER).parse(LexInput(split_lines(text)))  # built from the grammar instead
    (tmp_path / CACHE_FILE).write_bytes(grammar_stamp(TRANSFORMER) + b"not what Lark.save writes")
    with pytest.raises(Exception):  # noqa: B017 - a current stamp is trusted: the file is loaded
        load(TRANSFORMER)


def test_composed_grammar_builds_an_lalr_parser() -> None:
    assert transcript_parser(TRANSFORMER).options.parser == "lalr"


POSITIVE = {
    "PROMPT": ["> ::status", "[14]> $C", "> $c", "> ffffff01e863a710::findstack -v",
               "> zio_buf_cache,8000/Kna ! grep 000000", " > ::stacks -c cyclic_remove_here"],
    "FRAME": ["ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)",
              "vpanic()", "  fffffb04249a95d0 sema_p+0x1d7(fffffdc5496f0de0)", "thread_start+8()",
              "fffffc7e9b945800 libc.so.1`syscall+0x30()", "fffffe004040fa70 0xfffffffffb8c2361()",
              "    swtch+0x141()", 'ffff "sdev_plugin_validate+0x36()",'.split(" ", 1)[1],
              "fffffe004040fb50 brand_setbrand+0x112(fffffe2dbc0d0fc0,"],
    "CONSOLE_FRAME": ["ffffff001552f860 unix:die+df ()", "ffffff0006761830 fffffffffba8fbdd ()",
                      "000002a10050b840 dtrace:dtrace_probe+518 (fffe, 0, 1830f88, 1830f88,"],
    "CONSOLE_PANIC": ["panic[cpu0]/thread=ffffff0006761c40: feature_get_refcount(spa, feature,",
                      "panic[cpu2]/thread=fffffe44aab2c020:"],
    "SAVECORE_PANIC": ["reboot after panic: BAD TRAP: type=e (#pf Page fault) rp=ffffff007bef8a30 addr=400001c8"],
    "TRAP_BANNER": ['BAD TRAP: type=31 rp=2a1038c0cc0 addr=10 mmu_fsr=0 occurred in module "vxfs" due to a NULL'
                    " pointer dereference"],
    "FINDSTACK_HEAD": ["stack pointer for thread fffffe55d37b8080 (bhyve/1 [vcpu 0]): fffffb04249a9560",
                       "stack pointer for thread ffffff0007a0bc40: ffffff0007a0ba60",
                       "  stack pointer for thread d55f58a8 (TS_FREE): d55f5800"],
    "BRACKET": ["[ fffffb04249a9560 _resume_from_idle+0x12b() ]"],
    "STACKS_HEAD": ["THREAD           STATE    SOBJ                COUNT"],
    "STACKS_GROUP": ["ffff800044011c20 SLEEP    CV                    287",
                     "fffffe55d37b8080 SLEEP    SEMA                    1", "ffffff0007a0bc40 PANIC    <NONE>       1"],
    "STACKS_FRAME": ["                 cv_wait+0x74", "                 thread_exit"],
    "STACKS_FAIL": ["                 <thread not in memory>"],
    "THREADLIST_HEAD": ["            ADDR             PROC              LWP CLS PRI            WCHAN"],
    "THREADLIST_ROW": ["fffffe59432a5060 fffffe5943a8e020 fffffe5945ec5e58   2  59 fffffe5943a8e0d0"],
    "THREADLIST_PC": ["  PC: _resume_from_idle+0xf4    CMD: /usr/sbin/vmstat", "  PC: swtch+0x141"],
    "PANICINFO_FIELD": ["             cpu               34", "          thread ffffff01ea464c40",
                        "         message kernel heap corruption detected"],
    "CPUINFO_HEAD": [" ID ADDR             FLG NRUN BSPL PRI RNRN KRNRN SWITCH THREAD           PROC"],
    "CPUINFO_ROW": ["  0 fffffffffbc37580  1b    0    0  60   no    no t-0    ffffff0007a0bc40 sched"],
    "STATUS_HEAD": ["debugging crash dump vmcore.22 (64-bit) from dent", "debugging live kernel (64-bit) on smartos5"],
    "STATUS_FIELD": ["operating system: 5.11 joyent_20180216T202957Z (i86pc)", "panic message: ",
                     "dump content: kernel pages only", "image uuid: (not set)"],
    "SHELL_MDB": ["[root@headnode (BASEMENT) /var/crash/volatile]# mdb -e '::status; $C' 0",
                  "BRM42220007 # mdb 3", "mdb -k unix.0 vmcore.0", 'echo "::msgbuf" | mdb -k unix.0 vmcore.0'],
    "BANNER": ["Loading modules: [ unix genunix specfs dtrace ]", "Welcome to kmdb"],
    "MDB_WARN": ["mdb: thread ffffff0007a0bc40 isn't in memory"],
}

NEGATIVE = {
    "FRAME": ["The cyclic for vhpet_handler triggers, resulting in an interrupt", "vpanic ensues",
              "debugging crash dump vmcore.22 (64-bit) from dent", "ffffff001552f860 unix:die+df ()"],
    "PROMPT": ["> This is a quoted sentence", "> ffffff000f8328d0 vpanic()"],
    "STACKS_GROUP": ["ffff800044011c20 SLEEP"],
    "PANICINFO_FIELD": ["the quick brown fox jumps", "ffffff007d4ed4e0 kvm:kvm_de"],
    "FINDSTACK_HEAD": ["stack pointer for thread"],
    "STATUS_FIELD": ["# panic message: attempt to reprogram non-existent cyclic"],
    "SAVECORE_PANIC": ["# note: syslog 'savecore: reboot after panic:' line in backquotes"],
}


@pytest.mark.parametrize("kind,line", [(k, x) for k, xs in POSITIVE.items() for x in xs])
def test_line_terminal_accepts(kind: str, line: str) -> None:
    got, _ = _lexer().classify(line)
    assert got == kind


@pytest.mark.parametrize("kind,line", [(k, x) for k, xs in NEGATIVE.items() for x in xs])
def test_line_terminal_rejects(kind: str, line: str) -> None:
    got, _ = _lexer().classify(line)
    assert got != kind


SECTIONS = {
    SectionKind.STATUS: "debugging crash dump vmcore.0 (64-bit) from h\npanic message: x\n"
                        "dump content: kernel pages only\n",
    SectionKind.STACK: "> $C\nffffff000f8328d0 vpanic()\nffffff000f832950 foo+0x1(1)\n",
    SectionKind.FINDSTACK: "stack pointer for thread ffffff0007a0bc40: ffffff0007a0ba60\n"
                           "[ ffffff0007a0ba60 _resume_from_idle+0xf4() ]\n  ffffff0007a0ba90 swtch+0x141()\n",
    SectionKind.STACKS: "THREAD           STATE    SOBJ                COUNT\n"
                        "ffff800044011c20 SLEEP    CV                    287\n                 cv_wait+0x74\n",
    SectionKind.THREADLIST: "            ADDR             PROC              LWP CLS PRI            WCHAN\n"
                            "fffffe59432a5060 fffffe5943a8e020 fffffe5945ec5e58   2  59 fffffe5943a8e0d0\n"
                            "  PC: _resume_from_idle+0xf4    CMD: vmstat 1\n"
                            "  stack pointer for thread fffffe59432a5060: fffffe00f5e1cd50\n"
                            "  [ fffffe00f5e1cd50 _resume_from_idle+0xf4() ]\n    swtch+0x141()\n    cv_wait+0x70()\n",
    SectionKind.PANICINFO: "             cpu                1\n          thread ffffff001e817c40\n",
    SectionKind.CPUINFO: " ID ADDR             FLG NRUN BSPL PRI RNRN KRNRN SWITCH THREAD           PROC\n"
                         "  0 fffffffffbc37580  1b    0    0  60   no    no t-0    ffffff0007a0bc40 sched\n",
    SectionKind.CONSOLE: "panic[cpu0]/thread=ffffff0006761c40: boom\n\nffffff0006761830 genunix:foo+1a ()\n",
}


@pytest.mark.parametrize("kind", list(SECTIONS), ids=lambda k: k.value)
def test_section_kinds_are_recognised(kind: SectionKind) -> None:
    dump = parse_transcript(SECTIONS[kind])
    assert kind in {s.kind for s in dump.sections}
    assert not dump.raw_sections, dump.sections


def test_threadlist_entry_carries_its_stack() -> None:
    dump = parse_transcript(SECTIONS[SectionKind.THREADLIST])
    (t,) = dump.threads
    assert t.address == 0xfffffe59432a5060 and t.proc == 0xfffffe5943a8e020
    assert t.description == "vmstat 1"
    assert [f.function for f in t.frames] == ["_resume_from_idle", "swtch", "cv_wait"]
    assert t.frames[1].args == () and t.frames[1].fp is None


def _slow_classify(lexer: LineLexer, line: str) -> str:
    # the reference: every terminal in priority order, no dispatch, no memo
    for name, rx in lexer.terminals:
        m = rx.match(line)
        if m is not None:
            return name
    return "OTHER"


def test_classification_is_the_first_terminal_in_priority_order() -> None:
    # LineLexer finds a line's terminal with one alternation of all of them, in priority order; on
    # every line of every fixture it must pick what trying each terminal in turn picks
    from conftest import TRANSCRIPTS, read_text

    lexer = _lexer()
    lines = {line for p in TRANSCRIPTS.glob("*.txt") for line in read_text(p).split("\n") if line.strip()}
    lines |= {x for xs in POSITIVE.values() for x in xs} | {x for xs in NEGATIVE.values() for x in xs}
    assert len(lines) > 500
    wrong = [(line, lexer._classify(line)[0], _slow_classify(lexer, line)) for line in sorted(lines)
             if lexer._classify(line)[0] != _slow_classify(lexer, line)]
    assert not wrong, wrong[:5]


# Pieces of mdb lines, shuffled into lines no fixture holds: the alternation must still pick what the
# plain loop over every terminal picks.
_PIECES = ["ffffff000f832950", "fffffe55d37b8080", "d55f5800", " ", "  ", "\t", "swtch", "+0x141", "+8", "-0x1",
           "(", ")", "(ffffff03eb144000, b, 2cc15105498)", "()", ":", ": ", "[", "]", "[ ", " ]", "`", "unix:",
           "panic[cpu0]/thread=ffffff0006761c40:", "stack pointer for thread", "SLEEP", "CV", "<NONE>", "287",
           "THREAD", "STATE", "SOBJ", "COUNT", "panic message", "debugging crash dump", "> ", "::status", "$C",
           "mdb", "# ", "PC:", "CMD:", "ADDR", "PROC", "LWP", "ID", "FLG", "NRUN", "BSPL", "PRI", "RNRN", "KRNRN",
           "SWITCH", "thread", "~", '"', ",", "0t12", "reboot after panic:", "BAD TRAP: type=e", "...", "<br />",
           "kmdb: ", "Loading modules: [", "dump content", "%l0-3:", "0x", "             cpu", "          thread",
           "    message", "|", "+-->", "<--+", "PIL THREAD", "echo", "|", "$ ", "x:"]


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=9))
def test_classification_on_generated_lines(pieces: list[str]) -> None:
    line = "".join(pieces)
    lexer = _lexer()
    assert lexer._classify(line)[0] == _slow_classify(lexer, line)


def test_python_m_dumpscope_grammar_writes_a_parser_that_loads(tmp_path: Path) -> None:
    from lark import Lark

    from dumpscope.grammar import _main

    target = tmp_path / CACHE_FILE
    assert _main([str(target)]) == 0
    with target.open("rb") as f:
        assert f.readline() == grammar_stamp(TRANSFORMER)
        loaded = Lark.load(f)
    text = SECTIONS[SectionKind.FINDSTACK]
    assert loaded.parse(LexInput(split_lines(text))) == transcript_parser(TRANSFORMER).parse(  # type: ignore[arg-type]
        LexInput(split_lines(text)))
