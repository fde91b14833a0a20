"""Replay of the seed's vhpet dump (illumos 12476 [S8], second dump) and of near misses."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dumpscope.cyclic import Outcome, describe, enabled, initial, step
from dumpscope.replay import (
    _ONE_PENDING,
    _REMOVER_EVENTS,
    _TWO_PENDING,
    Run,
    Scenario,
    _as_run,
    _config,
    _trace,
    render_replay_text,
    replay,
    replay_to_json,
)

# Values copied by hand from the vhpet dump in /work/shared/reference/illumos-12476-bug-report.txt:
#   cyclic_reprogram_cyclic+0x97(fffffdc5496f0d40, c3, 370a98496f2f04)
#   cyclic_reprogram+0x108(fffffdce41a295c0, 370a98496f2f04)
#   stack pointer for thread fffffe55d37b8080 (bhyve/1 [vcpu 0])
#   sema_p+0x1d7(fffffdc5496f0de0) / cyclic_remove_here+0xac(fffffdc5496f0d40, c3, 0, 0)
#   cyclic_remove+0x38(fffffdce41a295c0)
CPU = 0xFFFFFDC5496F0D40
SEED = Scenario(
    cpu=CPU,
    ndx=0xC3,
    cyclic_id=0xFFFFFDCE41A295C0,
    handler="vhpet_handler",
    remover_thread=0xFFFFFE55D37B8080,
    remover_process="bhyve/1 [vcpu 0]",
    two_pending=False,
    remover_blocked=True,
    expected_panic="attempt to reprogram non-existent cyclic",
    remover_cpu=CPU,
    remover_ndx=0xC3,
    remover_sema=0xFFFFFDC5496F0DE0,
    remover_cyclic_id=0xFFFFFDCE41A295C0,
    expire=0x370A98496F2F04,
)
# The same dump as the triage match alone gives it (the spec's required fields only).
SEED_MINIMAL = replace(SEED, remover_cpu=None, remover_ndx=None, remover_sema=None,
                       remover_cyclic_id=None, expire=None)


@pytest.mark.parametrize("scenario", [SEED, SEED_MINIMAL], ids=["full", "minimal"])
def test_seed_vhpet_dump_is_confirmed(scenario: Scenario) -> None:
    r = replay(scenario)
    assert r.confirmed, r.reason
    assert r.buggy.outcome is Outcome.PANIC
    assert r.buggy.panic_message == "attempt to reprogram non-existent cyclic"
    assert r.buggy.panic_site == "cyclic_reprogram_cyclic" and r.buggy.remover_blocked
    sched = r.buggy.schedule
    # The inferred order: fire, softint starts the handler, cross call, sema_p wait, reprogram.
    assert [s.split()[0] for s in sched] == ["F", "S", "R1", "R2", "R3", "RP"]
    assert "R2 cyclic_remove_xcall on cpu fffffdc5496f0d40: cyclic 0xc3 freed, cyp_rpend=1" in sched
    assert "sema_p(fffffdc5496f0de0)" in sched[4] and "bhyve/1 [vcpu 0]" in sched[4]
    assert (
        "vhpet_handler" in sched[5] and "cyclic_reprogram_cyclic(fffffdc5496f0d40, c3" in sched[5]
    )


def test_seed_fixed_run_ends_ok() -> None:
    r = replay(SEED)
    assert r.fixed.outcome is Outcome.OK and r.fixed.panic_message is None
    assert r.fixed.remover_done and not r.fixed.remover_blocked
    kinds = [s.split()[0] for s in r.fixed.schedule]
    # Same prefix, then: reprogram fails softly, handler returns, remove_pend wakes the remover.
    assert kinds == ["F", "S", "R1", "R2", "R3", "RP", "HR", "C", "V", "R4"]
    assert "returns B_FALSE" in r.fixed.schedule[5]
    assert "wakes thread fffffe55d37b8080" in r.fixed.schedule[8]
    assert "fffffdce41a295c0" in r.fixed.schedule[9]


def test_two_pending_variant_goes_through_remove_pend() -> None:
    r = replay(replace(SEED, two_pending=True))
    assert r.confirmed, r.reason
    assert r.buggy.panic_in_remove_pend and "cyp_rpend=2" in " ".join(r.buggy.schedule)
    assert "extra call from cyclic_remove_pend" in r.buggy.schedule[-1]
    assert r.fixed.outcome is Outcome.OK


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"remover_ndx": 0xC4}, "0xc4"),
        (
            {"remover_cpu": 0xFFFFFDC5496F1000, "remover_sema": 0xFFFFFDC5496F10A0},
            "fffffdc5496f1000",
        ),
        ({"remover_blocked": False}, "does not show the remover"),
        ({"expected_panic": "attempt to remove non-existent cyclic"}, "remove non-existent"),
        ({"remover_sema": 0xFFFFFDC5496F0DE8}, "0xa0"),
        ({"remover_cyclic_id": 0xFFFFFDCE41A29600}, "fffffdce41a29600"),
        ({"local": False}, "remote"),
        ({"ndx": -1}, "negative"),
    ],
)
def test_near_misses_are_not_confirmed(change: dict[str, object], why: str) -> None:
    r = replay(replace(SEED, **change))  # type: ignore[arg-type]
    assert not r.confirmed
    assert why in r.reason


def test_remover_on_other_ndx_leaves_model_unpanicked() -> None:
    # The model itself cannot reach the dump's state: the handler's cyclic is never removed.
    r = replay(replace(SEED, remover_ndx=0xC4))
    assert r.buggy.outcome is Outcome.OK and not r.buggy.remover_blocked


def test_remote_reprogram_panics_even_when_fixed() -> None:
    r = replay(replace(SEED, local=False))
    assert r.buggy.outcome is Outcome.PANIC and r.fixed.outcome is Outcome.PANIC


def test_replay_json_and_text() -> None:
    r = replay(SEED)
    data = replay_to_json(r)
    json.dumps(data)
    assert data["confirmed"] is True
    for name, outcome in (("buggy", "panic"), ("fixed", "ok")):
        assert data[name]["outcome"] == outcome
        assert isinstance(data[name]["schedule"], list) and data[name]["schedule"]
    assert data["buggy"]["panic_message"] == "attempt to reprogram non-existent cyclic"
    assert data["fixed"]["panic_message"] is None
    assert data["scenario"]["cpu"] == "fffffdc5496f0d40"
    text = render_replay_text(r)
    assert text.startswith("replay of illumos 12476 on cpu fffffdc5496f0d40, cyclic 0xc3")
    assert ": confirmed" in text and " 6. RP vhpet_handler" in text
    assert "not confirmed" in render_replay_text(replay(replace(SEED, remover_blocked=False)))


def _reference_run(s: Scenario, fixed: bool) -> Run:
    # the run stepped out with the dump's own values, no memoisation (replay's definition of a run)
    config = _config(s, fixed)
    state = initial(config)
    steps: list[str] = []
    sequence = _TWO_PENDING if s.two_pending else _ONE_PENDING
    for ev in sequence:
        if ev in _REMOVER_EVENTS and config.target is None:
            continue
        if ev not in enabled(state, config):
            break
        nxt = step(state, config, ev)
        steps.append(describe(state, config, ev, nxt))
        state = nxt
    while enabled(state, config):
        ev = enabled(state, config)[0]
        nxt = step(state, config, ev)
        steps.append(describe(state, config, ev, nxt))
        state = nxt
    return _as_run(state, tuple(steps))


_SCENARIOS = [
    SEED, SEED_MINIMAL, replace(SEED, two_pending=True), replace(SEED, ndx=0, remover_ndx=0),
    replace(SEED, ndx=1, remover_ndx=0), replace(SEED, remover_ndx=0xC4), replace(SEED, remover_cpu=CPU + 0x1000),
    replace(SEED, local=False), replace(SEED, expire=(1 << 63) - 2), replace(SEED, expire=(1 << 63) - 1),
    replace(SEED, expire=(1 << 64) - 1), replace(SEED, two_pending=True, expire=(1 << 63) - 1),
    replace(SEED, handler="vatpit_callout_handler", remover_thread=None, remover_process=None),
]


@pytest.mark.parametrize("scenario", _SCENARIOS)
def test_memoised_runs_equal_the_dumps_own(scenario: Scenario) -> None:
    # runs are memoised by their shape; the schedule text must still be the dump's own, cold or warm
    _trace.cache_clear()
    for _ in range(2):
        r = replay(scenario)
        assert r.buggy == _reference_run(scenario, False)
        assert r.fixed == _reference_run(scenario, True)


@pytest.mark.parametrize("scenario", _SCENARIOS)
def test_without_schedules_the_verdict_is_the_same(scenario: Scenario) -> None:
    full, bare = replay(scenario), replay(scenario, schedules=False)
    assert (bare.confirmed, bare.reason, bare.scenario) == (full.confirmed, full.reason, full.scenario)
    assert replace(bare.buggy, schedule=full.buggy.schedule) == full.buggy
    assert replace(bare.fixed, schedule=full.fixed.schedule) == full.fixed
    assert bare.buggy.schedule == bare.fixed.schedule == ()
