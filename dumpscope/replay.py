"""Replay a dump's 12476 sequence on the buggy and fixed cyclic model and compare end states."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from dumpscope.dump import hex_text
from dumpscope.cyclic import (
    SEMA_OFFSET,
    Config,
    Event,
    Outcome,
    Rpc,
    State,
    describe,
    enabled,
    initial,
    shape,
    step,
)

__all__ = ["Replay", "Run", "Scenario", "render_replay_text", "replay", "replay_to_json"]

# The inferred sequence (cyclic-model.md §6 row C; the reported case in illumos 12476): the cyclic
# fires, the softint starts the handler, the remover's cross call frees the cyclic and stashes the
# pend, the remover waits in sema_p, the handler reprograms.
_ONE_PENDING = (Event.F, Event.S, Event.R1, Event.R2, Event.R3, Event.RP)
# §6 row D2: the handler re-armed and the cyclic fired again (cy_pend=2) before the cross call, so
# cyclic_softint ends in cyclic_remove_pend, whose extra handler call reprograms.
_TWO_PENDING = (
    Event.F, Event.S, Event.RP, Event.F, Event.R1, Event.R2, Event.R3, Event.HR, Event.C, Event.RP,
)  # fmt: skip
_REMOVER_EVENTS = frozenset({Event.R1, Event.R2, Event.R3, Event.R4})


@dataclass(frozen=True, slots=True)
class Scenario:
    """The values of one dump that a 12476 replay needs, taken from the triage match."""

    cpu: int  # cyc_cpu_t address: first argument of cyclic_reprogram_cyclic in the panic stack
    ndx: int  # cyclic index: its second argument
    cyclic_id: int | None  # cyclic_id_t: first argument of cyclic_reprogram
    handler: str  # the callout handler in the panic stack, e.g. 'vhpet_handler'
    remover_thread: int | None  # kthread_t of the thread in cyclic_remove_here
    remover_process: str | None  # its description, e.g. 'bhyve/1 [vcpu 0]'
    two_pending: bool  # the panic stack has a cyclic_remove_pend frame
    remover_blocked: bool  # remover seen in sema_p under cyclic_remove_here for this cpu/ndx
    expected_panic: str | None  # the dump's panic message
    remover_cpu: int | None = None  # cyclic_remove_here's cpu argument, when printed
    remover_ndx: int | None = None  # cyclic_remove_here's ndx argument, when printed
    remover_sema: int | None = None  # sema_p's argument, when printed (should be cpu + 0xa0)
    remover_cyclic_id: int | None = None  # cyclic_remove's argument, when printed
    expire: int | None = None  # cyclic_reprogram_cyclic's third argument (the re-arm time)
    local: bool = True  # False when the reprogram came through cyclic_reprogram_xcall


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the sequence on one behaviour of the model."""

    outcome: Outcome  # PANIC, OK or HANG (a run always reaches a terminal state)
    panic_message: str | None  # the panic string, when outcome is PANIC
    schedule: tuple[str, ...]  # the steps taken, filled with the dump's values
    panic_site: str | None = None  # function that panicked, e.g. 'cyclic_reprogram_cyclic'
    panic_in_remove_pend: bool = False  # the panicking call came from cyclic_remove_pend
    remover_blocked: bool = False  # the remover ends in sema_p in cyclic_remove_here
    remover_done: bool = False  # cyclic_remove returned


@dataclass(frozen=True, slots=True)
class Replay:
    """Whether the model reproduces the dump before the fix and avoids it after."""

    confirmed: bool  # buggy end state equals the dump and the fixed run ends ok
    reason: str  # why (or why not), in one or two sentences
    buggy: Run  # the sequence on pre-12476 cyclic.c
    fixed: Run  # the same sequence on post-12476 cyclic.c
    scenario: Scenario | None = None  # the values replayed
    compared: tuple[str, ...] = ()  # the parts of the dump's end state the buggy run was compared with
    absent: tuple[str, ...] = ()  # the parts the transcript does not show, so they were not compared


def _config(s: Scenario, fixed: bool) -> Config:
    if s.remover_cpu is not None and s.remover_cpu != s.cpu:
        remove_ndx: int | None = None  # its cross call goes to another CPU; nothing here
    elif s.remover_ndx is not None and s.remover_ndx != s.ndx:
        remove_ndx = s.remover_ndx  # removes another cyclic on this CPU
    else:
        remove_ndx = -1
    who = "remover"
    if s.remover_thread is not None:
        who = f"thread {s.remover_thread:x}"
        if s.remover_process:
            who += f" ({s.remover_process})"
    return Config(
        fixed=fixed,
        fires=2 if s.two_pending else 1,
        ndx=s.ndx,
        remove_ndx=remove_ndx,
        local=s.local,
        rearm_at=s.expire if s.expire is not None and s.expire > 0 else 1000,
        cpu=s.cpu,
        cyclic_id=s.cyclic_id,
        handler_name=s.handler,
        remover_name=who,
    )


def _run(s: Scenario, fixed: bool, schedules: bool = True) -> Run:
    config = _config(s, fixed)
    sequence = _TWO_PENDING if s.two_pending else _ONE_PENDING
    model = shape(config)
    try:
        steps, end = _trace(model, sequence)
    except Exception:  # noqa: BLE001 - re-run with the dump's values: they name the broken invariant
        model = config
        steps, end = _trace.__wrapped__(config, sequence)
    if not schedules:
        return _as_run(end, ())
    # the step text is the dump's own (addresses, index, names); only the states are shared
    return _as_run(end, tuple(describe(before, config, ev, after, model) for before, ev, after in steps))


# Why a cache: a run depends only on the config's shape (cyclic.shape), and a bulk triage replays
# thousands of dumps that share a handful of shapes.
@functools.lru_cache(maxsize=256)
def _trace(
    config: Config, sequence: tuple[Event, ...]
) -> tuple[tuple[tuple[State, Event, State], ...], State]:
    # The inferred sequence as far as the model allows, then a deterministic finish: handler work
    # first, then the remover (enabled() order). Returns each step (before, event, after) and the end.
    state = initial(config)
    steps: list[tuple[State, Event, State]] = []

    def take(ev: Event) -> None:
        nonlocal state
        nxt = step(state, config, ev)
        steps.append((state, ev, nxt))
        state = nxt

    for ev in sequence:
        if ev in _REMOVER_EVENTS and config.target is None:
            continue  # the remover works on another CPU's cyc_cpu_t
        if ev not in enabled(state, config):
            break  # the sequence cannot go on (e.g. it already panicked)
        take(ev)
    while enabled(state, config):
        take(enabled(state, config)[0])
    return tuple(steps), state


def _as_run(state: State, steps: tuple[str, ...]) -> Run:
    return Run(
        outcome=state.outcome,
        panic_message=state.panic,
        schedule=steps,
        panic_site=state.panic_site,
        panic_in_remove_pend=state.panic_in_pend,
        remover_blocked=state.remover.pc is Rpc.WAITING,
        remover_done=state.remover.pc is Rpc.DONE,
    )


def _value_contradictions(s: Scenario) -> list[str]:
    # Checks on the dump's own values that need no model (cyclic-model.md §4).
    out: list[str] = []
    if s.ndx < 0:
        out.append(f"cyclic index {s.ndx} is negative")
    base = s.cpu if s.remover_cpu is None else s.remover_cpu
    if s.remover_sema is not None and s.remover_sema - base != SEMA_OFFSET:
        out.append(
            f"sema_p({s.remover_sema:x}) is not cyclic_remove_here's cpu "
            f"{base:x} + 0xa0 (cyp_modify_wait)"
        )
    if (
        s.remover_cyclic_id is not None
        and s.cyclic_id is not None
        and s.remover_cyclic_id != s.cyclic_id
    ):
        out.append(
            f"the remover removes cyclic id {s.remover_cyclic_id:x}, "
            f"the handler reprograms {s.cyclic_id:x}"
        )
    return out


def replay(s: Scenario, schedules: bool = True) -> Replay:
    """Replay the inferred sequence with the dump's values on the buggy and the fixed model.

    Confirms only if the buggy run ends as the dump shows (the same panic string, the remover
    blocked in sema_p for the same cpu/index, the panic in cyclic_reprogram_cyclic on that CPU,
    through cyclic_remove_pend exactly when the dump has that frame) and the fixed run ends ok.
    A state the model cannot reach gives confirmed=False with the reason; it never raises for that.
    With `schedules` False each Run's schedule is left empty: the verdict and reason are the same,
    without the step text (triage shows only the reason).
    """
    problems = _value_contradictions(s)
    if s.ndx < 0:
        empty = Run(outcome=Outcome.OK, panic_message=None, schedule=())
        return Replay(False, "not replayed: " + "; ".join(problems), empty, empty, s)
    buggy, fixed = _run(s, False, schedules), _run(s, True, schedules)
    where = f"cpu {s.cpu:x}, cyclic {s.ndx:#x}"
    if s.remover_cpu is not None and s.remover_cpu != s.cpu:
        problems.append(
            f"the remover waits on cpu {s.remover_cpu:x}, not the handler's cpu {s.cpu:x}: "
            "nothing removes the handler's cyclic"
        )
    elif s.remover_ndx is not None and s.remover_ndx != s.ndx:
        problems.append(
            f"the remover removes cyclic {s.remover_ndx:#x}, not the reprogrammed {s.ndx:#x}"
        )
    if buggy.outcome is not Outcome.PANIC:
        problems.append(f"the buggy model does not panic (ends {buggy.outcome})")
    elif s.expected_panic is not None and s.expected_panic.strip() != buggy.panic_message:
        problems.append(
            f'the dump panicked with "{s.expected_panic.strip()}", '
            f'the model with "{buggy.panic_message}"'
        )
    if buggy.outcome is Outcome.PANIC and buggy.panic_site != "cyclic_reprogram_cyclic":
        problems.append(f"the model panics in {buggy.panic_site}, not cyclic_reprogram_cyclic")
    if not s.remover_blocked:
        problems.append(
            f"the dump does not show the remover in sema_p under cyclic_remove_here for {where}"
        )
    elif not buggy.remover_blocked:
        problems.append("the model's remover is not left in sema_p")
    if buggy.outcome is Outcome.PANIC and buggy.panic_in_remove_pend != s.two_pending:
        has = "has" if s.two_pending else "has no"
        problems.append(f"the dump {has} cyclic_remove_pend frame, the model's panic disagrees")
    if not s.local:
        problems.append(
            "the reprogram is remote (cyclic_reprogram_xcall); the 12476 fix only covers the "
            "local path, so it would not have prevented this panic"
        )
    if fixed.outcome is not Outcome.OK:
        msg = f' "{fixed.panic_message}"' if fixed.panic_message else ""
        problems.append(f"the fixed model does not end ok (ends {fixed.outcome}{msg})")
    compared, absent = end_state_parts(s)
    if problems:
        return Replay(False, "; ".join(problems), buggy, fixed, s, compared, absent)
    via = " through cyclic_remove_pend" if s.two_pending else ""
    missing = f"; not in the transcript, so not compared: {', '.join(absent)}" if absent else ""
    reason = (
        f'before 12476 the model panics "{buggy.panic_message}" in cyclic_reprogram_cyclic{via} '
        f"on {where} with the remover blocked in sema_p({s.cpu + SEMA_OFFSET:x}); the dump shows the "
        f"same {', '.join(compared)}{missing}; after 12476 the reprogram fails softly, the handler "
        "returns and the remover wakes"
    )
    return Replay(True, reason, buggy, fixed, s, compared, absent)


def end_state_parts(s: Scenario) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which parts of the dump's end state a replay compares, and which the transcript does not show."""
    compared = ["panic site (cyclic_reprogram_cyclic on the handler's cpu and index)"]
    absent = []
    if s.expected_panic is not None:
        compared.insert(0, "panic message")
    else:
        absent.append("the panic message")
    if s.remover_blocked:
        compared.append("remover in sema_p in cyclic_remove_here on that cpu and index")
    if s.remover_sema is not None:
        compared.append("semaphore (cyp_modify_wait)")
    if s.cyclic_id is not None and s.remover_cyclic_id is not None:
        compared.append("cyclic id")
    else:
        absent.append("the cyclic id of both threads")
    compared.append("path (" + ("through" if s.two_pending else "not through") + " cyclic_remove_pend)")
    return tuple(compared), tuple(absent)


def _run_json(r: Run) -> dict[str, Any]:
    return {
        "outcome": str(r.outcome),
        "panic_message": r.panic_message,
        "panic_site": r.panic_site,
        "panic_in_remove_pend": r.panic_in_remove_pend,
        "remover_blocked": r.remover_blocked,
        "schedule": list(r.schedule),
    }


def replay_to_json(r: Replay) -> dict[str, Any]:
    """The replay as a JSON-ready dict (keys are part of the CLI's JSON contract)."""
    out: dict[str, Any] = {
        "confirmed": r.confirmed,
        "reason": r.reason,
        "buggy": _run_json(r.buggy),
        "fixed": _run_json(r.fixed),
    }
    s = r.scenario
    if s is not None:
        out["scenario"] = {
            "cpu": hex_text(s.cpu),
            "ndx": hex_text(s.ndx),
            "cyclic_id": hex_text(s.cyclic_id),
            "handler": s.handler,
            "remover_thread": hex_text(s.remover_thread),
            "remover_process": s.remover_process,
            "two_pending": s.two_pending,
            "remover_blocked": s.remover_blocked,
            "expected_panic": s.expected_panic,
        }
        out["compared"] = list(r.compared)
        out["absent"] = list(r.absent)
    return out


def render_replay_text(r: Replay) -> str:
    """Plain-text replay: the verdict and reason, then each behaviour's schedule step by step."""
    s = r.scenario
    head = "replay of illumos 12476"
    if s is not None:
        head += f" on cpu {s.cpu:x}, cyclic {s.ndx:#x}"
        if s.cyclic_id is not None:
            head += f" (id {s.cyclic_id:x})"
    lines = [f"{head}: {'confirmed' if r.confirmed else 'not confirmed'}", f"  {r.reason}"]
    for name, run in (("buggy (before 12476)", r.buggy), ("fixed (after 12476)", r.fixed)):
        end = str(run.outcome) + (f' "{run.panic_message}"' if run.panic_message else "")
        lines.append(f"{name}: {end}")
        lines.extend(f"  {i:2d}. {text}" for i, text in enumerate(run.schedule, 1))
    return "\n".join(lines) + "\n"
