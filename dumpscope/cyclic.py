"""Reference model of the illumos cyclic subsystem on one CPU, before and after the 12476 fix."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum

from dumpscope.errors import ModelInvariantError

__all__ = [
    "CYF_FREE",
    "CY_INFINITY",
    "PANIC_REMOVE",
    "PANIC_REPROGRAM",
    "SEMA_OFFSET",
    "Config",
    "CycCpu",
    "CycState",
    "Cyclic",
    "Event",
    "Handler",
    "Hpc",
    "Outcome",
    "Remover",
    "Rpc",
    "Sema",
    "State",
    "check_invariants",
    "describe",
    "enabled",
    "initial",
    "shape",
    "step",
    "terminal",
]

# cyclic.h: CY_INFINITY is INT64_MAX; a vmm callout cyclic has this interval (one-shot).
CY_INFINITY = (1 << 63) - 1
# cyclic_impl.h: CYF_FREE marks a cyclic_t slot that is on the free list.
CYF_FREE = 0x1
# cyclic_impl.h (amd64): cyp_modify_wait sits at cyc_cpu_t + 0xa0; sema_p's argument in the dump.
SEMA_OFFSET = 0xA0
# cyclic.c: the two panic strings the model can reach, verbatim.
PANIC_REPROGRAM = "attempt to reprogram non-existent cyclic"
PANIC_REMOVE = "attempt to remove non-existent cyclic"

# A per-CPU omni cyclic (e.g. deadman) lives in every online CPU's heap. Its own firings are
# high-level and touch neither the callout cyclic nor the remover, so it is modelled as never due
# inside the window; it is kept so removal and reprogram move real heap slots (cyclic.c swaps the
# removed slot with the last one).
_NOT_DUE = CY_INFINITY - 1


class CycState(IntEnum):
    """cyc_state_t, in the header's order (the numbers are what a dump prints)."""

    ONLINE = 0
    OFFLINE = 1
    EXPANDING = 2
    REMOVING = 3
    SUSPENDED = 4


class Hpc(StrEnum):
    """Program counter of the handler activity H (cyclic_softint at the low soft level)."""

    IDLE = "idle"  # no softint work for the cyclic
    PRE_RP = "pre_rp"  # handler running, has not reprogrammed yet
    POST_RP = "post_rp"  # handler reprogrammed (or does not re-arm), still running
    CHECK = "check"  # handler returned; cyclic_softint about to read cy_pend
    RPEND_LOOP = "rpend_loop"  # inside cyclic_remove_pend: extra calls, then sema_v


class Rpc(StrEnum):
    """Program counter of the remover R (cyclic_remove → cyclic_remove_here)."""

    IDLE = "idle"  # has not called cyclic_remove_here
    REMOVING = "removing"  # cyp_state set to CYS_REMOVING, cross call not yet run
    XCALLED = "xcalled"  # cyclic_remove_xcall done, not yet at the sema_p
    WAITING = "waiting"  # blocked in sema_p(&cyp_modify_wait)
    WOKEN = "woken"  # past the wait (woken, or did not have to wait)
    DONE = "done"  # cyclic_remove returned; the cyc_id_t is freed


class Outcome(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    OK = "ok"
    PANIC = "panic"
    HANG = "hang"


class Event(StrEnum):
    """Atomic events of cyclic-model.md §6; V is C's tail (cyclic_remove_pend's sema_v)."""

    F = "F"  # cyclic_fire expires the cyclic (high level)
    S = "S"  # cyclic_softint dequeues it and calls the handler
    RP = "RP"  # the handler's cyclic_reprogram → cyclic_reprogram_cyclic (high level)
    HR = "HR"  # the handler returns
    C = "C"  # cyclic_softint reads / decrements cy_pend
    V = "V"  # cyclic_remove_pend: sema_v(&cyp_modify_wait)
    R1 = "R1"  # cyclic_remove_here: cyp_state = CYS_REMOVING
    R2 = "R2"  # cyclic_remove_xcall on the cyclic's CPU (high level)
    R3 = "R3"  # cyclic_remove_here: sema_p if cyp_rpend != 0
    R4 = "R4"  # cyclic_remove_here/cyclic_remove: reset state, free the id


_R_EVENTS = frozenset({Event.R1, Event.R2, Event.R3, Event.R4})


@dataclass(frozen=True, slots=True)
class Sema:
    """ksema_t cyp_modify_wait: a count and at most one waiter (cpu_lock serialises removers)."""

    count: int = 0  # sema_v calls not yet consumed by a sema_p
    waiter: bool = False  # a thread is blocked in sema_p


@dataclass(frozen=True, slots=True)
class Cyclic:
    """One cyclic_t slot of cyp_cyclics."""

    ndx: int  # cyc_index_t: the slot number
    expire: int  # cy_expire: absolute hrtime of the next expiry (CY_INFINITY: disarmed)
    interval: int  # cy_interval (CY_INFINITY for a vmm callout)
    pend: int = 0  # cy_pend: expirations not yet handled
    flags: int = 0  # cy_flags (CYF_FREE once removed)
    queued: bool = False  # present in the low-level pcbuffer (softint posted)


@dataclass(frozen=True, slots=True)
class CycCpu:
    """cyc_cpu_t of the cyclic's CPU."""

    state: CycState  # cyp_state
    rpend: int  # cyp_rpend: cy_pend stashed by a removal that must wait
    heap: tuple[int, ...]  # cyp_heap: indices; [0, nelems) is the heap, the rest the free list
    nelems: int  # cyp_nelems
    sema: Sema  # cyp_modify_wait
    cyclics: tuple[Cyclic, ...]  # cyp_cyclics (only the populated slots)

    def cyclic(self, ndx: int) -> Cyclic:
        """The cyclic_t at index ndx."""
        for c in self.cyclics:
            if c.ndx == ndx:
                return c
        raise ModelInvariantError("cyc_cpu", "cyp_cyclics", f"no cyclic at index {ndx:#x}")

    def in_heap(self, ndx: int) -> bool:
        """True when ndx is one of cyp_heap[0, nelems)."""
        return ndx in self.heap[: self.nelems]


@dataclass(frozen=True, slots=True)
class Handler:
    """The handler activity H: cyclic_softint working on the callout cyclic."""

    pc: Hpc = Hpc.IDLE  # where the handler activity is
    extra: int = 0  # cyclic_remove_pend: extra handler calls still to make (rpend - 1 at start)
    in_pend: bool = False  # the running call was made by cyclic_remove_pend


@dataclass(frozen=True, slots=True)
class Remover:
    """The remover thread R, holding cpu_lock from R1 to R4."""

    pc: Rpc = Rpc.IDLE  # where the remover is


@dataclass(frozen=True, slots=True)
class State:
    """A whole model state; frozen and hashable so exploration can memoise it."""

    cpu: CycCpu
    handler: Handler
    remover: Remover
    fires_left: int  # expirations of the callout cyclic the clock may still deliver
    outcome: Outcome = Outcome.RUNNING
    panic: str | None = None  # the panic string, when outcome is PANIC
    panic_site: str | None = None  # function that panicked ('cyclic_reprogram_cyclic', ...)
    panic_in_pend: bool = False  # the panicking handler call came from cyclic_remove_pend


@dataclass(frozen=True, slots=True)
class Config:
    """What does not change during a run: behaviour, topology and the names used in step text."""

    fixed: bool  # True: post-12476 cyclic_reprogram_cyclic(..., is_local)
    fires: int = 1  # how many times the callout cyclic may expire (2: it re-fires after the re-arm)
    ndx: int = 1  # the callout cyclic's index
    remove_ndx: int | None = -1  # remover's target on this CPU; -1: same as ndx; None: another CPU
    local: bool = True  # the handler runs on the cyclic's CPU (cyclic_reprogram's local path)
    rearms: bool = True  # the handler reprograms its cyclic (vhpet always; vatpit in RATEGEN only)
    expire: int = 1000  # cy_expire of the armed callout at the start
    rearm_at: int = 2000  # expiration the handler passes to cyclic_reprogram
    cpu: int | None = None  # cyc_cpu_t address, for step text
    cyclic_id: int | None = None  # cyclic_id_t (cyc_id_t *), for step text
    handler_name: str = "handler"  # e.g. 'vhpet_handler'
    remover_name: str = "remover"  # e.g. 'thread fffffe55d37b8080 (bhyve/1 [vcpu 0])'

    @property
    def target(self) -> int | None:
        """Index the remover removes on this CPU, or None when it works on another CPU."""
        if self.remove_ndx is None:
            return None
        return self.ndx if self.remove_ndx == -1 else self.remove_ndx

    @property
    def other_ndx(self) -> int:
        """Index of the second cyclic in the heap (the remover's target when it is not ndx)."""
        t = self.target
        if t is not None and t != self.ndx:
            return t
        return 0 if self.ndx != 0 else 1


# ---------------------------------------------------------------- heap (cyclic.c upheap/downheap)


def _key(cpu: CycCpu, ndx: int) -> int:
    return cpu.cyclic(ndx).expire


def _upheap(cpu: CycCpu, heap: list[int], i: int) -> None:
    # cyclic.c cyclic_upheap: swap with the parent while strictly earlier.
    while i > 0:
        parent = (i - 1) // 2
        if _key(cpu, heap[parent]) <= _key(cpu, heap[i]):
            return
        heap[parent], heap[i] = heap[i], heap[parent]
        i = parent


def _downheap(cpu: CycCpu, heap: list[int], nelems: int, i: int) -> None:
    # cyclic.c cyclic_downheap: swap with the earlier child while that child is strictly earlier.
    while True:
        left, right, best = 2 * i + 1, 2 * i + 2, i
        if left < nelems and _key(cpu, heap[left]) < _key(cpu, heap[best]):
            best = left
        if right < nelems and _key(cpu, heap[right]) < _key(cpu, heap[best]):
            best = right
        if best == i:
            return
        heap[best], heap[i] = heap[i], heap[best]
        i = best


def _with_cyclic(cpu: CycCpu, c: Cyclic) -> CycCpu:
    return replace(cpu, cyclics=tuple(c if x.ndx == c.ndx else x for x in cpu.cyclics))


def _set_expire(cpu: CycCpu, ndx: int, expire: int) -> CycCpu:
    # cyclic.c cyclic_reprogram_cyclic / cyclic_fire: set cy_expire, then restore heap order.
    cpu = _with_cyclic(cpu, replace(cpu.cyclic(ndx), expire=expire))
    heap = list(cpu.heap)
    i = heap.index(ndx)
    _upheap(cpu, heap, i)
    _downheap(cpu, heap, cpu.nelems, heap.index(ndx))
    return replace(cpu, heap=tuple(heap))


def _heap_delete(cpu: CycCpu, ndx: int) -> CycCpu:
    # cyclic.c cyclic_remove_xcall: swap the slot with the last one, shrink, fix the moved slot;
    # either way ndx lands at cyp_heap[new nelems], the head of the free list.
    heap = list(cpu.heap)
    i = heap.index(ndx)
    last = cpu.nelems - 1
    heap[i], heap[last] = heap[last], heap[i]
    if i != last:
        moved = heap[i]
        _upheap(cpu, heap, i)
        _downheap(cpu, heap, last, heap.index(moved))
    return replace(cpu, heap=tuple(heap), nelems=last)


# ---------------------------------------------------------------- initial state, guards, steps


def initial(config: Config) -> State:
    """The armed callout cyclic, not yet fired, with the remover not yet started."""
    k = Cyclic(ndx=config.ndx, expire=config.expire, interval=CY_INFINITY)
    other = Cyclic(ndx=config.other_ndx, expire=_NOT_DUE, interval=CY_INFINITY)
    cyclics = tuple(sorted((k, other), key=lambda c: c.ndx))
    # The armed callout is the earliest expiry, so it is the heap root.
    cpu = CycCpu(
        state=CycState.ONLINE,
        rpend=0,
        heap=(k.ndx, other.ndx),
        nelems=2,
        sema=Sema(),
        cyclics=cyclics,
    )
    state = State(cpu=cpu, handler=Handler(), remover=Remover(), fires_left=config.fires)
    check_invariants(state, config)
    return state


def enabled(state: State, config: Config) -> tuple[Event, ...]:
    """Events that can happen next, in a fixed order (clock, handler, remover)."""
    if state.outcome is not Outcome.RUNNING:
        return ()
    cpu, h, r = state.cpu, state.handler, state.remover
    k = cpu.cyclic(config.ndx)
    out: list[Event] = []
    # cyclic.c cyclic_fire: only the heap root can expire, and only while armed.
    if state.fires_left > 0 and cpu.nelems > 0 and cpu.heap[0] == k.ndx and k.expire != CY_INFINITY:
        out.append(Event.F)
    if h.pc is Hpc.IDLE and k.queued:
        out.append(Event.S)
    if h.pc is Hpc.PRE_RP and config.rearms:
        out.append(Event.RP)
    if h.pc is Hpc.RPEND_LOOP and h.extra > 0:
        out.append(Event.RP if config.rearms else Event.HR)
    if h.pc is Hpc.POST_RP or (h.pc is Hpc.PRE_RP and not config.rearms):
        out.append(Event.HR)
    if h.pc is Hpc.CHECK:
        out.append(Event.C)
    if h.pc is Hpc.RPEND_LOOP and h.extra == 0:
        out.append(Event.V)
    if config.target is not None:
        if r.pc is Rpc.IDLE:
            out.append(Event.R1)
        elif r.pc is Rpc.REMOVING:
            out.append(Event.R2)
        elif r.pc is Rpc.XCALLED:
            out.append(Event.R3)
        elif r.pc is Rpc.WOKEN:
            out.append(Event.R4)
    return tuple(out)


def terminal(state: State, config: Config) -> bool:
    """True when the run has ended (panic, hang, or nothing left to do)."""
    return not enabled(state, config)


def _panic(state: State, message: str, site: str, in_pend: bool = False) -> State:
    return replace(
        state, outcome=Outcome.PANIC, panic=message, panic_site=site, panic_in_pend=in_pend
    )


def _fire(state: State, config: Config) -> State:
    cpu = state.cpu
    k = cpu.cyclic(config.ndx)
    # cyclic.c cyclic_expire: a LOW cyclic's expiry bumps cy_pend; only the 0→1 transition
    # enqueues the index and posts the soft interrupt.
    k = replace(k, pend=k.pend + 1, queued=k.queued or k.pend == 0)
    cpu = _with_cyclic(cpu, k)
    # cyclic.c cyclic_fire: interval CY_INFINITY makes the new expiry CY_INFINITY (downheap).
    cpu = _set_expire(
        cpu, k.ndx, CY_INFINITY if k.interval == CY_INFINITY else k.expire + k.interval
    )
    return replace(state, cpu=cpu, fires_left=state.fires_left - 1)


def _softint_start(state: State, config: Config) -> State:
    # cyclic.c cyclic_softint: consumes the index and calls cy_handler without looking at cy_pend
    # or cy_flags, so a removed (CYF_FREE) cyclic's handler still runs.
    k = replace(state.cpu.cyclic(config.ndx), queued=False)
    return replace(state, cpu=_with_cyclic(state.cpu, k), handler=Handler(pc=Hpc.PRE_RP))


def _reprogram(state: State, config: Config) -> State:
    h = state.handler
    in_pend = h.pc is Hpc.RPEND_LOOP
    after = Handler(pc=Hpc.POST_RP, extra=h.extra - 1 if in_pend else 0, in_pend=in_pend)
    cpu = state.cpu
    if cpu.in_heap(config.ndx):
        # cyclic.c cyclic_reprogram_cyclic: found (bottom-up search); set cy_expire and reheap.
        return replace(state, cpu=_set_expire(cpu, config.ndx, config.rearm_at), handler=after)
    # illumos 12476 ("cyclic reprogramming can race with removal"): a local miss while a removal
    # waits for this handler (CYS_REMOVING, cyp_rpend > 0) returns B_FALSE; vmm glue ignores it.
    if config.fixed and config.local and cpu.state is CycState.REMOVING and cpu.rpend > 0:
        return replace(state, handler=after)
    # cyclic.c cyclic_reprogram_cyclic: every other miss panics (also after the fix).
    return _panic(state, PANIC_REPROGRAM, "cyclic_reprogram_cyclic", in_pend)


def _handler_return(state: State, config: Config) -> State:
    h = state.handler
    if h.pc is Hpc.RPEND_LOOP:
        # A non-re-arming handler's extra call in cyclic_remove_pend: call and return in one step.
        return replace(state, handler=replace(h, extra=h.extra - 1))
    if h.in_pend:
        return replace(state, handler=replace(h, pc=Hpc.RPEND_LOOP, in_pend=False))
    return replace(state, handler=Handler(pc=Hpc.CHECK))


def _check_pend(state: State, config: Config) -> State:
    cpu = state.cpu
    k = cpu.cyclic(config.ndx)
    if k.pend == 0:
        if cpu.state is not CycState.REMOVING:
            # cyclic.c cyclic_softint: pend 0 outside a removal is an expansion re-read, which
            # this model does not have; reaching it means the model is wrong.
            raise ModelInvariantError(
                f"cyclic {k.ndx:#x}", "cy_pend", f"0 in cyclic_softint while {cpu.state.name}"
            )
        # cyclic.c cyclic_softint → cyclic_remove_pend: rpend - 1 extra handler calls, then sema_v.
        return replace(state, handler=Handler(pc=Hpc.RPEND_LOOP, extra=cpu.rpend - 1))
    # cyclic.c cyclic_softint: cas(pend, pend - 1); call the handler again while non-zero.
    k = replace(k, pend=k.pend - 1)
    pc = Hpc.PRE_RP if k.pend > 0 else Hpc.IDLE
    return replace(state, cpu=_with_cyclic(cpu, k), handler=Handler(pc=pc))


def _sema_v(state: State, config: Config) -> State:
    # cyclic.c cyclic_remove_pend: sema_v(&cpu->cyp_modify_wait) wakes the remover.
    cpu, r = state.cpu, state.remover
    if cpu.sema.waiter:
        cpu = replace(cpu, sema=Sema(count=cpu.sema.count, waiter=False))
        r = Remover(pc=Rpc.WOKEN)
    else:
        cpu = replace(cpu, sema=Sema(count=cpu.sema.count + 1))
    return replace(state, cpu=cpu, remover=r, handler=Handler())


def _remove_here(state: State, config: Config) -> State:
    cpu = state.cpu
    # cyclic.c cyclic_remove_here: DEBUG asserts cyp_rpend == 0 and CYS_ONLINE, then sets REMOVING.
    if cpu.state is not CycState.ONLINE or cpu.rpend != 0:
        raise ModelInvariantError(
            "cyc_cpu", "cyp_state", "cyclic_remove_here needs ONLINE, rpend 0"
        )
    return replace(state, cpu=replace(cpu, state=CycState.REMOVING), remover=Remover(Rpc.REMOVING))


def _remove_xcall(state: State, config: Config) -> State:
    target = config.target
    if target is None:  # enabled() offers R2 only when the remover works on this CPU
        raise ModelInvariantError("remover", "target", "cross call without a cyclic on this CPU")
    cpu = state.cpu
    c = cpu.cyclic(target)
    # cyclic.c cyclic_remove_xcall (CY_WAIT): stash cy_pend in cyp_rpend and zero it, so
    # cyclic_softint's compare-and-swap fails and it ends in cyclic_remove_pend.
    if c.pend > 0:
        cpu = replace(cpu, rpend=c.pend)
    # cyclic.c cyclic_remove_xcall: cy_flags = CYF_FREE is an assignment (bound bits cleared).
    cpu = _with_cyclic(cpu, replace(c, pend=0, flags=CYF_FREE))
    state = replace(state, cpu=cpu, remover=Remover(Rpc.XCALLED))
    if not cpu.in_heap(target):
        return _panic(state, PANIC_REMOVE, "cyclic_remove_xcall")
    return replace(state, cpu=_heap_delete(cpu, target))


def _remove_wait(state: State, config: Config) -> State:
    cpu = state.cpu
    # cyclic.c cyclic_remove_here: block in sema_p only if the cross call stashed a pend.
    if cpu.rpend == 0:
        return replace(state, remover=Remover(Rpc.WOKEN))
    if cpu.sema.count > 0:  # the handler's sema_v came first
        cpu = replace(cpu, sema=Sema(count=cpu.sema.count - 1))
        return replace(state, cpu=cpu, remover=Remover(Rpc.WOKEN))
    cpu = replace(cpu, sema=Sema(count=0, waiter=True))
    return replace(state, cpu=cpu, remover=Remover(Rpc.WAITING))


def _remove_done(state: State, config: Config) -> State:
    # cyclic.c cyclic_remove_here: cyp_rpend = 0, CYS_ONLINE; then cyclic_remove frees the id.
    cpu = replace(state.cpu, rpend=0, state=CycState.ONLINE)
    return replace(state, cpu=cpu, remover=Remover(Rpc.DONE))


_ACTIONS = {
    Event.F: _fire,
    Event.S: _softint_start,
    Event.RP: _reprogram,
    Event.HR: _handler_return,
    Event.C: _check_pend,
    Event.V: _sema_v,
    Event.R1: _remove_here,
    Event.R2: _remove_xcall,
    Event.R3: _remove_wait,
    Event.R4: _remove_done,
}


def step(state: State, config: Config, event: Event) -> State:
    """Apply one atomic event, settle the outcome, and check every invariant.

    Raises ModelInvariantError when the event is not enabled or the new state breaks an invariant.
    """
    if event not in enabled(state, config):
        actor = "remover" if event in _R_EVENTS else "handler"
        raise ModelInvariantError(actor, "pc", f"event {event} is not enabled")
    new = _ACTIONS[event](state, config)
    if new.outcome is Outcome.RUNNING:
        new = _settle(new, config)
    check_invariants(new, config)
    return new


def _handler_work(state: State, config: Config) -> bool:
    return state.handler.pc is not Hpc.IDLE or state.cpu.cyclic(config.ndx).queued


def _settle(state: State, config: Config) -> State:
    # cyclic-model.md §6 invariant 4: a remover in sema_p with no handler work left never wakes.
    if state.remover.pc is Rpc.WAITING and not (
        config.target == config.ndx and _handler_work(state, config)
    ):
        return replace(state, outcome=Outcome.HANG)
    if not enabled(state, config):
        return replace(state, outcome=Outcome.OK)
    return state


# ---------------------------------------------------------------- invariants (§6)


def check_invariants(state: State, config: Config) -> None:
    """Check cyclic-model.md §6 invariants; raise ModelInvariantError naming object and field."""
    cpu, h, r = state.cpu, state.handler, state.remover
    cname = "cyc_cpu" if config.cpu is None else f"cyc_cpu {config.cpu:x}"
    if not 0 <= cpu.nelems <= len(cpu.heap):
        raise ModelInvariantError(cname, "cyp_nelems", f"{cpu.nelems} outside the heap array")
    if sorted(cpu.heap) != sorted(c.ndx for c in cpu.cyclics):
        raise ModelInvariantError(cname, "cyp_heap", "is not a permutation of the cyclic indices")
    for i in range(1, cpu.nelems):
        if _key(cpu, cpu.heap[(i - 1) // 2]) > _key(cpu, cpu.heap[i]):
            raise ModelInvariantError(cname, "cyp_heap", f"slot {i} is earlier than its parent")
    for c in cpu.cyclics:
        # 1. in the heap ⇔ not CYF_FREE.
        if cpu.in_heap(c.ndx) == bool(c.flags & CYF_FREE):
            raise ModelInvariantError(
                f"cyclic {c.ndx:#x}", "cy_flags", f"{c.flags:#x} disagrees with heap membership"
            )
        if c.pend < 0:
            raise ModelInvariantError(f"cyclic {c.ndx:#x}", "cy_pend", f"negative ({c.pend})")
    k = cpu.cyclic(config.ndx)
    # 2. a pending expiry is queued or being handled.
    if k.pend > 0 and not _handler_work(state, config):
        raise ModelInvariantError(
            f"cyclic {k.ndx:#x}", "cy_pend", f"{k.pend} but not queued and no handler running"
        )
    # 3. a stashed pend belongs to a removal in progress.
    if cpu.rpend > 0:
        if cpu.state is not CycState.REMOVING:
            raise ModelInvariantError(cname, "cyp_state", f"{cpu.state.name} with cyp_rpend > 0")
        if r.pc not in (Rpc.XCALLED, Rpc.WAITING, Rpc.WOKEN):
            raise ModelInvariantError("remover", "pc", f"{r.pc} with cyp_rpend={cpu.rpend}")
    # 4. a waiting remover has a stashed pend and is the semaphore's waiter (no work left is HANG).
    if r.pc is Rpc.WAITING and (cpu.rpend == 0 or not cpu.sema.waiter):
        raise ModelInvariantError(cname, "cyp_modify_wait", "remover waits without rpend or waiter")
    if cpu.sema.waiter and r.pc is not Rpc.WAITING:
        raise ModelInvariantError(cname, "cyp_modify_wait", f"waiter set, remover {r.pc}")
    if cpu.sema.count < 0:
        raise ModelInvariantError(cname, "cyp_modify_wait", "negative count")
    # 5. cyclic_remove's contract: once it returns, the handler never runs again.
    if r.pc is Rpc.DONE and config.target == config.ndx and _handler_work(state, config):
        raise ModelInvariantError("handler", "pc", f"{h.pc} after cyclic_remove returned")
    # 6. cpu_lock keeps the removed index at the head of the free list until R4.
    target = config.target
    if (
        r.pc in (Rpc.XCALLED, Rpc.WAITING, Rpc.WOKEN)
        and target is not None
        and state.outcome is not Outcome.PANIC
        and (cpu.nelems >= len(cpu.heap) or cpu.heap[cpu.nelems] != target)
    ):
        raise ModelInvariantError(cname, "cyp_heap", f"cyp_heap[nelems] is not {target:#x}")
    # 7. (pre-fix, every RP needs the cyclic in the heap) is the kernel's own check: RP panics.


# ---------------------------------------------------------------- shape (memoisation key)


def _time_class(value: int, below: int) -> int:
    # Expiry times meet only _NOT_DUE (the omni cyclic's) and CY_INFINITY: every time below _NOT_DUE
    # behaves alike, and so does every time above CY_INFINITY.
    if value < _NOT_DUE:
        return below
    return min(value, CY_INFINITY + 1)


def shape(config: Config) -> Config:
    """The canonical config that runs through the same states as `config`, up to labels.

    The model compares cyclic indices only for identity, and the callout's expiry times only with the
    omni cyclic's (_NOT_DUE) and with CY_INFINITY; cyp_cyclics' order decides only which broken
    invariant is named first. So a config with the callout at index 1, the remover's other target (if
    any) at 2, each time replaced by a representative of its class, and no names reaches the same
    events, outcomes and flags; a run can be memoised on its shape. Error texts and step text carry
    indices and names, so they must come from the real config (describe takes the shape as `model`).
    """
    target = config.target
    if target is None:
        remove_ndx: int | None = None
    elif target == config.ndx:
        remove_ndx = -1
    else:
        remove_ndx = 2
    return Config(
        fixed=config.fixed,
        fires=config.fires,
        ndx=1,
        remove_ndx=remove_ndx,
        local=config.local,
        rearms=config.rearms,
        expire=_time_class(config.expire, 1000),
        rearm_at=_time_class(config.rearm_at, 2000),
    )


# ---------------------------------------------------------------- step text


def describe(before: State, config: Config, event: Event, after: State, model: Config | None = None) -> str:
    """One line for a step, filled with the configuration's values (cpu address, index, names).

    `model` is the config the states were computed with when that is `shape(config)` (a memoised
    run); the text still comes from `config`.
    """
    cpu = "X" if config.cpu is None else f"{config.cpu:x}"
    k = f"cyclic {config.ndx:#x}"
    hn = config.handler_name
    b, a = before.cpu, after.cpu
    own = (model or config).ndx  # the callout's index in the states' own labels
    if event is Event.F:
        pend = a.cyclic(own).pend
        q = ", queued for cyclic_softint" if not b.cyclic(own).queued and pend == 1 else ""
        return f"F cyclic_fire on cpu {cpu}: {k} expired, cy_pend={pend}{q}"
    if event is Event.S:
        return f"S cyclic_softint on cpu {cpu}: dequeues {k}, calls {hn}"
    if event is Event.RP:
        extra = (
            " (extra call from cyclic_remove_pend)" if before.handler.pc is Hpc.RPEND_LOOP else ""
        )
        via = "" if config.local else " → cyclic_reprogram_xcall (remote)"
        head = (
            f"RP {hn}{extra}{via} → cyclic_reprogram_cyclic({cpu}, {config.ndx:x}, "
            f"{config.rearm_at:x})"
        )
        if after.outcome is Outcome.PANIC:
            return f'{head}: {k} not in heap: panic "{after.panic}"'
        if b.in_heap(own):
            return f"{head}: {k} re-armed"
        return f"{head}: {k} not in heap, cyp_rpend={b.rpend}: returns B_FALSE, glue ignores it"
    if event is Event.HR:
        if before.handler.pc is Hpc.RPEND_LOOP:
            return f"HR {hn} (extra call from cyclic_remove_pend) runs and returns"
        return f"HR {hn} returns"
    if event is Event.C:
        if after.handler.pc is Hpc.RPEND_LOOP:
            n = after.handler.extra
            return (
                f"C cyclic_softint on cpu {cpu}: cy_pend=0 while CYS_REMOVING → "
                f"cyclic_remove_pend, {n} extra call{'s' if n != 1 else ''}"
            )
        old, new = b.cyclic(own).pend, a.cyclic(own).pend
        again = f", calls {hn} again" if new > 0 else ""
        return f"C cyclic_softint on cpu {cpu}: cy_pend {old}→{new}{again}"
    sema = "cpu+0xa0" if config.cpu is None else f"{config.cpu + SEMA_OFFSET:x}"
    if event is Event.V:
        if b.sema.waiter:
            return f"V cyclic_remove_pend on cpu {cpu}: sema_v({sema}) wakes {config.remover_name}"
        return f"V cyclic_remove_pend on cpu {cpu}: sema_v({sema}), no waiter yet"
    t = config.target if config.target is not None else config.ndx
    if event is Event.R1:
        return (
            f"R1 {config.remover_name}: cyclic_remove_here({cpu}, {t:x}, 0, 0): "
            "cyp_state=CYS_REMOVING"
        )
    if event is Event.R2:
        if after.outcome is Outcome.PANIC:
            return f'R2 cyclic_remove_xcall on cpu {cpu}: panic "{after.panic}"'
        return f"R2 cyclic_remove_xcall on cpu {cpu}: cyclic {t:#x} freed, cyp_rpend={a.rpend}"
    if event is Event.R3:
        if after.remover.pc is Rpc.WAITING:
            return f"R3 {config.remover_name}: blocks in sema_p({sema}) in cyclic_remove_here"
        if b.rpend > 0:
            return f"R3 {config.remover_name}: sema_p({sema}) returns at once (already posted)"
        return f"R3 {config.remover_name}: cyp_rpend=0, no wait"
    ident = "" if config.cyclic_id is None else f" {config.cyclic_id:x}"
    return (
        f"R4 {config.remover_name}: cyp_rpend=0, cyp_state=CYS_ONLINE; "
        f"cyclic_remove frees cyclic id{ident}"
    )
