"""The two seed dumps of illumos 12476 (shared/reference/illumos-12476-bug-report.txt), built by hand.

Frame lines are copied verbatim from the bug report; line numbers are those of the fixture copies
fixtures/transcripts/seed-12476-vatpit-status-and-dollar-c.txt and seed-12476-vhpet-with-remover.txt,
counted by hand.
"""

from __future__ import annotations

from dataclasses import replace

from _dumps import stack, status, thread
from dumpscope.dump import Dump, SectionKind

VATPIT_C = """\
ffffff000f8328d0 vpanic()
ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)
ffffff000f832990 cyclic_reprogram+0x1d8(ffffff0437fa49d0, 2cc15105498)
ffffff000f832a00 vmm_glue_callout_reset_sbt+0x8b(ffffff03e8e0d788, c038ccb3532, e0ef1f1, fffffffff7b1fbb0, ffffff03e8e0d7b0, 200)
ffffff000f832a40 pit_timer_start_cntr0+0xab(ffffff03e8e0d740)
ffffff000f832a80 vatpit_callout_handler+0x98(ffffff03e8e0d7b0)
ffffff000f832aa0 vmm_glue_callout_handler+0x2f(ffffff03e8e0d788)
ffffff000f832b90 cyclic_softint+0x209(ffffff03eb0c5580, 0)
ffffff000f832ba0 cbe_low_level+0x14()
ffffff000f832bf0 av_dispatch_softvect+0x88(2)
ffffff000f832c20 apix_dispatch_softint+0x35(0, 0)
ffffff000f9d4a10 switch_sp_and_call+0x13()
ffffff000f9d4a60 apix_do_softint+0x44(ffffff000f9d4ae0)
ffffff000f9d4ad0 apix_do_interrupt+0x480(ffffff000f9d4ae0, ffffff03eb0daea0)
ffffff000f9d4ae0 _interrupt+0x1e9()
ffffff000f9d4bd0 mach_cpu_idle+6()
ffffff000f9d4c00 cpu_idle+0x11a()
ffffff000f9d4c20 idle+0xa7()
ffffff000f9d4c30 thread_start+8()
"""

VHPET_STACK = """\
  fffffb0410bc9980 cyclic_reprogram_cyclic+0x97(fffffdc5496f0d40, c3, 370a98496f2f04)
  fffffb0410bc99b0 cyclic_reprogram+0x108(fffffdce41a295c0, 370a98496f2f04)
  fffffb0410bc9a00 vmm_glue_callout_reset_sbt+0x8b(fffffdc859b8ac90, ec66a4e704be61, 3ff6900, fffffffff8494aa0, fffffdc859b8acb8, 200)
  fffffb0410bc9a60 vhpet_start_timer+0x99(fffffdc859b8ac40, 0, 3e391951, ec66a4e3055561)
  fffffb0410bc9ab0 vhpet_handler+0x76(fffffdc859b8acb8)
  fffffb0410bc9ad0 vmm_glue_callout_handler+0x2f(fffffdc859b8ac90)
  fffffb0410bc9b70 cyclic_softint+0xfd(fffffdc544958000, 0)
  fffffb0410bc9b80 cbe_low_level+0x14()
  fffffb0410bc9bd0 av_dispatch_softvect+0x78(2)
  fffffb0410bc9c00 apix_dispatch_softint+0x35(0, 0)
"""

# ::findstack -v of the remover; the header is line 26, the bracketed pc line 27.
REMOVER = """\
[ fffffb04249a9560 _resume_from_idle+0x12b() ]
  fffffb04249a9590 swtch+0x141()
  fffffb04249a95d0 sema_p+0x1d7(fffffdc5496f0de0)
  fffffb04249a9650 cyclic_remove_here+0xac(fffffdc5496f0d40, c3, 0, 0)
  fffffb04249a9690 cyclic_remove+0x38(fffffdce41a295c0)
  fffffb04249a96c0 vmm_glue_callout_drain+0x27(fffffdc859b8ac90)
  fffffb04249a96f0 vhpet_cleanup+0x40(fffffdc859b8ac40)
  fffffb04249a9730 vm_cleanup+0x66(fffffdca49aad000, 0)
  fffffb04249a9760 vm_reinit+0x38(fffffdca49aad000)
"""
REMOVER_ADDR = 0xFFFFFE55D37B8080


def vatpit() -> Dump:
    """The first seed: '::status' + '$C' only (fixture lines 3-28)."""
    st = stack(VATPIT_C, 10)
    return Dump(
        status=status(3, host="dent", version="joyent_20180216T202957Z",
                      panic_message="attempt to reprogram non-existent cyclic", message_line=7),
        panic_message="attempt to reprogram non-existent cyclic",
        panic_message_line=7,
        panic_stack=st,
        stacks=(st,),
        line_count=28,
    )


def vhpet(remover: str = REMOVER) -> Dump:
    """The second seed: the indented vhpet stack (no ::status, no vpanic) and the remover thread."""
    st = stack(VHPET_STACK, 5, command=None)
    th = thread(remover, 26, REMOVER_ADDR, SectionKind.FINDSTACK, "bhyve/1 [vcpu 0]")
    return Dump(panic_stack=st, stacks=(st,), threads=(th,), line_count=45)


def with_platform(dump: Dump, version: str | None) -> Dump:
    """The same dump as if ::status had shown another platform build."""
    assert dump.status is not None
    return replace(dump, status=replace(dump.status, version=version))
