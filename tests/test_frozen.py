"""dumpscope.frozen: a draft-built object is the object the dataclass's own __init__ builds."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

from dumpscope.dump import Frame, SectionKind, Thread, build_frame, build_thread
from dumpscope.frozen import draft_builder, draft_class
from dumpscope.verdict import Confidence, Event, Evidence, Hint, ShownFrame, ShownTrap, Verdict

_FRAME = (12, "cyclic_reprogram", "unix", 0xB0, (0xFFFFFF03EB144000, 0xB), 0xFFFFFF000F832950)
_THREAD = (40, SectionKind.FINDSTACK, 0xFFFFFE55D37B8080, (Frame(*_FRAME),), "bhyve/1 [vcpu 0]", "SLEEP", "SEMA",
           None, 0xFFFFFB04249A9560, None, 3, None, None, True)
_EVIDENCE = ("same cyclic in both stacks", (12, 41), False, "cyclic=ffffff03eb144000")
_VERDICT = ("dump.txt", "ok", None, "attempt to reprogram non-existent cyclic", "joyent_20180216T202957Z", "dent",
            "illumos-12476", Confidence.PAIRED, "b-1234", "cyclic reprogramming can race with removal",
            ("illumos 12476",), (Evidence(*_EVIDENCE),), None, (Event("handler fires", (12,)),),
            (Hint("::cyclic", "shows the cyclics"),), ("a note",), "thread ffffff...", None,
            (ShownFrame(12, "vpanic()", True),), ("cyclic_reprogram",), (), "a conclusion",
            ShownTrap(3, 9, (("type", "e"),)), "thread fffffe007a3e1c20 (psradm/1)")


@pytest.mark.parametrize(("cls", "build", "values"), [
    (Frame, build_frame, _FRAME),
    (Thread, build_thread, _THREAD),
    (Evidence, draft_builder(Evidence), _EVIDENCE),
    (Verdict, draft_builder(Verdict), _VERDICT),
], ids=["Frame", "Thread", "Evidence", "Verdict"])
def test_a_draft_built_object_is_the_dataclass_object(cls: type, build: Any, values: tuple[Any, ...]) -> None:
    made, built = cls(*values), build(*values)
    assert type(built) is cls
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert dataclasses.astuple(built) == dataclasses.astuple(made)
    assert pickle.loads(pickle.dumps(built)) == made
    for field in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(built, field.name, None)


def test_a_draft_needs_a_frozen_dataclass_with_its_fields_as_slots() -> None:
    @dataclasses.dataclass(frozen=True)  # no slots: a __dict__, not the layout of a draft
    class NoSlots:
        a: int

    class NotADataclass:
        __slots__ = ("a",)

    with pytest.raises(TypeError, match="slots"):
        draft_class(NoSlots)
    with pytest.raises(TypeError, match="not a dataclass"):
        draft_class(NotADataclass)
