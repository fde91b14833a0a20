"""Tiny hand-written transcripts for the bulk, cache and CLI triage tests (kept small: tests stay fast).

Expected verdicts are derived by hand from issue 3: POSITIVE has the 12476 panic message and the
panic stack of the race (cyclic_reprogram_cyclic <- cyclic_reprogram <- vmm_glue_callout_reset_sbt
<- a bhyve timer path <- vmm_glue_callout_handler <- cyclic_softint <- cbe_low_level) but no
remover thread, so it is illumos-12476 at `likely`. OTHER is a BAD TRAP in zfs that no shipped
signature names, so it gets no signature and a bucket.
"""

from __future__ import annotations

__all__ = ["OTHER", "POSITIVE", "assertion", "other", "positive"]


def positive(cpu: str = "ffffff03eb144000", ndx: str = "b", host: str = "dent") -> str:
    """A ::status + $C capture of the 12476 panic (the seed vatpit dump, with chosen cpu/ndx/host)."""
    return f"""> ::status
debugging crash dump vmcore.22 (64-bit) from {host}
operating system: 5.11 joyent_20180216T202957Z (i86pc)
image uuid: (not set)
panic message: attempt to reprogram non-existent cyclic
dump content: kernel pages only
> $C
ffffff000f8328d0 vpanic()
ffffff000f832950 cyclic_reprogram_cyclic+0xb0({cpu}, {ndx}, 2cc15105498)
ffffff000f832990 cyclic_reprogram+0x1d8(ffffff0437fa49d0, 2cc15105498)
ffffff000f832a00 vmm_glue_callout_reset_sbt+0x8b(ffffff03e8e0d788, c038ccb3532, e0ef1f1, fffffffff7b1fbb0, ffffff03e8e0d7b0, 200)
ffffff000f832a40 pit_timer_start_cntr0+0xab(ffffff03e8e0d740)
ffffff000f832a80 vatpit_callout_handler+0x98(ffffff03e8e0d7b0)
ffffff000f832aa0 vmm_glue_callout_handler+0x2f(ffffff03e8e0d788)
ffffff000f832b90 cyclic_softint+0x209(ffffff03eb0c5580, 0)
ffffff000f832ba0 cbe_low_level+0x14()
ffffff000f832bf0 av_dispatch_softvect+0x88(2)
"""


def other(addr: str = "ffffff0d4b7e8a40", host: str = "cn7") -> str:
    """A ::status + $C capture of a NULL dereference in zfs (dbuf_rele_and_unlock), with a chosen address."""
    return f"""> ::status
debugging crash dump vmcore.3 (64-bit) from {host}
operating system: 5.11 joyent_20150123T195942Z (i86pc)
image uuid: (not set)
panic message: BAD TRAP: type=e (#pf Page fault) rp=ffffff00f8e5e6a0 addr=18 occurred in module "zfs" due to a NULL pointer dereference
dump content: kernel pages only
> $C
ffffff00f8e5e5a0 vpanic()
ffffff00f8e5e5c0 die+0xdf(e, ffffff00f8e5e6a0, 18, 0)
ffffff00f8e5e690 trap+0xdb9(ffffff00f8e5e6a0, 18, 0)
ffffff00f8e5e6a0 cmntrap+0xe6()
ffffff00f8e5e7b0 dbuf_rele_and_unlock+0x1a({addr}, 0)
ffffff00f8e5e7e0 dbuf_rele+0x37({addr}, 0)
ffffff00f8e5e810 dmu_buf_rele+0x2b({addr}, 0)
ffffff00f8e5e850 zfs_inactive+0x9c(ffffff0d4b7e8000, ffffff01d2d8a5c0, 0)
"""


POSITIVE = positive()
OTHER = other()


def assertion(host: str = "cn9", build: str = "joyent_20190110T001522Z") -> str:
    """A ::status + $C capture of a VERIFY in vn_rele from zfs_inactive, which no shipped signature names."""
    return f"""> ::status
debugging crash dump vmcore.5 (64-bit) from {host}
operating system: 5.11 {build} (i86pc)
panic message: assertion failed: vp->v_count > 0, file: ../../common/fs/vnode.c, line: 1234
dump content: kernel pages only
> $C
ffffff000f8328d0 vpanic()
ffffff000f832900 assfail+0x7e(fffffffff7a0a1e8, fffffffff7a0a200, 4d2)
ffffff000f832950 vn_rele+0x5c(ffffff0d4b7e8a40)
ffffff000f832990 zfs_inactive+0x12(ffffff0d4b7e8a40, 0)
ffffff000f8329d0 fop_inactive+0x76(ffffff0d4b7e8a40, 0, 0)
"""
