"""The data-driven driver: one test per golden fixture, checking its hand-written .expect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import TRIAGE_KEYS, error_fixtures, read_expect, read_text, transcript_fixtures
from dumpscope.bucket import bucket
from dumpscope.cli import main
from dumpscope.dump import Dump, Frame, Trap
from dumpscope.parse import parse_transcript
from dumpscope.render import render_verdict_text

FIXTURES = transcript_fixtures()


def _all_frames(dump: Dump) -> list[Frame]:
    frames = [f for s in dump.stacks for f in s.frames]
    frames += [f for t in dump.threads for f in t.frames]
    return frames


def test_there_are_fixtures() -> None:
    assert len(FIXTURES) >= 25


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_parse_expectations(path: Path) -> None:
    exp = read_expect(path.with_suffix(".expect"))
    dump = parse_transcript(read_text(path), path.name)

    want = exp.get("PANIC_MESSAGE")
    if want is not None:
        assert (dump.panic_message or "none") == want
    want = exp.get("PANIC_MESSAGE_LINE")
    if want is not None:
        assert dump.panic_message_line == int(want)
    want = exp.get("PLATFORM")
    if want is not None:
        assert (dump.platform or "none") == want
    want = exp.get("HOST")
    if want is not None:
        assert (dump.status.host if dump.status else "none") == want
    want = exp.get("PANIC_THREAD")
    if want is not None:
        got = f"{dump.panic_thread_address:x}" if dump.panic_thread_address is not None else "none"
        assert got == want

    want = exp.get("PANIC_STACK")
    if want is not None:
        if want == "none":
            assert dump.panic_stack is None
        else:
            count, first, last, *line = want.split()
            st = dump.panic_stack
            assert st is not None, "no panic stack"
            assert len(st.frames) == int(count)
            assert st.frames[0].function == first
            assert st.frames[-1].function == last
            if line:
                assert st.line == int(line[0])

    by_line = {f.line: f for f in _all_frames(dump)}
    for spec in exp.all("FRAME"):
        line, text = spec.split(None, 1)
        assert int(line) in by_line, f"no frame parsed at line {line}"
        assert by_line[int(line)].text == text

    want = exp.get("FRAMES_TOTAL")
    if want is not None:
        assert len(_all_frames(dump)) == int(want)
    want = exp.get("THREADS")
    if want is not None:
        assert len(dump.threads) == int(want)
    threads = {f"{t.address:x}": t for t in dump.threads if t.address is not None}
    for spec in exp.all("THREAD"):
        m = re.fullmatch(r"(?P<addr>[0-9a-f]+) frames=(?P<n>\d+)(?: desc=(?P<desc>.*))?", spec)
        assert m, f"bad THREAD spec {spec!r}"
        t = threads.get(m["addr"])
        assert t is not None, f"thread {m['addr']} not parsed"
        assert len(t.frames) == int(m["n"])
        if m["desc"] is not None:
            assert t.description == m["desc"]
    for spec in exp.all("STATUS_FIELD"):
        name, _, value = spec.partition("=")
        assert dump.status is not None
        assert str(getattr(dump.status, name.strip())) == value.strip()
    for want in exp.all("NOTE"):
        assert any(want in n for n in dump.notes), f"no note containing {want!r} in {dump.notes}"

    want = exp.get("TRAPS")
    if want is not None:
        assert len(dump.traps) == int(want)
    for spec in exp.all("TRAP"):
        name, _, value = spec.partition("=")
        assert dump.trap is not None, "no trap record"
        assert trap_field(dump.trap, name.strip()) == value.strip()
    for spec in exp.all("FMA_FIELD"):
        name, _, value = spec.partition("=")
        assert dump.fma is not None, "no FMA panic record"
        assert dump.fma.get(name.strip()) == value.strip()


def trap_field(trap: Trap, name: str) -> str:
    """A trap record's field as an .expect writes it: addresses in bare hex, pid/cpu/level in decimal."""
    value = getattr(trap, name)
    if value is None:
        return "none"
    if isinstance(value, int) and name in ("pc", "sp", "addr", "rp"):
        return f"{value:x}"
    return str(value)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_triage_expectations(path: Path) -> None:
    exp = read_expect(path.with_suffix(".expect"))
    keys = {k for k, _ in exp.items}
    if not keys & TRIAGE_KEYS:
        pytest.skip("no triage expectations in this fixture")
    triage = pytest.importorskip("dumpscope.triage")
    v = triage.triage_text(read_text(path), path.name)
    assert v.status == "ok", v.error
    want = exp.get("SIGNATURE")
    if want is not None:
        assert (v.signature or "none") == want
    for unwanted in exp.all("NOT_SIGNATURE"):
        assert v.signature != unwanted
    want = exp.get("CONFIDENCE")
    if want is not None:
        assert (v.confidence.value if v.confidence else "none") == want
    for want in exp.all("TITLE"):
        assert want in v.title, f"title {v.title!r} lacks {want!r}"
    for unwanted in exp.all("NOT_TITLE"):
        assert unwanted not in v.title, f"title {v.title!r} has {unwanted!r}"
    for want in exp.all("CRASH_FUNCTION"):
        # the crash's own title (the bucket's), which a known signature's title replaces in the verdict
        own = bucket(parse_transcript(read_text(path), path.name), read_text(path)).title
        assert want in own, f"bucket title {own!r} does not name the crashing function {want!r}"
    for want in exp.all("VERDICT_NOTE"):
        assert any(want in n for n in v.notes), f"no verdict note containing {want!r} in {v.notes}"
    want = exp.get("FIX")
    if want is not None:
        assert (v.fix.status.value if v.fix else "none") == want
    for want in exp.all("HINT"):
        assert any(want in h.command for h in v.hints), f"no hint containing {want!r} in {v.hints}"
    if exp.all("NOT_HINT"):  # 'no hint says X' means something only where hints are printed at all
        assert v.hints, "NOT_HINT is checked against an empty hint list"
    for unwanted in exp.all("NOT_HINT"):
        assert not any(unwanted in h.command for h in v.hints), f"a hint contains {unwanted!r}: {v.hints}"
    events = [e.text for e in v.events]
    for want in exp.all("EVENT"):
        assert any(want in e for e in events), f"no event containing {want!r} in {events}"
    if exp.all("NOT_EVENT"):
        assert events, "NOT_EVENT is checked against an empty sequence of events"
    for unwanted in exp.all("NOT_EVENT"):
        assert not any(unwanted in e for e in events), f"an event contains {unwanted!r}: {events}"
    text = render_verdict_text(v)
    for want in exp.all("TEXT"):
        assert want in text, f"the text output lacks {want!r}:\n{text}"
    for unwanted in exp.all("NOT_TEXT"):
        assert unwanted not in text, f"the text output has {unwanted!r}:\n{text}"
    cited = {line for e in v.evidence for line in e.lines}
    for want in exp.all("EVIDENCE_LINE"):
        assert int(want) in cited, f"line {want} not cited as evidence ({sorted(cited)})"
    other = exp.get("BUCKET_SAME_AS")
    if other is not None:
        other_path = path.with_name(other + ".txt")
        w = triage.triage_text(read_text(other_path), other_path.name)
        assert v.bucket == w.bucket
    for other in exp.all("BUCKET_DIFFERENT_FROM"):
        other_path = path.with_name(other + ".txt")
        w = triage.triage_text(read_text(other_path), other_path.name)
        assert v.bucket != w.bucket, f"shares bucket {v.bucket} with {other}"


ERROR_FIXTURES = error_fixtures()


def test_there_are_error_fixtures() -> None:
    assert len(ERROR_FIXTURES) >= 4


@pytest.mark.parametrize("path", ERROR_FIXTURES, ids=[p.stem for p in ERROR_FIXTURES])
def test_error_fixture_through_the_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = read_expect(path.with_suffix(".expect"))
    with pytest.raises(SystemExit) as exc:
        main(["parse", str(path)])
    out, err = capsys.readouterr()
    assert int(exc.value.code or 0) == int(exp.get("EXIT") or 0)
    assert "Traceback" not in err
    want = exp.get("ERROR")
    if want is not None:
        assert want in err and err.count("\n") == 1
    for note in exp.all("NOTE"):
        assert note in out
