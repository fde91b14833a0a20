"""Each .lark grammar loads; each line terminal accepts its positive snippets and rejects negative ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from lark import Lark

from dumpscope.dump import SectionKind
from dumpscope.grammar import (
    FORMAT_GRAMMARS,
    TABLE_FILE,
    build_table,
    grammar_digest,
    grammar_dir,
    grammar_text,
    lark_lexer_class,
    line_lexer,
    read_table,
    table_json,
    transcript_parser,
)
from dumpscope.lexer import LexInput, LineLexer
from dumpscope.parse import parse_transcript


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
    Lark(text + f"\nstart: {rule}+\n", parser="lalr", lexer=lark_lexer_class())


def test_saved_table_is_the_one_lark_builds_from_the_grammar() -> None:
    # grammars/transcript.table.json is what the parser runs: after a .lark change, regenerate it
    # with `python -m dumpscope.grammar` (a stale file is not used, but parsing is then slower)
    path = grammar_dir() / TABLE_FILE
    saved = read_table(path, grammar_digest())
    assert saved is not None, "stale: python -m dumpscope.grammar"
    built = build_table()
    assert saved["terminals"] == built["terminals"]
    # Another Lark release may number the list rules it generates otherwise: the file must then still
    # parse as Lark does, which the TableParser test below checks with the saved table.
    if saved["built_by"] == built["built_by"]:
        assert path.read_text(encoding="utf-8") == table_json(built), "stale: python -m dumpscope.grammar"


def test_a_table_built_from_another_grammar_is_not_used(tmp_path: Path) -> None:
    table = build_table()
    path = tmp_path / TABLE_FILE
    path.write_text(table_json(table), encoding="utf-8")
    assert read_table(path, grammar_digest()) == table
    assert read_table(path, "0" * 64) is None  # the grammar changed since
    for junk in ("", "{", "[]", '{"format": "dumpscope.lalr/0"}', "\x00"):
        path.write_text(junk, encoding="utf-8")
        assert read_table(path, grammar_digest()) is None
    assert read_table(tmp_path / "missing.json", grammar_digest()) is None


def test_composed_grammar_builds_an_lalr_parser() -> None:
    assert transcript_parser().options.parser == "lalr"


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


def _first_pass_kind(lexer: LineLexer, line: str) -> str:
    # the kind the lexer's own pass gives a line (it tries the terminal that leads for the line's
    # first character, then the frame shortcuts, before classifying, and remembers ::stacks frame
    # lines): the token a one-line input becomes
    toks = list(lexer.toks(LexInput([line])))
    return toks[0][0] if toks else "BLANK"


def test_fast_terminal_choice_equals_trying_every_terminal_in_order() -> None:
    # FirstTerminal skips indentation once and tries only the terminals that can start with the
    # line's first character; on every line of every fixture it must pick what the plain loop picks,
    # and so must the lexer's pass, which tries other terminals first.
    from conftest import TRANSCRIPTS, read_text

    lexer = _lexer()
    lines = {line for p in TRANSCRIPTS.glob("*.txt") for line in read_text(p).split("\n") if line.strip()}
    lines |= {x for xs in POSITIVE.values() for x in xs} | {x for xs in NEGATIVE.values() for x in xs}
    assert len(lines) > 500
    wrong = []
    for line in sorted(lines):
        if line.lstrip().startswith(">"):
            continue  # quote peeling is the classifier's own business
        fast, _ = lexer._classify(line)
        if fast != _slow_classify(lexer, line) or _first_pass_kind(lexer, line) != fast:
            wrong.append((line, fast, _first_pass_kind(lexer, line), _slow_classify(lexer, line)))
    assert not wrong, wrong[:5]


def test_table_parser_builds_what_larks_own_parser_loop_builds() -> None:
    # parse.py runs Lark's LALR table with its own loop (grammar.TableParser); Lark.parse with the
    # same transformer is the reference, on every fixture and on a few reshuffled ones.
    from conftest import TRANSCRIPTS, read_text

    from dumpscope.lexer import split_lines

    texts = [read_text(p) for p in sorted(TRANSCRIPTS.glob("*.txt"))]
    texts += ["\n".join(reversed(split_lines(t))) for t in texts[:10]]  # sections out of order
    texts += ["", "\n\n", "garbage only\n"]
    for text in texts:
        _assert_table_parser_is_lark(text)


def _assert_table_parser_is_lark(text: str) -> None:
    # TableParser with the ::findstack threads handed over whole (as parse_transcript runs it) and
    # with one token per line, against Lark.parse (one token per line)
    from dumpscope.grammar import line_lexer, table_parser
    from dumpscope.lexer import LexInput, split_lines
    from dumpscope.parse import _TRANSFORMER, findstack_thread_value

    reference = transcript_parser(_TRANSFORMER).parse(LexInput(split_lines(text)))  # type: ignore[arg-type]
    whole = table_parser(_TRANSFORMER).parse(line_lexer().toks(LexInput(split_lines(text)), findstack_thread_value))
    by_line = table_parser(_TRANSFORMER).parse(line_lexer().toks(LexInput(split_lines(text))))
    assert whole == reference
    assert by_line == reference


def test_a_findstack_thread_token_is_what_the_parser_would_have_reduced() -> None:
    # The lexer hands a ::findstack thread over as one findstack_thread token, read greedily: the
    # header, a bracket line if one follows, a frame run if one follows. That is sound only if the
    # table does the same: after the header, a bracket line and a frame run are always shifted into
    # the thread, never reduced on. (TableParser itself refuses a header that does not start the rule.)
    from dumpscope.grammar import load_table

    states = load_table()["states"]
    after_head = {row["FINDSTACK_HEAD"] for row in states.values() if row.get("FINDSTACK_HEAD", -1) >= 0}
    assert after_head
    for s1 in after_head:
        row = states[str(s1)]
        assert row["BRACKET"] >= 0 and row["FRAME"] >= 0, row
        assert states[str(row["BRACKET"])]["FRAME"] >= 0


def test_a_rule_token_for_a_terminal_that_starts_other_things_is_refused() -> None:
    # FRAME starts a stack section too: a token standing for findstack_thread cannot replace it
    from dumpscope.grammar import TableParser, load_table
    from dumpscope.parse import _TRANSFORMER

    with pytest.raises(ValueError, match="FRAME is shifted where findstack_thread cannot start"):
        TableParser(load_table(), _TRANSFORMER, {"findstack_thread": "FRAME"})


_THREAD_LINES = [
    "stack pointer for thread fffffe55d37b8080 (bhyve/1 [vcpu 0]): fffffb04249a9560",
    "stack pointer for thread fffffe55d37b8080: fffffb04249a9560",
    "stack pointer for thread fffffe55d37b8081 (TS_FREE): fffffb04249a9561",
    "stack pointer for thread fffffe55d37b8082 (TS_FREE) (zpool-rpool): fffffb04249a9562",
    "[ fffffb04249a9560 _resume_from_idle+0x12b() ]",
    "[ fffffb04249a9560 unix`_resume_from_idle+0xf4() ]",
    "  fffffb04249a9590 swtch+0x141()",
    "  fffffb04249a95d0 sema_p+0x1d7(fffffdc5496f0de0)",
    "  fffffb04249a95e0 cyclic_remove_here+0x6b(fffffdc5496f0de0, 2,",
    "  , fffffb04249a9670)",
    "    swtch+0x141()",
    "fffffe59432a5060 fffffe5943a8e020 fffffe5945ec5e58   2  59 fffffe5943a8e0d0",
    "  PC: _resume_from_idle+0xf4    CMD: /usr/sbin/vmstat 1",
    "ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)",
    "> ::walk thread | ::findstack -v",
    "> ::threadlist -v",
    "ffff800044011c20 SLEEP    CV                    287",
    "                 cv_wait+0x74",
    "",
    "   ",
    "some prose between the blocks",
]


_BLANKS = st.lists(st.sampled_from(["", "   "]), max_size=2)
# a ::findstack thread as mdb prints it, with blank lines where a paste may have put them
_THREAD_BLOCK = st.builds(
    lambda head, b1, bracket, b2, frames: [head, *b1, *bracket, *b2, *frames],
    st.sampled_from(_THREAD_LINES[:4]), _BLANKS, st.lists(st.sampled_from(_THREAD_LINES[4:6]), max_size=2),
    _BLANKS, st.lists(st.sampled_from(_THREAD_LINES[6:11]), max_size=3))


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.one_of(_THREAD_BLOCK, st.lists(st.sampled_from(_THREAD_LINES), max_size=3)), max_size=6))
def test_table_parser_is_lark_on_generated_thread_sequences(blocks: list[list[str]]) -> None:
    _assert_table_parser_is_lark("\n".join(line for block in blocks for line in block) + "\n")


# Pieces of mdb lines, shuffled into lines no fixture holds: the fast terminal choice (first and
# required characters, the likeliest candidate's own regex first) must still pick what the plain
# loop over every terminal picks.
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
def test_fast_terminal_choice_on_generated_lines(pieces: list[str]) -> None:
    line = "".join(pieces)
    if line.lstrip().startswith(">"):
        return  # quote peeling is the classifier's own business
    lexer = _lexer()
    want = _slow_classify(lexer, line)
    assert lexer._classify(line)[0] == want
    assert _first_pass_kind(lexer, line) == (want if line.strip() else "BLANK")


def test_python_m_dumpscope_grammar_writes_a_table_the_parser_accepts(tmp_path: Path) -> None:
    from dumpscope.grammar import _main

    target = tmp_path / "table.json"
    assert _main([str(target)]) == 0
    assert read_table(target, grammar_digest()) == build_table()
