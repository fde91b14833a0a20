"""dumpscope: triage illumos/SmartOS kernel crash dumps from mdb transcripts.

The library API the CLI is built on: parse_transcript (text -> Dump), triage_text (text ->
Verdict; dumpscope.triage.triage takes a Dump), triage_all (paths -> Verdicts, in order, in
parallel), replay (a 12476 scenario -> Replay on the reference cyclic model) and explore (every
interleaving of the race).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers; at run time they load on first use
    from dumpscope.bulk import triage_all
    from dumpscope.dump import Cpu, Dump, Frame, Section, SectionKind, Stack, Status, Thread
    from dumpscope.explore import explore
    from dumpscope.parse import parse_transcript
    from dumpscope.replay import Scenario, replay
    from dumpscope.triage import triage_text
    from dumpscope.verdict import Confidence, Evidence, Fix, FixStatus, Verdict

# Imported on first use (PEP 562): `dumpscope parse` must not pay for the matcher, the cyclic model
# and the worker pool at start-up.
_HOME = {
    "triage_all": "bulk",
    "Cpu": "dump", "Dump": "dump", "Frame": "dump", "Section": "dump", "SectionKind": "dump",
    "Stack": "dump", "Status": "dump", "Thread": "dump",
    "explore": "explore",
    "parse_transcript": "parse",
    "Scenario": "replay", "replay": "replay",
    # (the function triage stays dumpscope.triage.triage: the name is the module's)
    "triage_text": "triage",
    "Confidence": "verdict", "Evidence": "verdict", "Fix": "verdict", "FixStatus": "verdict", "Verdict": "verdict",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(import_module(f"dumpscope.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dumpscope' has no attribute {name!r}")


__all__ = [
    "Confidence",
    "Cpu",
    "Dump",
    "Evidence",
    "Fix",
    "FixStatus",
    "Frame",
    "Scenario",
    "Section",
    "SectionKind",
    "Stack",
    "Status",
    "Thread",
    "Verdict",
    "explore",
    "parse_transcript",
    "replay",
    "triage_all",
    "triage_text",
]

__version__ = "0.2.0"
