"""Cross-thread binding and evidence of the matcher, on inline snippets from the 12476 bug report."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from _dumps import frames, stack, status, thread
from _seeds import REMOVER, REMOVER_ADDR, vatpit, vhpet
from dumpscope.dump import Dump, SectionKind, thread_label
from dumpscope.hints import signature_hints
from dumpscope.match import match, match_frames
from dumpscope.signatures import FramePattern, Signature, compile_pattern, signature_set
from dumpscope.verdict import Confidence

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "fixtures" / "transcripts"


@pytest.fixture(scope="module")
def sig12476():  # type: ignore[no-untyped-def]
    s = signature_set().get("illumos-12476")
    assert s is not None
    return s


def _pat(fn: str, optional: bool = False, module: str | None = None) -> FramePattern:
    return FramePattern(fn, compile_pattern(fn), compile_pattern(module) if module else None, optional)


# --- ordered frame patterns --------------------------------------------------------------------------

def test_gaps_allowed_between_patterns() -> None:
    fr = frames("vpanic()\nfoo+0x1()\nbar+0x2()\nbaz+0x3()\n", 1)
    hit = match_frames([_pat("foo"), _pat("baz")], fr)
    assert hit is not None and [f.line for _, f in hit] == [2, 4]


def test_order_matters() -> None:
    fr = frames("foo+0x1()\nbar+0x2()\n", 1)
    assert match_frames([_pat("bar"), _pat("foo")], fr) is None


def test_optional_frame_bound_only_before_next_required() -> None:
    fr = frames("a+1()\nb+2()\nc+3()\nopt+4()\n", 1)
    hit = match_frames([_pat("a"), _pat("opt", optional=True), _pat("c")], fr)
    # 'opt' sits after 'c', so it must not be taken for the gap between a and c
    assert hit is not None and [p.name for p, _ in hit] == ["a", "c"]


def test_anchored_skips_plumbing_and_unresolved_frames() -> None:
    fr = frames("vpanic()\n0xfffffffffb8c2361()\nfoo+0x5a(1)\nbar+0x1()\n", 1)
    assert match_frames([_pat("foo")], fr, anchored=True) is not None
    assert match_frames([_pat("bar")], fr, anchored=True) is None  # foo is the crash site, not bar


def test_module_checked_only_when_the_frame_shows_one() -> None:
    dollar_c = frames("cyclic_remove+0x38(fffffdce41a295c0)\n", 1)
    console = frames("ffffff0006761890 genunix:cyclic_remove+38 ()\n", 1, console=True)
    other = frames("ffffff0006761890 zfs:cyclic_remove+38 ()\n", 1, console=True)
    pat = [_pat("cyclic_remove", module="genunix|unix")]
    assert match_frames(pat, dollar_c) is not None
    assert match_frames(pat, console) is not None
    assert match_frames(pat, other) is None


# --- the 12476 pairing --------------------------------------------------------------------------------

def test_vhpet_pairs_by_value_with_line_evidence(sig12476) -> None:  # type: ignore[no-untyped-def]
    m = match(vhpet(), sig12476)
    assert m is not None and m.confidence is Confidence.PAIRED
    # values copied from the bug report: cyclic_reprogram_cyclic(fffffdc5496f0d40, c3, ...)
    assert m.value("cpu") == 0xFFFFFDC5496F0D40
    assert m.value("ndx") == 0xC3
    assert m.value("id") == 0xFFFFFDCE41A295C0
    assert m.partners[0].address == REMOVER_ADDR
    clauses = {e.clause: e for e in m.evidence}
    cpu = clauses["remover: same cyc_cpu (first argument of cyclic_reprogram_cyclic and cyclic_remove_here)"]
    assert cpu.holds and cpu.lines == (5, 30)  # cyclic_reprogram_cyclic line 5, cyclic_remove_here line 30
    sema = clauses["remover: semaphore is cyp_modify_wait of that cyc_cpu (cpu + 0xa0 on amd64)"]
    assert sema.holds and sema.lines == (5, 29)  # sema_p(fffffdc5496f0de0) is line 29
    ident = clauses["remover: same cyclic id (cyclic_reprogram and cyclic_remove)"]
    assert ident.holds and ident.lines == (6, 31)
    assert all(e.holds for e in m.evidence)


def test_remover_on_other_index_is_a_contradiction(sig12476) -> None:  # type: ignore[no-untyped-def]
    m = match(vhpet(REMOVER.replace("cyclic_remove_here+0xac(fffffdc5496f0d40, c3, 0, 0)",
                                    "cyclic_remove_here+0xac(fffffdc5496f0d40, c4, 0, 0)")), sig12476)
    assert m is not None and m.confidence is Confidence.LIKELY
    bad = [e for e in m.evidence if not e.holds]
    assert [e.clause for e in bad] == ["remover: same cyclic index"]
    assert bad[0].lines == (5, 30)
    assert any("does not pair" in n and "same cyclic index" in n for n in m.notes)


def test_semaphore_must_be_cpu_plus_a0(sig12476) -> None:  # type: ignore[no-untyped-def]
    m = match(vhpet(REMOVER.replace("sema_p+0x1d7(fffffdc5496f0de0)", "sema_p+0x1d7(fffffdc5496f0e00)")), sig12476)
    assert m is not None and m.confidence is Confidence.LIKELY
    assert [e.clause for e in m.evidence if not e.holds] == [
        "remover: semaphore is cyp_modify_wait of that cyc_cpu (cpu + 0xa0 on amd64)"]


def test_cyclic_id_checked_only_where_shown(sig12476) -> None:  # type: ignore[no-untyped-def]
    # the id clause is optional: a cyclic_remove frame printed without arguments still pairs
    m = match(vhpet(REMOVER.replace("cyclic_remove+0x38(fffffdce41a295c0)", "cyclic_remove+0x38()")), sig12476)
    assert m is not None and m.confidence is Confidence.PAIRED
    assert not any("cyclic id" in e.clause for e in m.evidence)


def test_remover_only_in_stacks_is_likely_with_its_address(sig12476) -> None:  # type: ignore[no-untyped-def]
    body = "\n".join(
        "                 " + f for f in
        ("swtch+0x141", "sema_p+0x1d7", "cyclic_remove_here+0xac", "cyclic_remove+0x38", "vmm_glue_callout_drain+0x27")
    )
    th = thread(body, 40, 0xFFFFFF0449D3A0C0, SectionKind.STACKS, state="SLEEP", sobj="SEMA", count=1)
    m = match(replace(vatpit(), threads=(th,)), sig12476)
    assert m is not None and m.confidence is Confidence.LIKELY
    assert "ffffff0449d3a0c0::findstack -v" in [h.command for h in signature_hints(sig12476, m, replace(vatpit(), threads=(th,)))]
    assert any("::stacks shows no arguments" in n for n in m.notes)


def test_console_remover_without_arguments_does_not_pair(sig12476) -> None:  # type: ignore[no-untyped-def]
    body = (
        "fffffb04249a95d0 genunix:sema_p+1d7 ()\n"
        "fffffb04249a9650 unix:cyclic_remove_here+ac ()\n"
        "fffffb04249a9690 unix:cyclic_remove+38 ()\n"
        "fffffb04249a96c0 vmm:vmm_glue_callout_drain+27 ()\n"
    )
    con = stack(body, 50, command=None, console=True)
    d = vhpet()
    m = match(replace(d, threads=(), stacks=d.stacks + (con,)), sig12476)
    assert m is not None and m.confidence is Confidence.LIKELY
    assert m.candidates and not m.candidates[0].has_args


def test_vatpit_without_remover_is_likely_with_hints(sig12476) -> None:  # type: ignore[no-untyped-def]
    m = match(vatpit(), sig12476)
    assert m is not None and m.confidence is Confidence.LIKELY
    # no remover, no address: the command that finds one, never 'ADDR::findstack -v'
    assert [h.command for h in signature_hints(sig12476, m, vatpit())] == [
        "::stacks -c cyclic_remove_here | ::findstack -v"]
    assert m.value("ndx") == 0xB and m.frame("handler").function == "vatpit_callout_handler"  # type: ignore[union-attr]
    msg = [e for e in m.evidence if e.clause == "panic message"]
    assert msg and msg[0].lines == (7,)


def test_message_only_is_possible(sig12476) -> None:  # type: ignore[no-untyped-def]
    d = replace(vatpit(), panic_stack=None, stacks=())
    m = match(d, sig12476)
    assert m is not None and m.confidence is Confidence.POSSIBLE


def test_other_message_never_matches_even_with_the_stack(sig12476) -> None:  # type: ignore[no-untyped-def]
    d = replace(vatpit(), panic_message="deadman: timed out after 9 seconds of clock inactivity",
                status=status(3, panic_message="deadman: timed out after 9 seconds of clock inactivity", message_line=7))
    assert match(d, sig12476) is None


@pytest.mark.parametrize("xcall", ["cyclic_reprogram_xcall+0x1a(ffffff0000001000)",
                                   "~cyclic_reprogram_xcall+0x1a(1)"])  # found by name with mdb's ~ too
def test_excluded_remote_reprogram_frame(sig12476, xcall: str) -> None:  # type: ignore[no-untyped-def]
    text = f"vpanic()\ncyclic_reprogram_cyclic+0x97(fffffdc5496f0d40, c3, 1)\n{xcall}\n"
    st = stack(text, 1)
    d = Dump(panic_message="attempt to reprogram non-existent cyclic", panic_message_line=1, panic_stack=st, stacks=(st,))
    m = match(d, sig12476)
    # the message alone is still specific enough for `possible`, and the report says why not more
    assert m is not None and m.confidence is Confidence.POSSIBLE
    assert any("cyclic_reprogram_xcall" in n for n in m.notes)


def test_remover_alone_never_matches(sig12476) -> None:  # type: ignore[no-untyped-def]
    th = thread(REMOVER, 26, REMOVER_ADDR, SectionKind.FINDSTACK, "bhyve/1 [vcpu 0]")
    st = stack("dbuf_rele_and_unlock+0x33(fffffdc8a1b7c3e8, 0)\n", 5)
    msg = 'BAD TRAP: type=e (#pf Page fault) rp=fffffb04249a8c10 addr=28 occurred in module "zfs" due to a NULL pointer dereference'
    d = Dump(panic_message=msg, panic_message_line=1, panic_stack=st, stacks=(st,), threads=(th,))
    assert match(d, sig12476) is None


def test_hang_signature_refuses_a_real_panic() -> None:
    sig = signature_set().get("illumos-16183")
    assert sig is not None
    body = (
        "  fffffe007ad8b740 cyclic_juggle_one_to+0xbc(fffffe5973d9ef50, fffffe5931a04480)\n"
        "  fffffe007ad8b780 cyclic_move_here+0x88(fffffe5973d9ef50)\n"
        "  fffffe007ad8b7b0 vmm_glue_callout_localize+0x27(fffffe5969c2c3f0)\n"
        "  fffffe007ad8b800 vm_localize_resources+0x46(fffffe59739f1000, fffffe59739f14a0)\n"
    )
    th = thread(body, 8, 0xFFFFFE595A3DABE0)
    hung = Dump(threads=(th,))
    m = match(hung, sig)
    assert m is not None and m.confidence is Confidence.LIKELY and m.stuck_thread is th
    # its stack is shown with arguments already: no hint for it, only the command that counts the others
    assert [h.command for h in signature_hints(sig, m, hung)] == ["::stacks -c cyclic_juggle_one_to"]
    assert match(replace(hung, panic_message="kernel heap corruption detected"), sig) is None


# --- the fast paths give the matcher's own answers ----------------------------------------------------

def _regex_only(sig: Signature) -> Signature:
    # the same signature with every plain-name pattern wrapped in a group, so no set lookup, exclude
    # set or thread prefilter applies: the matcher's reference answers
    def pats(ps: tuple[FramePattern, ...]) -> tuple[FramePattern, ...]:
        return tuple(replace(p, name=p.name or p.function.pattern, function=re.compile(f"(?:{p.function.pattern})"))
                     for p in ps)

    crash = replace(sig.crash, frames=pats(sig.crash.frames),
                    exclude=tuple(re.compile(f"(?:{p.pattern})") for p in sig.crash.exclude))
    slow = replace(sig, crash=crash, threads=tuple(replace(t, frames=pats(t.frames)) for t in sig.threads))
    assert all(p.literals is None for p in slow.crash.frames) and slow.crash.exclude_names in (None, frozenset())
    return slow


def _tilde(text: str) -> str:
    # '~' before every function name, as some mdb output marks a frame; the matcher strips it
    return re.sub(r"^(\s*[0-9a-f]{16} )", r"\1~", text, flags=re.M)


def _variants() -> list[Dump]:
    sleeping = "\n".join("                 " + f for f in ("swtch+0x141", "sema_p+0x1d7", "biowait+0xa4"))
    remover_stacks = "\n".join(
        "                 " + f for f in ("swtch+0x141", "sema_p+0x1d7", "cyclic_remove_here+0xac", "cyclic_remove+0x38",
                                          "vmm_glue_callout_drain+0x27"))
    padding = tuple(thread(sleeping, 100 + 5 * i, 0xFFFFFE0000000000 + i, SectionKind.STACKS, state="SLEEP")
                    for i in range(6))
    d = vhpet()
    return [
        d, vatpit(), vhpet(_tilde(REMOVER)),
        replace(d, threads=padding + d.threads + padding),
        replace(d, threads=padding + (thread(remover_stacks, 90, 0xFFFFFF0449D3A0C0, SectionKind.STACKS),) + d.threads),
        replace(d, threads=()),
        replace(vatpit(), threads=padding),
    ]


@pytest.mark.parametrize("index", range(7))
def test_set_lookups_and_prefilter_agree_with_the_regexes(index: int) -> None:
    d = _variants()[index]
    for sig in signature_set():
        fast, slow = match(d, sig), match(d, _regex_only(sig))
        assert (fast is None) == (slow is None), sig.id
        if fast is not None and slow is not None:
            assert replace(slow, signature=sig) == fast, sig.id


def test_fixtures_match_as_with_the_regexes() -> None:
    pytest.importorskip("dumpscope.parse")
    from dumpscope.parse import parse_transcript

    for path in sorted(TRANSCRIPTS.glob("*.txt")):
        d = parse_transcript(path.read_text(encoding="utf-8", errors="replace"), path.name)
        for sig in signature_set():
            fast, slow = match(d, sig), match(d, _regex_only(sig))
            assert (None if slow is None else replace(slow, signature=sig)) == fast, (path.name, sig.id)


def test_tilde_names_still_pair(sig12476) -> None:  # type: ignore[no-untyped-def]
    m = match(vhpet(_tilde(REMOVER)), sig12476)
    assert m is not None and m.confidence is Confidence.PAIRED


def test_the_panicking_thread_is_never_its_own_partner(sig12476) -> None:  # type: ignore[no-untyped-def]
    d = vhpet()
    assert match(d, sig12476).confidence is Confidence.PAIRED  # type: ignore[union-attr]
    for dump in (replace(d, threads=(d.threads[0]._replace(is_panic=True),)),
                 replace(d, panic_thread_address=REMOVER_ADDR)):
        m = match(dump, sig12476)
        assert m is not None and m.confidence is Confidence.LIKELY and not m.candidates


def test_a_thread_is_named_as_findstack_names_it_whether_or_not_its_description_kept_parentheses() -> None:
    # the one builder of 'thread ADDR (description)' (candidates, stuck threads, a hang's stack owner)
    assert thread_label(0xFFFFFE55D37B8080, "(bhyve/1 [vcpu 0])") == "thread fffffe55d37b8080 (bhyve/1 [vcpu 0])"
    assert thread_label(0xFFFFFE55D37B8080, "bhyve/1 [vcpu 0]") == "thread fffffe55d37b8080 (bhyve/1 [vcpu 0])"
    assert thread_label(0xABC, None) == thread_label(0xABC, "") == "thread abc"
