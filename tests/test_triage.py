"""triage(): the two seed dumps, near-misses, fix status, replay upgrade and robustness."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dumpscope.replay as replay_mod
import dumpscope.signatures
from _dumps import stack, thread
from _seeds import REMOVER, vatpit, vhpet, with_platform
from conftest import make_signature_raise
from dumpscope.dump import Dump, Frame, SectionKind, Stack, Status, Thread
from dumpscope.parse import parse_transcript
from dumpscope.signatures import load_signatures
from dumpscope.triage import fix_status, triage
from dumpscope.verdict import Confidence, FixStatus

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "transcripts"


def test_vatpit_seed_is_likely_with_next_step_hints() -> None:
    v = triage(vatpit(), "vatpit")
    assert v.status == "ok" and v.signature == "illumos-12476"
    assert v.confidence is Confidence.LIKELY
    assert [h.command for h in v.hints] == ["::stacks -c cyclic_remove_here | ::findstack -v"]
    assert v.bugs == ("illumos 12476", "SmartOS OS-6684")
    assert v.host == "dent" and v.platform == "joyent_20180216T202957Z"
    assert v.fix is not None and v.fix.status is FixStatus.PREDATES_FIX
    # the events carry this dump's values: cyclic_reprogram_cyclic(ffffff03eb144000, b, ...)
    assert any("index b on cyc_cpu ffffff03eb144000" in e.text for e in v.events)
    assert any("vatpit_callout_handler" in e.text for e in v.events)
    assert {7, 11} <= {ln for e in v.evidence for ln in e.lines}


def test_vhpet_seed_with_remover_is_paired_or_confirmed() -> None:
    v = triage(vhpet(), "vhpet")
    assert v.signature == "illumos-12476"
    # dumpscope.replay exists in this tree, so the pairing is checked by replay
    assert v.confidence is Confidence.CONFIRMED, v.notes
    assert v.replay and v.replay.startswith("replay confirms")
    assert any("thread fffffe55d37b8080 (bhyve/1 [vcpu 0])" in e.text for e in v.events)
    assert all(e.holds for e in v.evidence)
    assert v.fix is not None and v.fix.status is FixStatus.UNKNOWN  # no ::status in that excerpt


def test_paired_stays_paired_when_replay_does_not_confirm(monkeypatch: pytest.MonkeyPatch) -> None:
    real = replay_mod.replay

    def refuse(s, **kw):  # type: ignore[no-untyped-def]
        r = real(s, **kw)
        return dataclasses.replace(r, confirmed=False, reason="the model ends elsewhere")

    monkeypatch.setattr(replay_mod, "replay", refuse)  # triage imports it when a 12476 match needs it
    v = triage(vhpet(), "vhpet")
    assert v.confidence is Confidence.PAIRED
    assert v.replay == "replay does not confirm: the model ends elsewhere"
    assert any("does not confirm" in n for n in v.notes)


def test_vhpet_seed_is_confirmed_by_replay() -> None:
    v = triage(vhpet(), "vhpet")
    assert v.confidence is Confidence.CONFIRMED and v.replay and v.replay.startswith("replay confirms")


def test_remover_on_another_cpu_does_not_pair() -> None:
    other = REMOVER.replace("fffffdc5496f0d40, c3", "fffffdc5496f1d40, 1f").replace("fffffdc5496f0de0", "fffffdc5496f1de0")
    v = triage(vhpet(other), "other")
    assert v.signature == "illumos-12476" and v.confidence is Confidence.LIKELY
    assert any("does not pair" in n and "same cyc_cpu" in n for n in v.notes)
    assert any(not e.holds for e in v.evidence)
    assert v.replay is None


def test_unrelated_panic_with_remover_in_stacks_does_not_match() -> None:
    msg = 'BAD TRAP: type=e (#pf Page fault) rp=fffffb04249a8c10 addr=28 occurred in module "zfs" due to a NULL pointer dereference'
    s = stack("fffffb04249a8d20 dbuf_rele_and_unlock+0x33(fffffdc8a1b7c3e8, 0)\n", 8)
    body = "\n".join("                 " + f for f in
                     ("swtch+0x141", "sema_p+0x1d7", "cyclic_remove_here+0xac", "cyclic_remove+0x38", "vmm_glue_callout_drain+0x27"))
    th = thread(body, 14, 0xFFFFFE55D37B8080, SectionKind.STACKS, state="SLEEP", sobj="SEMA", count=1)
    v = triage(Dump(panic_message=msg, panic_message_line=5, panic_stack=s, stacks=(s,), threads=(th,)), "zfs")
    assert v.signature is None and v.confidence is None
    assert v.title == "BAD TRAP: page fault (NULL pointer dereference) in dbuf_rele_and_unlock"


@pytest.mark.parametrize(
    ("platform", "want"),
    [
        ("joyent_20180216T202957Z", FixStatus.PREDATES_FIX),
        ("joyent_20190717T235959Z", FixStatus.PREDATES_FIX),
        ("joyent_20190718T101010Z", FixStatus.UNKNOWN),  # built the day of the fix
        ("joyent_20200424T174452Z", FixStatus.HAS_FIX),
        ("omnios-r151030-521a1fc4d1", FixStatus.UNKNOWN),
        ("joyent_20191345T000000Z", FixStatus.UNKNOWN),  # no such date: cannot be dated
        ("joyent_20191345T000000Z", FixStatus.UNKNOWN),  # again: the cached answer is the same
        (None, FixStatus.UNKNOWN),
    ],
)
def test_fix_status_of_platform_builds(platform: str | None, want: FixStatus) -> None:
    v = triage(with_platform(vatpit(), platform), "x")
    assert v.fix is not None and v.fix.status is want
    flagged = any("already has the fix" in n for n in v.notes)
    assert flagged == (want is FixStatus.HAS_FIX)


def test_fix_status_needs_fix_info() -> None:
    sig = load_signatures().get("smartos-live-574")
    assert sig is not None and fix_status(sig, "joyent_20151223T094457Z") is None


def test_a_signature_that_raises_becomes_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    make_signature_raise(monkeypatch, "illumos-13253")
    v = triage(vatpit(), "x")
    assert v.signature == "illumos-12476"
    assert any("illumos-13253 raised RuntimeError: boom" in n for n in v.notes)


def test_more_specific_signature_wins(tmp_path: Path) -> None:
    generic = 'id = "t-generic"\ntitle = "generic"\nbugs = ["g"]\n\n[crash]\n\n[[crash.frames]]\nfunction = "cyclic_reprogram"\n'
    specific = ('id = "t-specific"\ntitle = "specific"\nbugs = ["s"]\nmore_specific_than = ["t-generic"]\n\n[crash]\n\n'
                '[[crash.frames]]\nfunction = "cyclic_reprogram_cyclic"\n\n[[crash.frames]]\nfunction = "cyclic_reprogram"\n')
    (tmp_path / "t-generic.toml").write_text(generic)
    (tmp_path / "t-specific.toml").write_text(specific)
    sigs = load_signatures(tmp_path.glob("*.toml"))
    v = triage(vatpit(), "x", sigs)
    assert v.signature == "t-specific"
    assert not any("also matches t-generic" in n for n in v.notes)


def test_empty_and_odd_dumps_do_not_raise() -> None:
    empty = triage(Dump(), "empty")
    assert empty.status == "error" and empty.error and "no mdb output found" in empty.error
    odd = Stack(line=1, frames=(Frame(line=1, function="0x0"), Frame(line=2, function="", args=())))
    v = triage(Dump(panic_stack=odd, stacks=(odd,), panic_message="", status=Status(line=1)), "odd")
    assert v.status == "ok" and v.signature is None


_names = st.sampled_from(["vpanic", "cyclic_reprogram_cyclic", "cyclic_reprogram", "vmm_glue_callout_reset_sbt",
                          "vhpet_handler", "vmm_glue_callout_handler", "cyclic_softint", "cbe_low_level", "sema_p",
                          "cyclic_remove_here", "cyclic_remove", "vmm_glue_callout_drain", "0xfffffffffb8c2361", "x"])
_frames = st.lists(st.builds(Frame, line=st.integers(1, 50), function=_names,
                             module=st.none() | st.sampled_from(["unix", "genunix", "vmm"]),
                             offset=st.none() | st.integers(0, 1 << 40),
                             args=st.none() | st.lists(st.integers(0, (1 << 64) - 1), max_size=4).map(tuple)),
                   max_size=12).map(tuple)


@settings(max_examples=150, deadline=None)
@given(panic=_frames, other=_frames, msg=st.none() | st.sampled_from(
    ["attempt to reprogram non-existent cyclic", "", "BAD TRAP: type=e", "\x00\n\t" * 3]))
def test_triage_never_raises(panic: tuple[Frame, ...], other: tuple[Frame, ...], msg: str | None) -> None:
    s = Stack(line=1, frames=panic) if panic else None
    th = Thread(line=30, kind=SectionKind.FINDSTACK, address=0x1234, frames=other)
    v = triage(Dump(panic_message=msg, panic_stack=s, stacks=(s,) if s else (), threads=(th,)), "fuzz")
    assert v.status == "ok" and v.bucket


def test_seed_fixtures_through_the_parser() -> None:
    pytest.importorskip("dumpscope.parse")
    from dumpscope.triage import triage_text

    text = (TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt").read_text()
    assert triage_text(text, "vhpet").confidence in (Confidence.PAIRED, Confidence.CONFIRMED)
    text = (TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt").read_text()
    v = triage_text(text, "vatpit")
    assert v.confidence is Confidence.LIKELY
    assert "::stacks -c cyclic_remove_here | ::findstack -v" in [h.command for h in v.hints]


def test_story_fields_come_from_the_signature_whatever_its_role_and_frames_are_called(tmp_path: Path) -> None:
    # '{handler}' and '{remover}' are a named crash frame and a [[threads]] role of the 12476 file, not
    # names the story knows: the same file with both renamed tells the same story (the role's own word
    # aside), paired, with an unpaired look-alike, and with no such thread at all
    bundled = Path(dumpscope.signatures.__file__).parent / "data" / "signatures" / "illumos-12476.toml"
    renamed = (bundled.read_text().replace('id = "illumos-12476"', 'id = "renamed-12476"')
               .replace('role = "remover"', 'role = "drainer"').replace('rests_on = "remover"', 'rests_on = "drainer"')
               .replace("{remover}", "{drainer}").replace('name = "handler"', 'name = "callback"')
               .replace("{handler}", "{callback}"))
    assert "{remover}" not in renamed and "{handler}" not in renamed and "drainer" not in bundled.read_text()
    (tmp_path / "renamed-12476.toml").write_text(renamed)
    sigs = load_signatures([tmp_path / "renamed-12476.toml"])
    other_cpu = parse_transcript((TRANSCRIPTS / "near-miss-12476-remover-other-cpu.txt").read_text(), "x")
    for dump, paired in ((vhpet(), True), (vatpit(), False), (other_cpu, False)):
        want, got = triage(dump, "x").events, triage(dump, "x", sigs).events
        assert want and any("drainer" in e.text for e in got) != paired
        assert [dataclasses.replace(e, text=e.text.replace("drainer", "remover")) for e in got] == list(want)
