"""Exhaustive exploration of every interleaving of the cyclic model's actors, pre/post 12476."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dumpscope.cyclic import (
    Config,
    Event,
    Outcome,
    State,
    describe,
    enabled,
    initial,
    step,
)
from dumpscope.errors import InputError, ModelInvariantError

__all__ = [
    "Behaviour",
    "Exploration",
    "exploration_to_json",
    "explore",
    "render_exploration_text",
]


class Behaviour(StrEnum):
    """Which cyclic.c the model runs."""

    BUGGY = "buggy"  # before illumos 12476
    FIXED = "fixed"  # after illumos 12476


@dataclass(frozen=True, slots=True)
class Exploration:
    """Counts of complete schedules (paths from the initial state to a terminal state)."""

    behaviour: Behaviour  # which cyclic.c: before or after illumos 12476
    pending: int  # how many times the callout cyclic may fire (2: it re-fires after the re-arm)
    schedules: int  # complete schedules
    ok: int  # schedules ending with the remover done and no panic
    panic: int  # schedules ending in a panic
    hang: int  # schedules ending with the remover in sema_p and nobody left to wake it
    states: int  # distinct states visited
    shortest_panic: tuple[str, ...]  # step text of one shortest panicking schedule; () if none
    panic_in_remove_pend: int = 0  # panicking schedules whose panic is in a cyclic_remove_pend call
    shortest_remove_pend_panic: tuple[str, ...] = ()  # shortest of those, step by step; () if none


@dataclass(frozen=True, slots=True)
class _Summary:
    # Per-state result of the memoised walk.
    ok: int
    panic: int
    panic_pend: int
    hang: int
    to_panic: int | None  # length of the shortest path to a panic from here, None if unreachable
    via: Event | None  # first event of that shortest path
    to_pend_panic: int | None  # the same for a panic inside cyclic_remove_pend
    via_pend: Event | None


def explore(fixed: bool, pending: int = 1) -> Exploration:
    """Count every schedule of clock, handler and remover for one behaviour.

    fixed selects the post-12476 cyclic_reprogram_cyclic; pending is how many times the callout
    cyclic may expire (1: one firing; 2: it may fire again once the handler has re-armed it, which
    is what reaches cyclic_remove_pend). The state graph is a DAG (every cycle of the handler uses
    up a firing, the remover only moves forward), so schedules are counted by memoised path counting
    rather than by listing them.
    """
    if pending < 1:
        raise InputError(f"pending must be at least 1, not {pending}")
    config = Config(fixed=fixed, fires=pending)
    start = initial(config)
    memo: dict[State, _Summary] = {}
    _walk(start, config, memo, set())
    first = memo[start]
    return Exploration(
        behaviour=Behaviour.FIXED if fixed else Behaviour.BUGGY,
        pending=pending,
        schedules=first.ok + first.panic + first.hang,
        ok=first.ok,
        panic=first.panic,
        hang=first.hang,
        states=len(memo),
        shortest_panic=_path(start, config, memo, pend=False),
        panic_in_remove_pend=first.panic_pend,
        shortest_remove_pend_panic=_path(start, config, memo, pend=True),
    )


def _path(state: State, config: Config, memo: dict[State, _Summary], pend: bool) -> tuple[str, ...]:
    # Follow the memoised first events of the shortest path to a (cyclic_remove_pend) panic.
    out: list[str] = []
    summary = memo[state]
    event = summary.via_pend if pend else summary.via
    while event is not None:
        nxt = step(state, config, event)
        out.append(describe(state, config, event, nxt))
        state, summary = nxt, memo[nxt]
        event = summary.via_pend if pend else summary.via
    return tuple(out)


def _walk(state: State, config: Config, memo: dict[State, _Summary], stack: set[State]) -> _Summary:
    done = memo.get(state)
    if done is not None:
        return done
    events = enabled(state, config)
    if not events:
        is_panic = state.outcome is Outcome.PANIC
        summary = _Summary(
            ok=int(state.outcome is Outcome.OK),
            panic=int(is_panic),
            panic_pend=int(is_panic and state.panic_in_pend),
            hang=int(state.outcome is Outcome.HANG),
            to_panic=0 if is_panic else None,
            via=None,
            to_pend_panic=0 if is_panic and state.panic_in_pend else None,
            via_pend=None,
        )
        memo[state] = summary
        return summary
    stack.add(state)
    ok = panic = panic_pend = hang = 0
    best: int | None = None
    via: Event | None = None
    best_pend: int | None = None
    via_pend: Event | None = None
    for event in events:
        nxt = step(state, config, event)
        if nxt in stack:
            # Path counting needs a DAG; a cycle means the model lost its progress measure.
            raise ModelInvariantError("explore", "schedule", f"cycle through {event}")
        sub = _walk(nxt, config, memo, stack)
        ok, panic, hang = ok + sub.ok, panic + sub.panic, hang + sub.hang
        panic_pend += sub.panic_pend
        if sub.to_panic is not None and (best is None or sub.to_panic + 1 < best):
            best, via = sub.to_panic + 1, event
        if sub.to_pend_panic is not None and (
            best_pend is None or sub.to_pend_panic + 1 < best_pend
        ):
            best_pend, via_pend = sub.to_pend_panic + 1, event
    stack.discard(state)
    summary = _Summary(ok, panic, panic_pend, hang, best, via, best_pend, via_pend)
    memo[state] = summary
    return summary


def exploration_to_json(e: Exploration) -> dict[str, Any]:
    """The exploration as a JSON-ready dict (keys are part of the CLI's JSON contract)."""
    return {
        "behaviour": str(e.behaviour),
        "pending": e.pending,
        "schedules": e.schedules,
        "ok": e.ok,
        "panic": e.panic,
        "hang": e.hang,
        "states": e.states,
        "panic_in_remove_pend": e.panic_in_remove_pend,
        "shortest_panic": list(e.shortest_panic),
        "shortest_remove_pend_panic": list(e.shortest_remove_pend_panic),
    }


def render_exploration_text(e: Exploration) -> str:
    """Plain-text summary: counts, then the shortest panicking schedule step by step."""
    fix = "applied" if e.behaviour is Behaviour.FIXED else "absent"
    plural = "s" if e.pending != 1 else ""
    lines = [
        f"cyclic model, {e.behaviour} (illumos 12476 {fix}), {e.pending} pending firing{plural}",
        (
            f"schedules: {e.schedules}  ok: {e.ok}  panic: {e.panic}  hang: {e.hang}  "
            f"(distinct states: {e.states})"
        ),
    ]
    if e.panic_in_remove_pend:
        lines.append(f"panics inside cyclic_remove_pend: {e.panic_in_remove_pend}")
    if e.shortest_panic:
        lines.append(f"shortest panicking schedule ({len(e.shortest_panic)} steps):")
        lines.extend(f"  {i:2d}. {s}" for i, s in enumerate(e.shortest_panic, 1))
    else:
        lines.append("no schedule panics")
    if e.shortest_remove_pend_panic:
        lines.append(
            f"shortest panic through cyclic_remove_pend "
            f"({len(e.shortest_remove_pend_panic)} steps):"
        )
        lines.extend(f"  {i:2d}. {s}" for i, s in enumerate(e.shortest_remove_pend_panic, 1))
    return "\n".join(lines) + "\n"
