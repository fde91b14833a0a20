"""Exhaustive exploration: hand-derived counts for the smallest configuration; 12476 verdicts."""

from __future__ import annotations

import json

import pytest

from dumpscope.cyclic import PANIC_REPROGRAM
from dumpscope.errors import InputError
from dumpscope.explore import (
    Behaviour,
    exploration_to_json,
    explore,
    render_exploration_text,
)

# Hand derivation for pending=1 (one firing), from the §6 interleaving table and the step rules:
#   clock/handler chain: F → S → RP → HR → C (strict order; S needs F's enqueue, F happens once);
#   remover chain:       R1 → R2 → R3 → R4; R4 needs R3 and, if R3 blocked, the sema_v V; in every
#   R2-after-F case that waits, V is the handler's last step, so R4 is always the very last step.
# Classify by the gap g of the handler chain that R2 falls into; R1 goes anywhere before R2
# (g+1 places among the chain steps already taken), then count the orders of what is left.
#   g=0 (§6 A, R2 before F): k leaves the heap unfired, F is disabled, rpend=0:
#       R1 R2 R3 R4 only → 1 schedule, ok.
#   g=1 (§6 B, after F): R1 in 2 places; left: S, RP and R3 (R3 blocks, rpend=1).
#       buggy: RP panics, ending the run; R3 before S, between S and RP, or never → 2×3 = 6 panic.
#       fixed: S RP HR C V then R4; R3 in 6 places (before each of the 5, or after V) → 2×6 = 12 ok.
#   g=2 (§6 C, after S): R1 in 3 places; left: RP, (HR, C, V), R3.
#       buggy: R3 before RP or never → 2; 3×2 = 6 panic.
#       fixed: RP HR C V, R3 in 5 places → 3×5 = 15 ok.
#   g=3 (§6 D1, after RP): R1 in 4 places; left: HR C V, R3 in 4 places, R4 last → 16 ok (both).
#   g=4 (after HR): R1 in 5 places; left: C V, R3 in 3 places → 15 ok (both).
#   g=5 (§6 E, after C): R1 in 6 places; left R3 R4 (rpend=0, no wait) → 6 ok (both).
# buggy: ok 1+16+15+6 = 38, panic 6+6 = 12, hang 0 → 50 schedules.
# fixed: ok 1+12+15+16+15+6 = 65, panic 0, hang 0 → 65 schedules.
HAND_TABLE = {
    # behaviour: (schedules, ok, panic, hang)
    Behaviour.BUGGY: (50, 38, 12, 0),
    Behaviour.FIXED: (65, 65, 0, 0),
}


@pytest.mark.parametrize("behaviour", list(HAND_TABLE))
def test_smallest_configuration_matches_hand_table(behaviour: Behaviour) -> None:
    e = explore(fixed=behaviour is Behaviour.FIXED, pending=1)
    assert e.behaviour is behaviour and e.pending == 1
    assert (e.schedules, e.ok, e.panic, e.hang) == HAND_TABLE[behaviour]


def test_buggy_shortest_panic_is_removal_between_fire_and_reprogram() -> None:
    e = explore(fixed=False, pending=1)
    steps = e.shortest_panic
    # Shortest: F, R1, R2, S, RP (S before the cross call is §6 row C, after it row B).
    assert len(steps) == 5
    kinds = [s.split()[0] for s in steps]
    assert kinds.index("F") < kinds.index("R2") < kinds.index("RP") == 4
    assert "cyclic_reprogram_cyclic" in steps[-1] and PANIC_REPROGRAM in steps[-1]
    assert e.panic_in_remove_pend == 0 and e.shortest_remove_pend_panic == ()


def test_buggy_two_pending_panics_through_remove_pend() -> None:
    one, two = explore(fixed=False, pending=1), explore(fixed=False, pending=2)
    assert two.panic > one.panic and two.panic_in_remove_pend > 0
    steps = two.shortest_remove_pend_panic
    kinds = [s.split()[0] for s in steps]
    # The re-armed cyclic fires again before the cross call stashes cy_pend=2 (§6 row D2).
    assert kinds.count("F") == 2 and kinds.index("RP") < kinds.index("R2")
    assert any("cyp_rpend=2" in s for s in steps)
    assert any("cyclic_remove_pend, 1 extra call" in s for s in steps)
    assert "extra call from cyclic_remove_pend" in steps[-1] and PANIC_REPROGRAM in steps[-1]


@pytest.mark.parametrize("pending", [1, 2])
def test_fixed_never_panics_or_hangs(pending: int) -> None:
    e = explore(fixed=True, pending=pending)
    assert e.panic == 0 and e.hang == 0 and e.ok == e.schedules > 0
    assert e.shortest_panic == () and e.panic_in_remove_pend == 0


def test_buggy_never_hangs_and_counts_add_up() -> None:
    for pending in (1, 2):
        e = explore(fixed=False, pending=pending)
        assert e.hang == 0 and e.ok + e.panic == e.schedules
        # The fix turns every panicking schedule into longer, ok ones: never fewer schedules.
        assert explore(fixed=True, pending=pending).schedules > e.schedules


def test_exploration_json_and_text() -> None:
    e = explore(fixed=False, pending=2)
    data = exploration_to_json(e)
    json.dumps(data)
    assert data["behaviour"] == "buggy" and data["pending"] == 2
    for key in ("schedules", "ok", "panic", "hang", "states"):
        assert isinstance(data[key], int)
    assert data["shortest_panic"] == list(e.shortest_panic)
    text = render_exploration_text(e)
    assert "shortest panicking schedule (5 steps)" in text
    assert "cyclic_remove_pend" in text
    assert "no schedule panics" in render_exploration_text(explore(fixed=True))


def test_pending_must_be_positive() -> None:
    with pytest.raises(InputError):
        explore(fixed=False, pending=0)
