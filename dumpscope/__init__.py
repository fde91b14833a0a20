"""dumpscope: triage illumos/SmartOS kernel crash dumps from mdb transcripts."""

from dumpscope.dump import Cpu, Dump, Frame, Section, SectionKind, Stack, Status, Thread
from dumpscope.parse import parse_transcript

__all__ = [
    "Cpu",
    "Dump",
    "Frame",
    "Section",
    "SectionKind",
    "Stack",
    "Status",
    "Thread",
    "parse_transcript",
]

__version__ = "0.1.0"
