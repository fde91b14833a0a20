"""Unit tests of the cyclic model's operations against cyclic-model.md §1-§3 and §6."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dumpscope.cyclic import (
    CY_INFINITY,
    CYF_FREE,
    PANIC_REMOVE,
    PANIC_REPROGRAM,
    Config,
    CycState,
    Event,
    Handler,
    Hpc,
    Outcome,
    Remover,
    Rpc,
    Sema,
    State,
    check_invariants,
    describe,
    enabled,
    initial,
    shape,
    step,
)
from dumpscope.errors import ModelInvariantError

NDX = 0xC3
OTHER = 0  # the model's second heap member (a per-CPU omni cyclic) sits at index 0


def run(config: Config, *events: Event) -> State:
    state = initial(config)
    for ev in events:
        state = step(state, config, ev)
    return state


def buggy(**kw: object) -> Config:
    return Config(fixed=False, ndx=NDX, rearm_at=0x370A98496F2F04, **kw)  # type: ignore[arg-type]


def fixed(**kw: object) -> Config:
    return Config(fixed=True, ndx=NDX, rearm_at=0x370A98496F2F04, **kw)  # type: ignore[arg-type]


F, S, RP, HR, C, V = Event.F, Event.S, Event.RP, Event.HR, Event.C, Event.V
R1, R2, R3, R4 = Event.R1, Event.R2, Event.R3, Event.R4


def test_initial_state_is_armed_root_and_hashable() -> None:
    s = initial(buggy())
    assert s.cpu.heap[0] == NDX and s.cpu.nelems == 2
    assert s.cpu.state is CycState.ONLINE and s.cpu.rpend == 0
    assert s.cpu.cyclic(NDX).interval == CY_INFINITY
    # Frozen states are values: equal by content, usable as dict keys for memoisation.
    assert hash(s) == hash(initial(buggy())) and s == initial(buggy())
    assert enabled(s, buggy()) == (F, R1)


def test_fire_bumps_pend_queues_once_and_sinks_to_infinity() -> None:
    s = run(buggy(fires=2), F)
    k = s.cpu.cyclic(NDX)
    assert (k.pend, k.queued, k.expire) == (1, True, CY_INFINITY)
    # cyclic_fire: interval CY_INFINITY → expiry CY_INFINITY, downheap puts the other cyclic on top.
    assert s.cpu.heap[0] == OTHER
    # Disarmed: cannot fire again until the handler re-arms it.
    assert F not in enabled(s, buggy(fires=2))
    s = run(buggy(fires=2), F, S, RP, F)
    k = s.cpu.cyclic(NDX)
    # The 1→2 bump does not enqueue again (only the 0→1 transition posts the softint).
    assert (k.pend, k.queued) == (2, False)


def test_softint_calls_handler_without_checking_flags() -> None:
    # §6 row B: removal between fire and softint; the softint still calls the handler.
    s = run(buggy(), F, R1, R2)
    assert s.cpu.cyclic(NDX).flags == CYF_FREE
    s = step(s, buggy(), S)
    assert s.handler.pc is Hpc.PRE_RP and not s.cpu.cyclic(NDX).queued


def test_remove_without_pending_does_not_wait() -> None:
    s = run(buggy(), R1)
    assert s.cpu.state is CycState.REMOVING
    s = step(s, buggy(), R2)
    k = s.cpu.cyclic(NDX)
    assert (s.cpu.rpend, k.pend, k.flags) == (0, 0, CYF_FREE)
    # The slot is swapped with the last one: ndx lands at cyp_heap[nelems], head of the free list.
    assert s.cpu.nelems == 1 and s.cpu.heap == (OTHER, NDX)
    s = step(s, buggy(), R3)
    assert s.remover.pc is Rpc.WOKEN and not s.cpu.sema.waiter
    s = step(s, buggy(), R4)
    assert (s.cpu.state, s.cpu.rpend, s.remover.pc) == (CycState.ONLINE, 0, Rpc.DONE)
    assert s.outcome is Outcome.OK  # an unfired, removed cyclic never fires


def test_remove_with_pending_stashes_rpend_and_blocks() -> None:
    s = run(buggy(), F, S, R1, R2)
    k = s.cpu.cyclic(NDX)
    assert (s.cpu.rpend, k.pend, k.flags) == (1, 0, CYF_FREE)
    assert s.cpu.heap[s.cpu.nelems] == NDX
    s = step(s, buggy(), R3)
    assert s.remover.pc is Rpc.WAITING and s.cpu.sema == Sema(count=0, waiter=True)
    assert s.outcome is Outcome.RUNNING  # the handler is still running: not a hang


def test_reprogram_present_rearms_and_reheaps() -> None:
    s = run(buggy(), F, S, RP)
    k = s.cpu.cyclic(NDX)
    assert k.expire == 0x370A98496F2F04 and s.cpu.heap[0] == NDX
    assert s.handler.pc is Hpc.POST_RP and s.outcome is Outcome.RUNNING


def test_reprogram_absent_panics_before_fix() -> None:
    s = run(buggy(), F, S, R1, R2, R3, RP)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REPROGRAM
    assert s.panic_site == "cyclic_reprogram_cyclic" and not s.panic_in_pend
    assert s.remover.pc is Rpc.WAITING  # the dump's picture: remover in sema_p
    assert enabled(s, buggy()) == ()


def test_softint_pend_accounting() -> None:
    # Non-zero pend: decrement; at 0 the handler is done with this cyclic.
    s = run(buggy(), F, S, RP, HR)
    assert s.handler.pc is Hpc.CHECK
    s = step(s, buggy(), C)
    assert s.cpu.cyclic(NDX).pend == 0 and s.handler.pc is Hpc.IDLE
    # pend 2: decrement to 1 and call the handler again.
    s = run(buggy(fires=2), F, S, RP, F, HR, C)
    assert s.cpu.cyclic(NDX).pend == 1 and s.handler.pc is Hpc.PRE_RP
    # pend zeroed by a removal: cyclic_remove_pend with rpend - 1 extra calls.
    s = run(fixed(fires=2), F, S, RP, F, R1, R2, HR, C)
    assert s.cpu.rpend == 2 and s.handler.pc is Hpc.RPEND_LOOP and s.handler.extra == 1


def test_remove_pend_extra_call_panics_before_fix() -> None:
    s = run(buggy(fires=2), F, S, RP, F, R1, R2, R3, HR, C, RP)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REPROGRAM and s.panic_in_pend


def test_sema_v_before_sema_p_is_not_lost() -> None:
    s = run(fixed(), F, S, R1, R2, RP, HR, C, V)
    assert s.cpu.sema == Sema(count=1, waiter=False) and s.handler.pc is Hpc.IDLE
    s = step(s, fixed(), R3)
    assert s.remover.pc is Rpc.WOKEN and s.cpu.sema.count == 0
    s = step(s, fixed(), R4)
    assert s.outcome is Outcome.OK


def test_fix_fails_softly_when_local_removing_and_rpend() -> None:
    s = run(fixed(), F, S, R1, R2, R3, RP)
    assert s.outcome is Outcome.RUNNING and s.handler.pc is Hpc.POST_RP
    for ev in (HR, C, V):
        s = step(s, fixed(), ev)
    assert s.remover.pc is Rpc.WOKEN  # sema_v woke it
    s = step(s, fixed(), R4)
    assert s.outcome is Outcome.OK and s.remover.pc is Rpc.DONE


def test_fix_still_panics_on_remote_miss() -> None:
    s = run(fixed(local=False), F, S, R1, R2, R3, RP)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REPROGRAM


def test_fix_still_panics_on_miss_with_rpend_zero() -> None:
    # Removal of an unfired cyclic (rpend stays 0) while CYS_REMOVING; a handler call then misses.
    s = run(fixed(), R1, R2)
    assert s.cpu.state is CycState.REMOVING and s.cpu.rpend == 0
    s = replace(s, handler=Handler(pc=Hpc.PRE_RP))
    s = step(s, fixed(), RP)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REPROGRAM


def test_fix_still_panics_on_miss_while_online() -> None:
    s0 = initial(fixed())
    k = replace(s0.cpu.cyclic(NDX), flags=CYF_FREE)
    cpu = replace(
        s0.cpu,
        heap=(OTHER, NDX),
        nelems=1,
        cyclics=tuple(k if c.ndx == NDX else c for c in s0.cpu.cyclics),
    )
    s = replace(s0, cpu=cpu, handler=Handler(pc=Hpc.PRE_RP))
    check_invariants(s, fixed())
    s = step(s, fixed(), RP)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REPROGRAM


def test_remove_of_cyclic_not_in_heap_panics() -> None:
    s0 = run(buggy(), R1)
    cpu = replace(s0.cpu, heap=(OTHER, NDX), nelems=1)  # corrupt: NDX missing but not CYF_FREE
    s = step(replace(s0, cpu=cpu), buggy(), R2)
    assert s.outcome is Outcome.PANIC and s.panic == PANIC_REMOVE
    assert s.panic_site == "cyclic_remove_xcall"


def test_waiting_with_no_handler_work_is_a_hang() -> None:
    # 3936-like: a stashed rpend that no handler call will ever release.
    s0 = run(buggy(), R1, R2)
    s = replace(s0, cpu=replace(s0.cpu, rpend=1))
    s = step(s, buggy(), R3)
    assert s.outcome is Outcome.HANG and s.remover.pc is Rpc.WAITING


def test_remover_on_another_cyclic_leaves_this_one_alone() -> None:
    cfg = buggy(remove_ndx=0xC4)
    s = run(cfg, F, S, R1, R2, R3, RP)
    assert s.outcome is Outcome.RUNNING and s.cpu.rpend == 0
    assert s.cpu.cyclic(0xC4).flags == CYF_FREE and s.cpu.cyclic(NDX).flags == 0


def test_event_not_enabled_names_actor_and_field() -> None:
    with pytest.raises(ModelInvariantError) as err:
        step(initial(buggy()), buggy(), R3)
    assert (err.value.obj, err.value.field) == ("remover", "pc")
    with pytest.raises(ModelInvariantError) as err:
        step(initial(buggy()), buggy(), RP)
    assert (err.value.obj, err.value.field) == ("handler", "pc")


def _with_k(s: State, **kw: object) -> State:
    k = replace(s.cpu.cyclic(NDX), **kw)  # type: ignore[arg-type]
    return replace(
        s, cpu=replace(s.cpu, cyclics=tuple(k if c.ndx == NDX else c for c in s.cpu.cyclics))
    )


def test_invariant_errors_name_object_and_field() -> None:
    cfg = buggy(cpu=0xFFFFFDC5496F0D40)
    s0 = initial(cfg)
    cases = [
        # 2: a pending expiry neither queued nor being handled.
        (_with_k(s0, pend=1), "cyclic 0xc3", "cy_pend"),
        # 1: CYF_FREE while still in the heap.
        (_with_k(s0, flags=CYF_FREE), "cyclic 0xc3", "cy_flags"),
        # 3: a stashed rpend while ONLINE.
        (replace(s0, cpu=replace(s0.cpu, rpend=1)), "cyc_cpu fffffdc5496f0d40", "cyp_state"),
        # heap order: the root expires later than its child.
        (
            replace(s0, cpu=replace(s0.cpu, heap=(OTHER, NDX))),
            "cyc_cpu fffffdc5496f0d40",
            "cyp_heap",
        ),
        # 5: handler still running after cyclic_remove returned.
        (
            replace(s0, remover=Remover(Rpc.DONE), handler=Handler(pc=Hpc.POST_RP)),
            "handler",
            "pc",
        ),
    ]
    for state, obj, field in cases:
        with pytest.raises(ModelInvariantError) as err:
            check_invariants(state, cfg)
        assert (err.value.obj, err.value.field) == (obj, field), str(err.value)
        assert str(err.value).startswith(f"{obj}.{field}: ")


# --- shape: the memoisation key of a run ---------------------------------------------------------------

_TIMES = (0, 5, 2000, CY_INFINITY - 2, CY_INFINITY - 1, CY_INFINITY, CY_INFINITY + 1, (1 << 64) - 1)


def _configs() -> list[Config]:
    rng = random.Random(12476)
    out = [buggy(), fixed(), buggy(fires=2), fixed(fires=2, remove_ndx=None), fixed(remove_ndx=OTHER)]
    for _ in range(160):
        ndx = rng.choice((0, 1, 2, NDX))
        out.append(Config(
            fixed=rng.random() < 0.5, fires=rng.choice((1, 2)), ndx=ndx,
            remove_ndx=rng.choice((None, -1, 0, 1, 2, NDX, 7)), local=rng.random() < 0.7,
            rearms=rng.random() < 0.8, expire=rng.choice((1000, 1000, 1000, 0, CY_INFINITY - 1, CY_INFINITY)),
            rearm_at=rng.choice(_TIMES), cpu=rng.choice((None, 0xFFFFFDC5496F0D40)),
            cyclic_id=rng.choice((None, 0xFFFFFDCE41A295C0)), handler_name="vhpet_handler",
            remover_name="thread fffffe55d37b8080",
        ))
    return out


@pytest.mark.parametrize("config", _configs())
def test_shape_runs_through_the_same_steps(config: Config) -> None:
    # Every schedule, in lockstep on the config and on its shape: the same events are enabled, each
    # step reads the same (describe with model=shape), and an invariant breaks in both or neither.
    model = shape(config)
    try:
        start = initial(config)
    except ModelInvariantError:
        with pytest.raises(ModelInvariantError):
            initial(model)
        return
    todo = [(start, initial(model))]
    seen = set(todo)
    while todo:
        real, canon = todo.pop()
        assert enabled(real, config) == enabled(canon, model)
        assert (real.outcome, real.panic, real.panic_site, real.panic_in_pend, real.remover) == (
            canon.outcome, canon.panic, canon.panic_site, canon.panic_in_pend, canon.remover)
        for ev in enabled(real, config):
            try:
                nxt = step(real, config, ev)
            except ModelInvariantError:
                with pytest.raises(ModelInvariantError):
                    step(canon, model, ev)
                continue
            cnxt = step(canon, model, ev)
            assert describe(real, config, ev, nxt) == describe(canon, config, ev, cnxt, model)
            if (nxt, cnxt) not in seen:
                seen.add((nxt, cnxt))
                todo.append((nxt, cnxt))


def test_shape_forgets_labels_and_names() -> None:
    a = shape(buggy(cpu=0xFFFFFDC5496F0D40, handler_name="vhpet_handler"))
    b = shape(Config(fixed=False, ndx=7, rearm_at=0x2CC15105498, remover_name="thread 1"))
    assert a == b and a.ndx == 1 and a.cpu is None
    assert shape(buggy(remove_ndx=5)).target == 2 and shape(buggy(remove_ndx=None)).target is None
