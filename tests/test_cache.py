"""The verdict cache: cached rows equal fresh ones, changes are re-analysed, only the named file is written."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import pytest
from _triage_samples import OTHER, POSITIVE, other

import dumpscope.bulk as bulk_mod
import dumpscope.cache as cache_mod
import dumpscope.triage as triage_mod
from dumpscope.bulk import triage_all
from dumpscope.cache import Cache, content_json, restore
from dumpscope.errors import InputError
from dumpscope.render import verdict_from_json, verdict_to_json
from dumpscope.verdict import Confidence, Evidence, Fix, FixStatus, Verdict


def _dir(tmp: Path) -> Path:
    d = tmp / "dumps"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text(POSITIVE)
    (d / "sub" / "b.txt").write_text(OTHER)
    (d / "sub" / "a-copy.txt.gz").write_bytes(gzip.compress(POSITIVE.encode(), mtime=0))
    (d / "empty.txt").write_bytes(b"")
    return d


class _Counter:
    """Wraps triage_text and counts calls (in-process runs only: jobs=1)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = triage_mod.triage_text

        def counted(text: str, source: str = "<input>") -> Verdict:
            self.calls.append(source)
            return real(text, source)

        monkeypatch.setattr(triage_mod, "triage_text", counted)


def _run(paths: list[str], db: Path, sigset: str = "sig-A", jobs: int = 1) -> list[Verdict]:
    with Cache(str(db), sigset, "test-version") as c:
        return list(triage_all(paths, jobs=jobs, cache=c))


@pytest.mark.parametrize("jobs", [1, 2])
def test_cached_rows_are_identical_to_fresh_rows(tmp_path: Path, jobs: int) -> None:
    d = _dir(tmp_path)
    fresh = list(triage_all([str(d)], jobs=1))
    first = _run([str(d)], tmp_path / "c.db", jobs=jobs)
    again = _run([str(d)], tmp_path / "c.db", jobs=jobs)
    assert first == fresh
    assert again == fresh
    # the gzip copy shares its content row with a.txt but keeps its own name and read note
    gz = next(v for v in again if v.source.endswith("a-copy.txt.gz"))
    assert gz.notes[0] == "decompressed gzip"
    assert next(v for v in again if v.source.endswith("/a.txt")).notes[:1] != ("decompressed gzip",)


def test_rerun_triages_nothing_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _dir(tmp_path)
    _run([str(d)], tmp_path / "c.db")
    counter = _Counter(monkeypatch)
    rows = _run([str(d)], tmp_path / "c.db")
    assert counter.calls == []
    assert len(rows) == 4


def test_unchanged_stamp_is_not_even_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Files written a moment ago are "racy" (their stamp may not change on the next write), so make
    # every stamp trustworthy for this test.
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    d = _dir(tmp_path)
    _run([str(d)], tmp_path / "c.db")
    reads: list[str] = []
    real = bulk_mod.read_source

    def counted(path: str, **kw):  # type: ignore[no-untyped-def]
        reads.append(path)
        return real(path, **kw)

    monkeypatch.setattr(bulk_mod, "read_source", counted)
    rows = _run([str(d)], tmp_path / "c.db")
    assert reads == [str(d / "empty.txt")]  # unreadable inputs are never cached
    assert [r.status for r in rows] == ["ok", "error", "ok", "ok"]


def test_changed_file_is_analysed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    d = _dir(tmp_path)
    first = _run([str(d)], tmp_path / "c.db")
    b = d / "sub" / "b.txt"
    st = os.stat(b)
    new = other(host="cn9")  # same length as OTHER's host 'cn7': same size
    assert len(new) == len(OTHER)
    b.write_text(new)
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime restored
    counter = _Counter(monkeypatch)
    second = _run([str(d)], tmp_path / "c.db")
    assert counter.calls == [str(b)]
    row = next(v for v in second if v.source == str(b))
    assert row.host == "cn9"
    assert next(v for v in first if v.source == str(b)).host == "cn7"


def test_signature_set_change_invalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _dir(tmp_path)
    _run([str(d)], tmp_path / "c.db", sigset="sig-A")
    counter = _Counter(monkeypatch)
    _run([str(d)], tmp_path / "c.db", sigset="sig-B")
    assert len(counter.calls) == 3  # every readable input, none reused from sig-A
    counter.calls.clear()
    _run([str(d)], tmp_path / "c.db", sigset="sig-B")
    assert counter.calls == []


def test_only_the_named_path_is_written(tmp_path: Path) -> None:
    d = _dir(tmp_path)
    cdir = tmp_path / "cachedir"
    cdir.mkdir()
    before = sorted(p.name for p in d.rglob("*"))
    _run([str(d)], cdir / "dumps.cache", jobs=2)
    _run([str(d)], cdir / "dumps.cache", jobs=2)
    assert sorted(p.name for p in cdir.iterdir()) == ["dumps.cache"]
    assert sorted(p.name for p in d.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cachedir", "dumps"]


def test_refuses_a_database_that_is_not_ours(tmp_path: Path) -> None:
    theirs = tmp_path / "app.db"
    db = sqlite3.connect(theirs)
    db.execute("CREATE TABLE accounts (id INTEGER)")
    db.commit()
    db.close()
    before = theirs.read_bytes()
    with pytest.raises(InputError, match="not a dumpscope cache"):
        Cache(str(theirs), "s", "v")
    assert theirs.read_bytes() == before
    junk = tmp_path / "notes.txt"
    junk.write_text("my notes, not a database\n" * 100)
    with pytest.raises(InputError, match="notes.txt"):
        Cache(str(junk), "s", "v")
    assert junk.read_text() == "my notes, not a database\n" * 100


def _full_verdict() -> Verdict:
    return Verdict(
        source="x/y.txt", status="ok", error=None, panic_message="attempt to reprogram non-existent cyclic",
        platform="joyent_20180216T202957Z", host="dent", signature="illumos-12476",
        confidence=Confidence.PAIRED, bucket="9bcae4dcf7", title="cyclic reprogramming can race with removal",
        bugs=("illumos 12476", "SmartOS OS-6684"),
        evidence=(Evidence("panic message", (13,), True, "m"), Evidence("same cpu", (17, 40), False, "cpu=1 vs 2")),
        fix=Fix(("illumos-gate cb2d1b02",), FixStatus.PREDATES_FIX, "2018 < 2019"),
        events=("one", "two"), hints=("::stacks -c cyclic_remove_here",), notes=("decompressed gzip", "n2"),
        panic_thread="thread ffffff01 on cpu 3", replay="replay confirms",
    )


def test_verdict_json_round_trip_is_exact() -> None:
    v = _full_verdict()
    assert verdict_from_json(verdict_to_json(v)) == v
    assert verdict_from_json(verdict_to_json(Verdict("s", "error", error="empty file"))) == Verdict(
        "s", "error", error="empty file")
    # the cache form drops the name and the input's read notes, and restore puts them back
    doc = content_json(v, ("decompressed gzip",))
    assert "x/y.txt" not in doc and "decompressed gzip" not in doc
    assert restore(doc, "x/y.txt", ("decompressed gzip",)) == v
    back = restore(doc, "other.txt")
    assert back.source == "other.txt" and back.notes == ("n2",)
    assert isinstance(back.confidence, Confidence) and isinstance(back.fix.status, FixStatus)  # type: ignore[union-attr]
