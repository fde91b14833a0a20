"""Buckets and titles: the same crash with different addresses lands in the same bucket."""

from __future__ import annotations

from dataclasses import replace

import pytest

from _dumps import stack, status, thread
from dumpscope.bucket import bucket, is_meaningful, is_plumbing, is_unresolved, meaningful_frames, normalise_message
from dumpscope.dump import Dump, SectionKind

FSS_MSG = 'BAD TRAP: type=e (#pf Page fault) rp={rp} addr={addr} occurred in module "FSS" due to a NULL pointer dereference'
# corpus 008's $C, and the same crash on another boot: other addresses, arguments and frame pointers
FSS_A = """\
ffffff002f332a70 fss_update_list+0x7a(3)
ffffff002f332ab0 fss_update+0x52(0)
ffffff002f332b00 callout_list_expire+0x98(ffffff06f521d9c0, ffffff0819be3700)
ffffff002f332b30 callout_expire+0x3b(ffffff06f521d9c0)
"""
FSS_B = """\
ffffff003a1c0a70 fss_update_list+0x7a(1)
ffffff003a1c0ab0 fss_update+0x52(0)
ffffff003a1c0b00 callout_list_expire+0x98(ffffff09aa01c380, ffffff0a11be0040)
ffffff003a1c0b30 callout_expire+0x3b(ffffff09aa01c380)
"""


def _dump(msg: str | None, frames_text: str, first: int = 16, console: bool = False) -> Dump:
    st = stack(frames_text, first, console=console)
    return Dump(status=status(9, panic_message=msg, message_line=12) if msg else None,
                panic_message=msg, panic_message_line=12 if msg else None, panic_stack=st, stacks=(st,))


def test_same_crash_different_addresses_same_bucket() -> None:
    a = bucket(_dump(FSS_MSG.format(rp="ffffff002f332940", addr="0"), FSS_A))
    b = bucket(_dump(FSS_MSG.format(rp="ffffff0031aa7940", addr="8"), FSS_B, first=40))
    assert a.id == b.id and len(a.id) == 10
    assert a.frames == ("fss_update_list", "fss_update", "callout_list_expire")
    assert a.title == "BAD TRAP: page fault (NULL pointer dereference) in fss_update_list"


def test_offsets_and_console_form_do_not_split_a_bucket() -> None:
    # a later build moves offsets; a console copy prints 'FSS:fss_update_list+7a ()'
    other_build = FSS_A.replace("+0x7a", "+0x81").replace("+0x52", "+0x4e")
    console = (
        "ffffff002f332a70 FSS:fss_update_list+7a ()\n"
        "ffffff002f332ab0 FSS:fss_update+52 ()\n"
        "ffffff002f332b00 genunix:callout_list_expire+98 ()\n"
    )
    msg = FSS_MSG.format(rp="ffffff002f332940", addr="0")
    ids = {bucket(_dump(msg, t, console=c)).id for t, c in ((FSS_A, False), (other_build, False), (console, True))}
    assert len(ids) == 1


def test_different_function_or_message_different_bucket() -> None:
    msg = FSS_MSG.format(rp="ffffff002f332940", addr="0")
    base = bucket(_dump(msg, FSS_A)).id
    assert bucket(_dump(msg, FSS_A.replace("fss_update_list", "ts_update_list"))).id != base
    assert bucket(_dump(msg.replace('"FSS"', '"TS"'), FSS_A)).id != base


def test_normalise_masks_addresses_and_numbers_but_keeps_trap_type() -> None:
    assert normalise_message(FSS_MSG.format(rp="ffffff002f332940", addr="0")) == (
        'BAD TRAP: type=e (#pf Page fault) rp=N addr=N occurred in module "FSS" due to a NULL pointer dereference')
    assert normalise_message("recursive mutex_enter, lp=fffff042e0085140 owner=fffff04322cf53c0 thread=fffff04322cf53c0") == (
        "recursive mutex_enter, lp=N owner=N thread=N")
    assert normalise_message("BAD TRAP: type=31 rp=2a1038c0cc0 addr=10 mmu_fsr=0") == "BAD TRAP: type=31 rp=N addr=N mmu_fsr=N"
    assert normalise_message("assertion failed: x != 48 (0x30 != 0x30), file: ../../common/os/brand.c, line: 1191") == (
        "assertion failed: x != N (N != N), file: ../../common/os/brand.c, line: N")


def test_plumbing_and_unresolved_frames_are_skipped() -> None:
    # corpus 010's kmdb $C: kmdb_enter, debug_enter, panicsys, vpanic, two unresolved frames
    text = """\
fffffffffbc9ce60 kmdb_enter+0xb()
fffffffffbc9ce90 debug_enter+0x75(fffffffffb97a788)
fffffffffbc9cf80 panicsys+0x56e(fffffffffbf27cd8, fffffe004040fa18, fffffffffbc9cf90, 1)
fffffe004040fa00 vpanic+0x15c()
fffffe004040fa70 0xfffffffffb8c2361()
fffffe004040fac0 0xfffffffffbdcde25()
fffffe004040faf0 brand_solaris_setbrand+0x5a(fffffe2dbc0d0fc0, ffffffffc00d7940)
"""
    st = stack(text, 28)
    assert [f.function for f in meaningful_frames(st.frames)] == ["brand_solaris_setbrand"]
    d = Dump(panic_message="assertion failed: p->p_brand_data == NULL, file: ../../common/os/brand.c, line: 1191",
             panic_stack=st, stacks=(st,))
    assert bucket(d).title == "assertion failed in brand_solaris_setbrand"


def test_missymbolized_console_frame_counts_as_unresolved() -> None:
    st = stack("fffffe007b721560 vmm:vmm_zsd_key+37dddca1 ()\nfffffe007b7215d0 vmm:vm_handle_mmio_emul+150 ()\n",
               10, console=True)
    assert is_unresolved(st.frames[0]) and not is_unresolved(st.frames[1])
    d = Dump(panic_message="bad pending MMIO state", panic_stack=st, stacks=(st,))
    assert bucket(d).title == "bad pending MMIO state in vmm:vm_handle_mmio_emul"


@pytest.mark.parametrize(
    ("msg", "frames_text", "console", "title"),
    [
        ('BAD TRAP: type=d (#gp General protection) rp=ffffff01e863a620 addr=0',
         "ffffff01e863a710 mutex_owner_running+0xd()\nffffff01e863a750 spa_async_request+0x44(ffffff4447a3e9e0, 2)\n",
         False, "BAD TRAP: general protection in mutex_owner_running"),
        ("recursive mutex_enter, lp=fffff042e0085140 owner=fffff04322cf53c0 thread=fffff04322cf53c0",
         "fffff001e8364260 unix:mutex_panic+58 ()\nfffff001e83642d0 unix:mutex_vector_enter+2b7 ()\n"
         "fffff001e8364340 genunix:anon_resvmem+68 ()\n", True, "recursive mutex_enter in anon_resvmem"),
        ("BAD TRAP: type=8 (#df Double fault) rp=fffffe59403a0f10 addr=0", "", False, "BAD TRAP: double fault"),
        (None, "vpanic()\nvcmn_err+0x42(3, fffffffff7ebf128, ffffff001f810700)\nzfs_panic_recover+0x51(fffffffff7ebf128)\n"
         "range_tree_add+0x14e(ffffff06ec016b00, 8ca7aa400, 800)\n", False, "zfs_panic_recover in range_tree_add"),
        ('BAD TRAP: type=e (#pf Page fault) rp=fffffe003d7615e0 addr=0 occurred in module "zfs" due to a NULL pointer dereference',
         "", False, "BAD TRAP: page fault (NULL pointer dereference) in zfs"),
        (None, "fffffe00f88a01d0 unix:die+93 ()\nfffffe00f88a02e0 unix:trap+5b6 ()\nfffffe00f88a02f0 unix:cmntrap+1ca ()\n"
         "fffffe00f88a0410 kvm:kvm_fx_finit+0 ()\n", True, "BAD TRAP in kvm:kvm_fx_finit"),
        ("feature_get_refcount(spa, feature, &refcount) != 48 (0x30 != 0x30), file: ../../common/fs/zfs/zfeature.c line 390",
         "ffffff0006761830 fffffffffba8fbdd ()\nffffff0006761890 zfs:feature_do_action+11a ()\n", True,
         "assertion failed in zfs:feature_do_action"),
    ],
)
def test_titles(msg: str | None, frames_text: str, console: bool, title: str) -> None:
    if frames_text:
        d = _dump(msg, frames_text, console=console)
    else:
        d = Dump(panic_message=msg)
    assert bucket(d).title == title


def test_hang_title_and_no_panic() -> None:
    # corpus 002: the only ::findstack thread, on CPU in an interrupt while busy-waiting
    body = """\
  fffffe007ad8b4e0 apix_hilevel_intr_prolog+0x82(fffffe5931e72000, f, 0, fffffe007ad8b550)
  fffffe007ad8b540 apix_do_interrupt+0x3d4(fffffe007ad8b550, 294a7ed)
  fffffe007ad8b550 _interrupt+0xc3()
  fffffe007ad8b670 tsc_read+3()
  fffffe007ad8b680 gethrtime+0x10()
  fffffe007ad8b6b0 drv_usecwait+0x9f(2000000)
  fffffe007ad8b740 cyclic_juggle_one_to+0xbc(fffffe5973d9ef50, fffffe5931a04480)
  fffffe007ad8b780 cyclic_move_here+0x88(fffffe5973d9ef50)
"""
    hung = Dump(threads=(thread(body, 8, 0xFFFFFE595A3DABE0),))
    assert bucket(hung).title == "hang (no panic) in cyclic_juggle_one_to"
    asleep = thread("                 cv_wait+0x74\n                 taskq_thread_wait+0xbc\n", 14, 0xFFFF800044011C20,
                    SectionKind.STACKS, state="SLEEP", sobj="CV", count=287)
    assert bucket(Dump(threads=(asleep,))).title.startswith("no panic")
    assert bucket(Dump()).title == "no crash found in transcript"
    assert bucket(hung).id != bucket(Dump()).id


def test_kmem_report_from_text() -> None:
    text = ("2016-01-09T00:13:54.171544+00:00 00-10-e0-0f-3f-a0 genunix: [ID 432124 kern.notice] "
            "buffer freed to wrong cache\n")
    b = bucket(Dump(), text)
    assert b.title == "kmem_error: buffer freed to wrong cache (panic message not captured)"


def test_userland_core_title() -> None:
    st = stack("fffffc7e9b945820 libc.so.1`upanic+0x22(fffffc7e9b945850, 190)\n"
               "fffffc7e9b945840 0xfffffc7feef4ae9d()\n"
               "fffffc7e9b945a30 libc.so.1`mutex_panic+0x26(dfbf58, fffffc7feefc2023)\n"
               "fffffc7e9b945a60 libc.so.1`mutex_enter+0x64(dfbf58)\n"
               "fffffc7e9b945ae0 pci_nvme_handle_io_cmd+0x53(dd3010, 10)\n", 20)
    core = status(11, target="core file", panic_message="*** libc mutex system failure: mutex_enter: bad mutex type")
    d = Dump(status=core, panic_message=core.panic_message, panic_stack=st, stacks=(st,))
    assert bucket(d).title == "userland core: libc mutex system failure: mutex_enter: bad mutex type in pci_nvme_handle_io_cmd"
    # issue 13: frames in shared objects ('libc.so.1`...') show a process core without ::status too, so
    # the same core buckets alike whether or not ::status was pasted; a kernel stack stays apart
    assert bucket(replace(d, status=None)).id == bucket(d).id
    kernel = stack("fffffe007e12f000 mutex_enter+0x64(dfbf58)\n"
                   "fffffe007e12f040 pci_nvme_handle_io_cmd+0x53(dd3010, 10)\n", 20)
    assert bucket(replace(d, status=None, panic_stack=kernel, stacks=(kernel,))).id != bucket(d).id


def test_is_meaningful_is_the_meaningful_frames_test() -> None:
    st = stack("vpanic()\n0xfffffffffb8c2361()\n~mutex_enter+0x10()\nfoo+0x5a(1)\n~bar+0x1()\n"
               "deadbeefcafe0000()\nbaz+0x1()\n", 1)
    con = stack("ffffff0006761890 genunix:vcmn_err+38 ()\nffffff0006761890 vmm:vmm_zsd_key+37dddca1 ()\n"
                "ffffff0006761890 zfs:zio_done+38 ()\n", 20, console=True)
    for fr in st.frames + con.frames:
        assert is_meaningful(fr) == (not is_unresolved(fr) and not is_plumbing(fr))
        # asked twice: the cached answer is the first one
        assert is_meaningful(fr) == (fr in meaningful_frames([fr, fr]))
    assert [f.function for f in meaningful_frames(st.frames + con.frames)] == ["~mutex_enter", "foo", "~bar", "baz", "zio_done"]


def test_normalise_is_the_same_cold_and_warm() -> None:
    msg = "BAD TRAP: type=e (#pf Page fault) rp=fffffb04249a8c10 addr=28 occurred in module \"zfs\""
    first = normalise_message(msg)
    assert normalise_message(msg) == first == normalise_message(msg + "x" * 0)
    long = "panic " + "a1 " * 1000
    assert normalise_message(long) == normalise_message(long + "tail cut off by MAX_SUBJECT_LENGTH")
