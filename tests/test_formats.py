"""Issue 13: the panic records operators have (FMA, trap banners, Solaris 11.4 typed stacks, wrapped and
flattened pastes) read into the dump model, and verdicts that never call a crash 'no crash'."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import ERRORS, TRANSCRIPTS, read_text
from dumpscope.bucket import NO_CRASH_TITLE, UNREADABLE_TITLE, bucket, recursion
from dumpscope.cli import main
from dumpscope.dump import Frame
from dumpscope.parse import parse_transcript
from dumpscope.records import _PANICSTACK_FRAME, _panicstack_entries
from dumpscope.render import dump_to_json
from dumpscope.triage import nothing_usable, signature_bucket, triage_text


def _fixture(stem: str) -> str:
    return read_text(TRANSCRIPTS / f"{stem}.txt")


# -- wrapped panic messages -------------------------------------------------------------------------

def test_mdb_autowrap_cut_mid_word_is_joined_without_a_space() -> None:
    # mdb before illumos 11186 cut an item at the terminal width, inside a word (smartos-live#747 shape)
    head = 'BAD TRAP: type=e (#pf Page fault) rp=ffffff00fbc31ad0 addr=40 occurred in module "ip" due to a NULL pointer deref'
    assert len(head) >= 80
    text = ("> ::status\ndebugging crash dump vmcore.2 (64-bit) from headnode\n"
            "operating system: 5.11 joyent_20160826T112323Z (i86pc)\npanic message:\n"
            f"{head}\nerence\ndump content: kernel pages only\n")
    d = parse_transcript(text)
    assert d.panic_message == head + "erence"
    assert d.panic_message.endswith("NULL pointer dereference")


def test_a_message_wrapped_at_a_space_keeps_its_space() -> None:
    # a mailer wraps at a space, on lines shorter than a terminal
    text = ("panic[cpu0]/thread=30001830b80: dtrace: panic action at probe\n"
            "syscall::mmap:entry (ecb 300000acfc8)\n\n"
            "000002a10050b840 dtrace:dtrace_probe+518 (fffe, 0, 1830f88, 1830f88, 30002fb8040, 300000acfc8)\n")
    d = parse_transcript(text)
    assert d.panic_message == "dtrace: panic action at probe syscall::mmap:entry (ecb 300000acfc8)"


def test_an_autowrapped_line_ending_at_a_space_keeps_the_space() -> None:
    # corpus 008: the cut falls on a space, which mdb left at the end of the line
    d = parse_transcript(_fixture("smartos-live-574-fss-badtrap-mdb-e-wrapped"))
    assert d.panic_message is not None and 'in module "FSS" due to' in d.panic_message


# -- web-flattened pastes ------------------------------------------------------------------------------

# A whole '> ::status' and '$C' run together on one line, as a bug tracker scraped to HTML shows them
# (the shape of mdb-formats.md corpus 004/027; the values here are made up).
_FLAT = ("Hit this today: > ::status debugging crash dump vmcore.7 (64-bit) from cn12 operating system: 5.11 "
         "joyent_20200101T000000Z (i86pc) image uuid: (not set) panic message: assertion failed: x == 0 (0x1 == "
         "0x0), file: ../../common/fs/zfs/dbuf.c, line: 123 dump content: kernel pages only > $C fffffb0450000000 "
         "vpanic() fffffb0450000010 0xfffffffffba436e1() fffffb0450000020 dbuf_rele_and_unlock+0x1e2("
         "fffffdc9f1eb3768, 0) fffffb0450000030 zio_done+0x542(fffffed81e424080) fffffb0450000040 "
         "taskq_thread+0x2cd(fffffdc57b003088) fffffb0450000050 thread_start+0xb()")


def test_a_flattened_status_and_stack_line_is_split_and_read() -> None:
    d = parse_transcript(f"Bug #1\n{_FLAT}\nmore prose\n")
    assert d.status is not None and d.status.host == "cn12" and d.platform == "joyent_20200101T000000Z"
    assert d.panic_message == "assertion failed: x == 0 (0x1 == 0x0), file: ../../common/fs/zfs/dbuf.c, line: 123"
    assert d.panic_message_line == 2
    assert d.panic_stack is not None and [f.function for f in d.panic_stack.frames][:3] == [
        "vpanic", "0xfffffffffba436e1", "dbuf_rele_and_unlock"]
    assert {f.line for f in d.panic_stack.frames} == {2}
    assert any("line 2: a flattened paste (14 lines run together" in n for n in d.notes)
    assert triage_text(_FLAT).title == "assertion failed in dbuf_rele_and_unlock"


def test_a_flattened_console_traceback_is_split() -> None:
    flat = ("panic[cpu3]/thread=fffffe0c0d27c020: assertion failed: avl_is_empty(&sk->sk_dsl_keys), file: "
            "../../common/fs/zfs/dsl_crypt.c, line: 344 fffffe0011a3ca80 genunix:process_type+19af9d () "
            "fffffe0011a3cad0 zfs:spa_keystore_fini+e0 () fffffe0011a3cb10 zfs:spa_deactivate+1f6 ()")
    d = parse_transcript(flat + "\n")
    assert d.panic_message is not None and d.panic_message.endswith("line: 344")
    assert d.panic_stack is not None and [f.function for f in d.panic_stack.frames] == [
        "process_type", "spa_keystore_fini", "spa_deactivate"]


def test_ordinary_long_lines_are_not_split() -> None:
    long = "prose that mentions panic message: and dump content: in passing " * 3
    assert parse_transcript(long + "\n").notes == ()


# -- Solaris 11.4 typed stacks and trap data ----------------------------------------------------------

_SOLARIS_114 = """\
-- trap data type: 0x31 (data access MMU miss) rp: 0x2a106a651a0 --
addr: 0xfffffe702ab82298
pc: 0x7bed3030 mvfs:mfs_getview+0xe0: ldx [%i5 + 0x18], %o0
npc: 0x7bed3034 mvfs:mfs_getview+0xe4: or %l6, 0x192, %l5 (0x70d92)
global: %g1 0x7be6d7d4
%g2 0 %g3 0x1abae
<trap>mvfs:mfs_getview+0xe0(, 0, 0)
mvfs:mvfs_sun5_root(0x640050574b70, 0x2a106a65500) - frame recycled
int genunix:fsop_root+0x10((vfs_t *)0x640050574b70, (vnode_t **)0x2a106a65500)
int genunix:traverse+0x6c((vnode_t **)0x2a106a655e0, , , , , 0x6400595ccc00)
"""


def test_typed_frames_keep_values_and_types_as_text() -> None:
    d = parse_transcript(_SOLARIS_114)
    st = d.panic_stack
    assert st is not None
    assert [f.function for f in st.frames] == ["mfs_getview", "mvfs_sun5_root", "fsop_root", "traverse"]
    assert [f.line for f in st.frames] == [7, 8, 9, 10]
    fsop = st.frames[2]
    assert (fsop.module, fsop.offset, fsop.args) == ("genunix", 0x10, (0x640050574b70, 0x2a106a65500))
    assert st.types[2] == ("int", ("vfs_t *", "vnode_t **"))
    # an empty slot ends the values (positional) but keeps its place among the types
    assert st.frames[3].args == (0x2a106a655e0,)
    assert st.types[3] == ("int", ("vnode_t **", None, None, None, None, None))
    assert st.trap_frame == 0


def test_parse_json_keeps_the_types_as_text_beside_the_values() -> None:
    # read off _SOLARIS_114: frame 2 'int genunix:fsop_root+0x10((vfs_t *)0x..., (vnode_t **)0x...)',
    # frame 3 with five empty slots after its first argument, '<trap>' on frame 0
    doc = dump_to_json(parse_transcript(_SOLARIS_114), "<input>")
    (stack,) = doc["stacks"]
    assert len(stack["types"]) == len(stack["frames"]) == 4
    assert stack["types"][2] == {"return": "int", "args": ["vfs_t *", "vnode_t **"]}
    assert stack["types"][3] == {"return": "int", "args": ["vnode_t **", None, None, None, None, None]}
    assert stack["frames"][2]["args"] == ["640050574b70", "2a106a65500"]
    assert stack["trap_frame"] == 0
    # an untyped stack says so with an empty list
    plain = dump_to_json(parse_transcript("> $C\nffffff000f832950 vpanic()\nffffff000f832960 panic+0x9c()\n"), "<input>")
    assert plain["stacks"][0]["types"] == [] and plain["stacks"][0]["trap_frame"] is None


def test_solaris_114_trap_data_is_a_trap_record_with_the_pc_symbol() -> None:
    d = parse_transcript(_SOLARIS_114)
    t = d.trap
    assert t is not None
    assert (t.type, t.name, t.pc, t.symbol, t.addr) == ("31", "data access MMU miss", 0x7bed3030,
                                                         "mvfs:mfs_getview+0xe0", 0xfffffe702ab82298)
    assert dict(t.lines)["symbol"] == 3
    v = triage_text(_SOLARIS_114)
    assert "mfs_getview" in v.title and "type=31" in v.title and NO_CRASH_TITLE not in v.title


# -- FMA panic records ---------------------------------------------------------------------------------

def test_fma_record_gives_message_stack_and_members() -> None:
    d = parse_transcript(_fixture("fma-vioscsi-list-remove-head-fmdump-in-c-comment"))
    assert d.fma is not None
    assert d.fma.event == "defect.sunos.kernel.panic"
    assert d.fma.get("savecore-succcess") == "1" and d.fma.line_of("panicstr") == 37
    assert d.panic_stack is not None and d.panic_stack.frames[3].function == "list_remove_head"


# The fuzz's panicstack inputs (issue 18): a run of tens of thousands of module characters in the
# panicstack made finding its entries quadratic; read by hand, each keeps the frames of its original.
_VIOSCSI_STACK = ["die", "trap", "cmntrap", "scsi_init_pkt", "scsi_hba_probe_pi", "scsi_hba_probe", "vioscsi_probe_lun",
                  "vioscsi_config_lun", "vioscsi_tran_bus_config", "scsi_hba_bus_config", "devi_config_common",
                  "mt_config_thread", "thread_start"]


@pytest.mark.parametrize(("stem", "functions", "line"), [
    ("err.fuzz-panicstack-run-of-64k-zeros", _VIOSCSI_STACK, 11),
    ("err.fuzz-panicstack-function-of-64k-zeros", ["die", "trap", "cmntrap"], 38),
    ("err.fuzz-panicstack-offset-of-5000-digits", ["die", "trap", "cmntrap"], 38),
    ("err.fuzz-panicstack-offset-of-5000-digits-byte-flips", ["die", "trap", "cmntrap"], 38),
])
def test_a_panicstack_with_a_long_run_keeps_its_frames(stem: str, functions: list[str], line: int) -> None:
    d = parse_transcript(read_text(ERRORS / f"{stem}.txt"))
    assert d.panic_stack is not None
    assert [f.function for f in d.panic_stack.frames] == functions and d.panic_stack.frames[0].line == line


def test_panicstack_entries_are_what_finditer_finds() -> None:
    # the linear search must find exactly the regex's own leftmost, non-overlapping matches
    pieces = ["unix", ":", "die", "+", "dd", " ()", " ", "|", "-", ".", "$", "0", "f", "x", "(", ")", "a:b+1 ()", "::"]
    rng = random.Random(18)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        want = [(m.span(), m.groups()) for m in _PANICSTACK_FRAME.finditer(text)]
        assert [(m.span(), m.groups()) for m in _panicstack_entries(text)] == want, text


def test_fmdump_scaffolding_is_part_of_the_record_and_alone_is_no_record() -> None:
    d = parse_transcript(_fixture("fma-illumos-kvm-13-apix-null-deref-fmdump-vp"))
    fma = [s for s in d.sections if s.kind.value == "fma"]
    assert fma and fma[0].start == 10 and fma[-1].end == 38  # 'TIME  UUID  SUNW-MSG-ID' to panicstack
    assert not [s for s in d.sections if s.kind.value == "raw" and 10 <= s.start <= 38]
    alone = parse_transcript("nvlist version: 0\n    version = 0x0\n    class = list.suspect\n")
    assert alone.fma is None
    assert triage_text("nvlist version: 0\n    version = 0x0\n").title != UNREADABLE_TITLE


def test_an_fma_record_without_panicstr_is_an_unreadable_panic_record_not_no_crash() -> None:
    text = _fixture("fma-exfat-159-dump-pending-no-panicstr-fmdump-vp")
    v = triage_text(text)
    assert v.status == "ok" and v.title == UNREADABLE_TITLE
    assert any("without panicstr" in n and "lines" in n for n in v.notes)


def test_panic_shaped_text_the_parser_cannot_use_is_never_no_crash() -> None:
    text = "notes from the console, retyped:\nit said panic[cpu0]/thread=ffffff0006761c40: and the screen went blank\n"
    v = triage_text(text)
    assert v.status == "ok"
    assert v.title == UNREADABLE_TITLE
    assert any("not understood (lines 2)" in n for n in v.notes)


# -- trap records and buckets for crashes without a stack ----------------------------------------------

def test_general_protection_faults_without_a_stack_get_their_own_buckets() -> None:
    a = triage_text(_fixture("trap-smartos-live-268-ksh93-gp-syslog-registers"))
    b = triage_text(_fixture("smartos-live-935-vmem-span-destroy-gp-syslog"))
    third = ("panic[cpu3]/thread=fffffe5947798b80:\nBAD TRAP: type=d (#gp General protection) "
             "rp=fffffe59403a0f10 addr=0\n\nqemu-system-x86:\n#gp General protection\n"
             "pid=1234, pc=0xfffffffff7a1c0de, sp=0xfffffe59402feed0, eflags=0x10282\n")
    c = triage_text(third)
    assert len({a.bucket, b.bucket, c.bucket}) == 3
    assert "process qemu-system-x86" in c.title and "pc 0xfffffffff7a1c0de" in c.title
    # the same fault on another cpu, at other addresses, is the same bucket
    again = third.replace("cpu3", "cpu9").replace("rp=fffffe59403a0f10", "rp=fffffe5940000010")
    assert triage_text(again).bucket == c.bucket


# -- recursion ---------------------------------------------------------------------------------------

def _frames(*names: str) -> tuple[Frame, ...]:
    return tuple(Frame(i + 1, n, None, 0x10, ()) for i, n in enumerate(names))


def test_recursion_finds_the_repeating_cycle() -> None:
    frames = _frames("ipf_hook", "mac_rx", "ip_input", "dls_rx_promisc", "mac_tx", "mac_rx", "ip_input",
                     "dls_rx_promisc")
    assert recursion(frames) == ("mac_rx", "ip_input", "dls_rx_promisc")  # the run seen twice
    assert recursion(_frames("a", "b", "c", "a", "d")) == ()  # one repeated function is not recursion


def test_recursion_title_only_without_another_message() -> None:
    text = _fixture("recursion-smartos-live-143-promisc-ip-input-loop")
    assert triage_text(text).title.startswith("stack overflow: recursion through ")
    d = parse_transcript(text)
    from dataclasses import replace
    asserted = replace(d, panic_message="assertion failed: x == y, file: ../../a.c, line: 1")
    assert bucket(asserted).title.startswith("assertion failed")


# -- buckets: known signatures, 'no crash' kinds, errors -----------------------------------------------

@pytest.mark.parametrize("stem", ["seed-12476-vatpit-status-and-dollar-c", "seed-12476-vhpet-with-remover",
                                  "illumos-12476-cyclic-reprogram-vatpit"])
def test_a_known_signature_is_one_bucket_whatever_parts_are_present(stem: str) -> None:
    v = triage_text(_fixture(stem))
    assert v.signature == "illumos-12476"
    assert v.bucket == signature_bucket("illumos-12476")


def test_stack_only_12476_excerpt_shares_the_bucket() -> None:
    # the same crash with ::status cut away
    text = _fixture("seed-12476-vatpit-status-and-dollar-c")
    lines = [ln for ln in text.splitlines() if "panic message" not in ln and "operating system" not in ln]
    v = triage_text("\n".join(lines) + "\n")
    assert v.signature == "illumos-12476"
    assert v.bucket == signature_bucket("illumos-12476")


def test_no_crash_kinds_are_distinct_buckets_with_honest_titles() -> None:
    live = triage_text("> ::status\ndebugging live kernel (64-bit) on smartos5\n"
                       "operating system: 5.11 joyent_20151001T070028Z (i86pc)\n")
    not_captured = triage_text("> ::status\ndebugging crash dump vmcore.0 (64-bit) from host\n"
                               "operating system: 5.11 joyent_20151001T070028Z (i86pc)\n")
    assert live.title == "no panic: live kernel session"
    assert not_captured.title == "crash dump: panic message and stack not captured"
    assert live.bucket != not_captured.bucket


def test_error_rows_get_no_bucket() -> None:
    v = triage_text("just some prose about a machine\nthat has nothing to do with mdb\n")
    assert v.status == "error" and v.bucket == ""


def test_parse_and_triage_agree_on_what_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a kmem report alone: triage classifies it, so parse must not call it 'no mdb output'
    kmem = tmp_path / "kmem.txt"
    kmem.write_text("kernel memory allocator: buffer freed to wrong cache\nbuffer=ffffff0000000000\n")
    prose = tmp_path / "prose.txt"
    prose.write_text("nothing here\n")
    for path in (kmem, prose):
        dump = parse_transcript(path.read_text())
        verdict = triage_text(path.read_text())
        with pytest.raises(SystemExit) as exc:
            main(["parse", str(path)])
        capsys.readouterr()
        assert (exc.value.code == 1) == (verdict.status == "error") == nothing_usable(dump, path.read_text())


# -- properties: generated records of each new format round-trip; any mixture parses, never raises ----

import time  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from _robust import PROFILE  # noqa: E402

_NAME = st.builds(lambda a, b: a + b, st.sampled_from("abcdefghijklmnopqrstuvwxyz_"),
                  st.text("abcdefghijklmnopqrstuvwxyz0123456789_", max_size=20))
_MOD = st.sampled_from(["unix", "genunix", "zfs", "vioscsi", "sd", "mac_ether", "kstat"])
_OFF = st.integers(min_value=1, max_value=0xffff)
_ADDR = st.integers(min_value=0x10000000, max_value=2**64 - 1)
_INDENT = st.sampled_from(["", "    ", "        ", "\t"])


@st.composite
def _fma_records(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str, int]], int]:
    """(text, panicstr, frames (mod, func, off), line of panicstr) in one of the three printed forms."""
    frames = draw(st.lists(st.tuples(_MOD, _NAME, _OFF), min_size=1, max_size=12))
    message = "BAD TRAP: type=e (#pf Page fault) rp=%x addr=%x" % (draw(_ADDR), draw(st.integers(0, 4096)))
    form = draw(st.sampled_from(["nvlist", "per-line", "json"]))
    ind = draw(_INDENT)
    entries = [f"{m}:{f}+{o:x} ()" for m, f, o in frames]
    head = [f"{ind}class = defect.sunos.kernel.panic", f"{ind}savecore-succcess = 1",
            f"{ind}dump-dir = /var/crash/volatile"]
    if form == "json":
        body = [f'{ind}"panicstack": "{" | ".join(entries)} | ",', f'{ind}"panicstr": "{message}",']
        line = len(head) + 2
    elif form == "per-line":
        body = [f"{ind}panicstr = {message}", f"{ind}panicstack ="] + [f"{ind}    {e} |" for e in entries]
        line = len(head) + 1
    else:
        body = [f"{ind}panicstr = {message}", f"{ind}panicstack = {' | '.join(entries)} |"]
        line = len(head) + 1
    return "\n".join(head + body + [f"{ind}crashtime = 1541273143"]) + "\n", message, frames, line


@PROFILE
@given(_fma_records())
def test_generated_fma_records_give_their_message_and_stack(rec: tuple[str, str, list[tuple[str, str, int]], int]) -> None:
    text, message, frames, line = rec
    d = parse_transcript(text)
    assert d.panic_message == message and d.panic_message_line == line
    assert d.panic_stack is not None
    assert [(f.module, f.function, f.offset) for f in d.panic_stack.frames] == frames
    assert d.fma is not None and d.fma.get("dump-dir") == "/var/crash/volatile"


@st.composite
def _trap_banners(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    proc = draw(_NAME)
    pid, pc, sp, addr = draw(st.integers(0, 99999)), draw(_ADDR), draw(_ADDR), draw(_ADDR)
    cpu = draw(st.integers(0, 255))
    mn, name, typ = draw(st.sampled_from([("#gp", "General protection", "d"), ("#pf", "Page fault", "e"),
                                          ("#df", "Double fault", "8"), ("#ud", "Invalid opcode", "6")]))
    text = (f"panic[cpu{cpu}]/thread=fffffe5947798b80:\nBAD TRAP: type={typ} ({mn} {name}) rp={draw(_ADDR):x}"
            f" addr={addr:x}\n\n{proc}:\n{mn} {name}\naddr=0x{addr:x}\n"
            f"pid={pid}, pc=0x{pc:x}, sp=0x{sp:x}, eflags=0x10282\n"
            "cr0: 80050033<pg,wp,ne,et,mp,pe>  cr4: 3406f8<smap,smep,osxsav,xmme,fxsr,pge,mce,pae,pse,de>\n"
            f"cr2: {addr:x}\n\n        rdi: fffffe002d4aaa10 rsi:                3 rdx:                0\n")
    return text, {"process": proc, "pid": pid, "pc": pc, "sp": sp, "addr": addr, "cpu": cpu, "type": typ,
                  "mnemonic": mn}


@PROFILE
@given(_trap_banners())
def test_generated_trap_banners_give_their_trap_record(banner: tuple[str, dict[str, object]]) -> None:
    text, want = banner
    d = parse_transcript(text)
    assert d.trap is not None
    assert {k: getattr(d.trap, k) for k in want} == want
    v = triage_text(text)
    assert v.status == "ok" and NO_CRASH_TITLE not in v.title and str(want["process"]) in v.title


_TYPES = st.sampled_from(["vfs_t *", "vnode_t **", "int", "struct pathname *", "cred_t *", "enum uio_seg"])


@st.composite
def _typed_stacks(draw: st.DrawFn) -> tuple[str, list[tuple[str, tuple[int, ...]]]]:
    lines, want = [], []
    for _ in range(draw(st.integers(1, 8))):
        func = draw(_NAME)
        args = draw(st.lists(st.tuples(_TYPES, st.integers(0, 2**64 - 1)), max_size=6))
        ret = draw(st.sampled_from(["int ", "void ", "boolean_t ", ""]))
        shown = ", ".join(f"({t}){v:#x}" for t, v in args)
        lines.append(f"{ret}genunix:{func}+0x{draw(_OFF):x}({shown})")
        want.append((func, tuple(v for _, v in args)))
    return "\n".join(lines) + "\n", want


@PROFILE
@given(_typed_stacks())
def test_generated_typed_stacks_keep_every_value(stack: tuple[str, list[tuple[str, tuple[int, ...]]]]) -> None:
    text, want = stack
    d = parse_transcript(text)
    assert d.panic_stack is not None
    assert [(f.function, f.args) for f in d.panic_stack.frames] == want


_NEW_PIECES = st.sampled_from([
    "panicstr = ", "panicstack = ", "unix:die+dd () | ", " |", "dump-dir = /var/crash\n", '"panicstr": "',
    "ireport.os.sunos.panic.dump_available 0x0\n", "defect.sunos.kernel.panic", "savecore-succcess = 1\n",
    "ksh93:\n", "#gp General protection\n", "addr=0x18\n", "Bad kernel fault at addr=0x18\n",
    "pid=5, pc=0xfffffffffb889d1d, sp=0xffffff003d0075c0, eflags=0x10282\n", "cr2: 18\n",
    "mount: trap type = 0x31\n", "TL=0000.0000.0000.0005 TT=0000.0000.0000.0064", "TPC=0000.0000.f000.4c80",
    "-- trap data type: 0x31 (data access MMU miss) rp: 0x2a106a651a0 --\n", "pc: 0x7bed3030 mvfs:f+0xe0: ldx\n",
    "<trap>", "int genunix:fsop_root+0x10(", "(vfs_t *)0x640050574b70", ", , ", ") - frame recycled",
    "panic string: ", "BAD TRAP: type=d (#gp General protection) rp=ffffff003d0074d0 addr=27e08\n",
    "     * ", "\n", "\n", " ", "(", ")", "deref", "erence\n", "x" * 79,
])


@PROFILE
@given(st.lists(_NEW_PIECES | st.text(max_size=6), max_size=150).map("".join))
def test_any_mixture_of_the_new_formats_parses_and_triages_quickly(text: str) -> None:
    start = time.perf_counter()
    d = parse_transcript(text)
    assert all(t.line <= t.end for t in d.traps)
    v = triage_text(text)
    assert v.status in ("ok", "error")
    # not a timing test: a bound far above any real cost, to catch a runaway (quadratic) loop
    assert time.perf_counter() - start < 10.0
