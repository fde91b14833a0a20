"""The verdict cache: cached rows equal fresh ones, changes are re-analysed, only the named file is written."""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from _triage_samples import OTHER, POSITIVE, other

import dumpscope.bulk as bulk_mod
import dumpscope.cache as cache_mod
import dumpscope.triage as triage_mod
from dumpscope.bulk import triage_all, triage_rows
from dumpscope.cache import (
    BRIEF_FIELDS,
    Cache,
    brief_of,
    brief_verdict,
    content_json,
    json_line,
    restore,
    stamp_of,
    verdict_from_json,
)
from dumpscope.errors import InputError
from dumpscope.render import (
    render_csv,
    render_summary,
    render_table,
    summary_rows,
    to_json_line,
    verdict_to_json,
)
from dumpscope.verdict import Confidence, Event, Evidence, Fix, FixStatus, Hint, ShownFrame, ShownTrap, Verdict


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

        def counted(text: str, source: str = "<input>", signatures=None) -> Verdict:  # type: ignore[no-untyped-def]
            self.calls.append(source)
            return real(text, source, signatures)

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


def test_a_read_only_cache_reads_what_was_written_and_refuses_what_is_not_ours(tmp_path: Path) -> None:
    # How pool workers open the cache: the one read-only open (connect_readonly) of dumpscope's file.
    path = tmp_path / "c.db"
    v = _full_verdict()
    with Cache(str(path), "s", "v") as rw:
        rw.put("d1", v)
    before = path.read_bytes()
    ro = Cache(str(path), "s", "v", readonly=True)
    try:
        assert ro.get_json("d1") == content_json(v) and ro.get_json_many(["d1", "d2"]) == {"d1": content_json(v)}
        ro.put("d2", v)
        ro.flush()  # a read-only cache writes nothing
        with pytest.raises(sqlite3.OperationalError):
            ro.db.execute("DELETE FROM verdicts")
    finally:
        ro.close()
    assert path.read_bytes() == before
    theirs = tmp_path / "app.db"
    db = sqlite3.connect(theirs)
    db.execute("CREATE TABLE accounts (id INTEGER)")
    db.commit()
    db.close()
    for where in (theirs, tmp_path / "missing.db"):
        with pytest.raises(InputError):
            Cache(str(where), "s", "v", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def _full_verdict() -> Verdict:
    return Verdict(
        source="x/y.txt", status="ok", error=None, panic_message="attempt to reprogram non-existent cyclic",
        platform="joyent_20180216T202957Z", host="dent", signature="illumos-12476",
        confidence=Confidence.PAIRED, bucket="9bcae4dcf7", title="cyclic reprogramming can race with removal",
        bugs=("illumos 12476", "SmartOS OS-6684"),
        evidence=(Evidence("panic message", (13,), True, "m"), Evidence("same cpu", (17, 40), False, "cpu=1 vs 2")),
        fix=Fix(("illumos-gate cb2d1b02",), FixStatus.PREDATES_FIX, "2018 < 2019"),
        events=(Event("one", (13,)), Event("two", (), True)),
        hints=(Hint("::stacks -c cyclic_remove_here | ::findstack -v", "shows the remover"),),
        notes=("decompressed gzip", "n2"),
        panic_thread="thread ffffff01 on cpu 3", replay="replay confirms",
        stack=(ShownFrame(12, "vpanic()", True), ShownFrame(13, "cyclic_reprogram_cyclic+0x97(1, c3)")),
        key_frames=("cyclic_reprogram_cyclic", "cyclic_reprogram"), unchecked=("the panic message",),
        conclusion="the source's conclusion",
        trap=ShownTrap(20, 38, (("type", "e (#pf Page fault)"), ("addr", "ffffff049f4c6000"))),
        stack_owner="thread fffffe007a3e1c20 (psradm/1), RUN",
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


# --- what a cached re-run reads: the pre-check in batches, rows spliced or briefed --------------------


def _verdicts() -> list[Verdict]:
    """Verdicts whose JSON has every awkward spot: notes or none, quotes, the splice markers in text."""
    full = _full_verdict()
    return [
        full,
        Verdict("s", "ok", bucket="b", title="t"),
        Verdict("s", "error", error="no mdb output", bucket="db9a05daa5", title="no crash found in transcript"),
        replace(full, notes=(), title='a "quoted" title with "source":"" and "notes":[ inside',
                events=(Event('"notes":["x"]'), Event("\\", (1, 2))), panic_message="caf\u00e9 \x1b[31m \u4e2d"),
    ]


@pytest.mark.parametrize("name", ["dumps/a.txt", 'we"ird\\name \u00e9\u4e2d.txt', "bad-\udcff-byte.txt", ""])
@pytest.mark.parametrize("read_notes", [(), ("decompressed gzip",), ("decompressed xz", 'non-UTF-8 "bytes"')])
def test_spliced_json_line_equals_the_fresh_row(name: str, read_notes: tuple[str, ...]) -> None:
    for v in _verdicts():
        fresh = replace(v, source=name, notes=read_notes + v.notes)
        doc = content_json(fresh, read_notes)
        assert json_line(doc, name, read_notes) == to_json_line(verdict_to_json(fresh))


def test_json_line_of_an_unexpected_shape_takes_the_slow_way() -> None:
    v = _full_verdict()
    doc = content_json(v).replace('"source":""', '"source": ""')  # not as our encoder writes it
    assert json_line(doc, "x/y.txt") == to_json_line(verdict_to_json(v))


def test_brief_verdict_renders_as_the_full_verdict() -> None:
    # The table, the CSV and --summary must read nothing beyond BRIEF_FIELDS, or cached re-runs in
    # those formats would print less than fresh runs: compare on verdicts with every field set.
    full = _verdicts()
    brief = [brief_verdict(v.source, brief_of(v)) for v in full]
    assert render_table(brief) == render_table(full)
    assert render_csv(brief) == render_csv(full)
    assert render_summary(brief) == render_summary(full)
    assert summary_rows(brief) == summary_rows(full)
    for b, v in zip(brief, full, strict=True):
        assert {f: getattr(b, f) for f in BRIEF_FIELDS} == {f: getattr(v, f) for f in BRIEF_FIELDS}


def test_lookup_many_in_batches_with_duplicates_racy_and_changed_stamps(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "_BATCH", 3)  # several IN (...) queries for a handful of files
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    files = []
    for i in range(8):
        f = tmp_path / f"f{i}.txt"
        f.write_text(f"text {i}\n")
        files.append(str(f))
    stamps = [stamp_of(f) for f in files]
    assert all(s is not None for s in stamps)
    with Cache(str(tmp_path / "c.db"), "s", "v") as c:
        for i, st in enumerate(stamps[:6]):
            assert st is not None
            c.put_file(st, f"d{i}", ("decompressed gzip",) if i == 1 else ())
            if i % 2 == 0:  # content with a verdict under this signature set
                c.put(f"d{i}", Verdict("", "ok", bucket=f"b{i}", title=f"t{i}", platform="p"))
        c.flush()
        (tmp_path / "f2.txt").write_text("changed, longer text\n")
        now = [stamp_of(f) for f in files]
        now.append(now[0])  # the same file named twice
        now.insert(3, replace(now[3], racy=True))  # type: ignore[type-var]
        got = c.lookup_many(now)  # type: ignore[arg-type]
        assert [None if k is None else k.digest for k in got] == ["d0", "d1", None, None, "d3", "d4", "d5", None, None,
                                                                    "d0"]
        assert [None if k is None or k.brief is None else k.brief[4] for k in got] == [
            "b0", None, None, None, None, "b4", None, None, None, "b0"]
        assert got[1] is not None and got[1].notes == ("decompressed gzip",)
        assert [c.lookup(s) for s in now] == got  # type: ignore[arg-type]
        assert c.get_json_many(["d0", "d1", "d4", "d0"]).keys() == {"d0", "d4"}


@pytest.mark.parametrize("path", ["a.txt", "./a.txt", "sub/../a.txt", "sub//b.txt", "ABS/a.txt", "ABS//sub/./b.txt"])
def test_stamp_key_is_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub" / "b.txt").write_text("y")
    monkeypatch.chdir(tmp_path)
    path = path.replace("ABS", str(tmp_path))
    want = os.fsencode(os.path.abspath(path))
    for st in (stamp_of(path), stamp_of(path, cwd=str(tmp_path)), stamp_of(path, cwd=str(tmp_path) + "/")):
        assert st is not None and st.key == want


def test_a_cache_of_the_previous_schema_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE verdicts (digest TEXT, sigset TEXT, version TEXT, verdict TEXT)")
    old.execute("INSERT INTO verdicts VALUES ('d', 's', 'v', '{}')")
    old.execute(f"PRAGMA application_id={cache_mod._APP_ID}")
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    d = _dir(tmp_path)
    fresh = list(triage_all([str(d)], jobs=1))
    assert _run([str(d)], db) == fresh
    assert _run([str(d)], db) == fresh
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA user_version").fetchone()[0] == cache_mod.CACHE_SCHEMA
    assert check.execute("SELECT count(*) FROM verdicts WHERE digest = 'd'").fetchone()[0] == 0
    check.close()


def test_rows_from_the_cache_equal_fresh_rows_in_every_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    d = _dir(tmp_path)
    (d / "prose.txt").write_text("hello\nnot a transcript\n")  # an error verdict of the content: cached too
    fresh = list(triage_all([str(d)], jobs=1))
    _run([str(d)], tmp_path / "c.db")
    counter = _Counter(monkeypatch)
    with Cache(str(tmp_path / "c.db"), "sig-A", "test-version") as c:
        full = list(triage_rows([str(d)], jobs=1, cache=c))
        brief = list(triage_rows([str(d)], jobs=1, cache=c, docs=False))
    assert counter.calls == []
    assert [r.verdict() for r in full] == fresh
    assert [r.json_line() for r in full] == [to_json_line(verdict_to_json(v)) for v in fresh]
    assert [(r.source, r.status, r.error) for r in brief] == [(v.source, v.status, v.error) for v in fresh]
    assert render_table([r.table_verdict() for r in brief]) == render_table(fresh)
    assert render_csv([r.table_verdict() for r in brief]) == render_csv(fresh)
    cached = [r for r in brief if r.source != str(d / "empty.txt")]
    with pytest.raises(ValueError, match="without its document"):
        cached[0].verdict()
    assert sum(r.status == "error" for r in brief) == 2  # empty.txt (never cached) and prose.txt (cached)


def test_a_verdict_gone_from_the_cache_since_the_pre_check_is_triaged_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    d = _dir(tmp_path)
    fresh = list(triage_all([str(d)], jobs=1))
    _run([str(d)], tmp_path / "c.db")
    # the briefs are found, the documents are not (another run rebuilt the cache in between)
    monkeypatch.setattr(Cache, "get_json_many", lambda self, digests: {})
    monkeypatch.setattr(Cache, "get_json", lambda self, digest: None)
    counter = _Counter(monkeypatch)
    assert _run([str(d)], tmp_path / "c.db") == fresh
    assert len(counter.calls) == 3


def test_a_rerun_from_the_cache_starts_no_pool_and_loads_no_parser(tmp_path: Path) -> None:
    d = _dir(tmp_path)
    db = tmp_path / "c.db"
    script = f"""
import sys
import dumpscope.cache as cache_mod
cache_mod.RACY_NS = -10**18
import dumpscope.bulk as bulk
from dumpscope.cache import Cache
def run():
    with Cache({str(db)!r}, "s", "v") as c:
        return [r.json_line() for r in bulk.triage_rows([{str(d)!r}], jobs=2, cache=c)]
first = run()
for name in [m for m in sys.modules if m.startswith(("dumpscope.", "lark", "concurrent", "multiprocessing"))]:
    if name not in ("dumpscope.cache", "dumpscope.bulk"):
        del sys.modules[name]
bulk._pooled = None  # a pool would fail
again = run()
assert again == first, "rows differ"
loaded = sorted(m for m in sys.modules if m.startswith(("dumpscope.triage", "dumpscope.parse", "lark",
                                                         "concurrent", "multiprocessing")))
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
