"""Shared knobs of the robustness tests: the long-run switch, the seed transcripts, the intactness rule."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import settings

__all__ = [
    "LONG",
    "ROOT",
    "PROFILE",
    "REMOVER_KEYS",
    "PANIC_KEYS",
    "CONTROL_OUTPUT",
    "intact_12476",
    "seed_inputs",
]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"

# DUMPSCOPE_LONG_TESTS=1 runs the robustness tests at full size (more examples, more mutants, the
# 100,000-file directory); the default sizes keep the normal suite fast on 2 cores.
LONG = os.environ.get("DUMPSCOPE_LONG_TESTS", "") not in ("", "0")

# Registered here (not in conftest.py, which is the lead's) and applied per test with @PROFILE, never
# loaded globally, so other test modules keep hypothesis' defaults.
settings.register_profile("dumpscope-robust", max_examples=150, deadline=None, derandomize=True)
settings.register_profile("dumpscope-robust-long", max_examples=3000, deadline=None)
PROFILE = settings.get_profile("dumpscope-robust-long" if LONG else "dumpscope-robust")

# Any control character but tab and newline, C1 included: must never reach stdout/stderr raw.
CONTROL_OUTPUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def seed_inputs() -> list[tuple[str, bytes]]:
    """Every fixture transcript, error fixture and corpus transcript, as (name, bytes), in a fixed order."""
    out: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    paths = sorted((ROOT / "fixtures" / "transcripts").glob("*.txt")) + sorted(
        (ROOT / "fixtures" / "errors").glob("*.txt"))
    if CORPUS.is_dir():
        paths += sorted(CORPUS.glob("*.txt"))
    for p in paths:
        data = p.read_bytes()
        if data in seen:  # fixtures that are verbatim corpus copies count once
            continue
        seen.add(data)
        out.append((p.name, data))
    return out


# -- illumos 12476: when may a transcript be `paired`? ----------------------------------------------
#
# The only pairing in the fixtures and the corpus is the vhpet dump of the 12476 bug report
# (shared/reference/illumos-12476-bug-report.txt, second dump; fixtures seed-12476-vhpet-with-remover
# and illumos-12476-bug-report-full). Its five load-bearing frame lines, copied from the report:
#   cyclic_reprogram_cyclic+0x97(fffffdc5496f0d40, c3, 370a98496f2f04)      panic stack
#   cyclic_reprogram+0x108(fffffdce41a295c0, 370a98496f2f04)                panic stack
#   sema_p+0x1d7(fffffdc5496f0de0)                                         remover
#   cyclic_remove_here+0xac(fffffdc5496f0d40, c3, 0, 0)                     remover
#   cyclic_remove+0x38(fffffdce41a295c0)                                   remover
# The pairing rests on cpu = fffffdc5496f0d40, ndx = c3 and sema = cpu + 0xa0 = fffffdc5496f0de0.
#
# "Intact" (the rule the mutation test enforces): both groups of lines are present in the text, each
# group in this order (other lines may sit between), where a line counts as present when it is a
# frame line "[FP ]FUNCTION[+OFF](ARGS)" with exactly this function name and these argument values
# (hex compared as numbers, the way mdb prints and the parser reads them), each value at its own
# position in the comma-separated list. The frame pointer and offset columns, letter case of hex
# digits, surrounding whitespace or CRs, and junk in other arguments may differ: they carry nothing the
# pairing uses. A line whose ')' is missing (cut, or wrapped) still shows the arguments a comma ends;
# its last argument may be cut mid-number and does not count. For cyclic_reprogram and cyclic_remove
# only the function must be there: the signature checks the cyclic id only where both stacks show it.
# The same rule holds for the hand-written two-pending variant (variant-12476-two-pending-remove-pend),
# whose threads pair on cpu = ffffff03eb144000 and ndx = b.
_CPU, _NDX = 0xFFFFFDC5496F0D40, 0xC3
_Keys = tuple[tuple[str, tuple[int, ...] | None], ...]


def _keys(cpu: int, ndx: int) -> tuple[_Keys, _Keys]:
    panic: _Keys = (("cyclic_reprogram_cyclic", (cpu, ndx)), ("cyclic_reprogram", None))
    remover: _Keys = (("sema_p", (cpu + 0xA0,)), ("cyclic_remove_here", (cpu, ndx)), ("cyclic_remove", None))
    return panic, remover


PANIC_KEYS, REMOVER_KEYS = _keys(_CPU, _NDX)
_PAIRINGS = (_keys(_CPU, _NDX), _keys(0xFFFFFF03EB144000, 0xB))
_FRAME_LINE = re.compile(r"^\s*(?:[0-9a-fA-F]{8,16}\s+)?(?P<func>[A-Za-z_]\w*)(?:\+[0-9a-fA-Fx]+)?\((?P<rest>.*)$")
_HEX = re.compile(r"\s*(?:0x)?[0-9a-fA-F]+\s*")


def _frame_key(line: str) -> tuple[str, tuple[int | None, ...]] | None:
    m = _FRAME_LINE.match(line.replace("\r", "").rstrip())
    if m is None:
        return None
    rest = m.group("rest")
    closed = rest.endswith(")")
    parts = (rest[:-1] if closed else rest).split(",")
    if not closed:
        parts = parts[:-1]  # not ended by ',' or ')': may be cut short
    values = tuple(int(p, 16) if _HEX.fullmatch(p) else None for p in parts)
    return m.group("func"), values


def _in_order(keys: list[tuple[str, tuple[int | None, ...]] | None],
              wanted: tuple[tuple[str, tuple[int, ...] | None], ...]) -> bool:
    i = 0
    for key in keys:
        if i == len(wanted):
            break
        if key is None:
            continue
        func, prefix = wanted[i]
        if key[0] == func and (prefix is None or key[1][:len(prefix)] == prefix):
            i += 1
    return i == len(wanted)


def intact_12476(text: str) -> bool:
    """True when both 12476 threads of a paired dump survive in `text` (see the rule above)."""
    keys = [_frame_key(line) for line in text.split("\n")]
    return any(_in_order(keys, panic) and _in_order(keys, remover) for panic, remover in _PAIRINGS)
