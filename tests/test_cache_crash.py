"""The cache after a crash (issue 18): a run killed mid-write leaves a file that opens, a corrupt file is
moved aside and rebuilt with every row still printed, and a path that cannot be a database is a clear error."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _triage_samples import other, positive

import dumpscope.cache as cache_mod
from dumpscope.cache import Cache
from dumpscope.cli import main
from dumpscope.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

# A child that fills a cache and is killed by SIGKILL in the middle of its second batch: SQLite's
# progress handler runs every 100 VM steps, so the kill lands at the same point of the same INSERT
# every time. A page cache of 8 pages makes SQLite spill changed pages into the database file long
# before the commit, which is where a journal kept in memory (the old journal_mode=MEMORY) left a
# half-written file behind. It talks to Cache through its private _db so it runs on the old code too.
_CHILD = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import dumpscope.cache as cm

    real = sqlite3.connect
    def small_cache(*a, **k):
        db = real(*a, **k)
        db.execute("PRAGMA cache_size=8")
        return db
    sqlite3.connect = small_cache

    path, kill_at = sys.argv[1], int(sys.argv[2])
    doc = '{"x":"' + "v" * 3000 + '"}'
    brief = ("ok", None, None, None, "b", "t", None)
    c = cm.Cache(path, "s", "v")
    for i in range(300):
        c.put_json("first-%05d" % i, doc, brief)
    c.flush()
    steps = [0]
    def tick():
        steps[0] += 1
        if steps[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0
    c._db.set_progress_handler(tick, 100)
    for i in range(1500):
        c.put_json("second-%05d" % i, doc, brief)
    c.flush()
    print("not killed")
""")


@pytest.mark.parametrize("kill_at", [150, 700])
def test_a_run_killed_in_the_middle_of_a_cache_write_leaves_a_cache_that_opens(
        tmp_path: Path, kill_at: int, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    child = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(kill_at)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stdout + child.stderr  # killed in the middle, as meant
    # the committed first batch is intact, the killed second batch rolled back as a whole
    with Cache(str(db), "s", "v") as c:
        assert c.get_json("first-00299") is not None
        assert c.get_json("second-00000") is None
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check.execute("SELECT count(*) FROM verdicts").fetchone()[0] == 300
    check.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]  # the journal was rolled back and removed
    # and the next run uses it and prints every row
    d = tmp_path / "dumps"
    d.mkdir()
    for i in range(4):
        (d / f"p{i}.txt").write_text(positive(host=f"h{i}"))
    (d / "o.txt").write_text(other())
    with pytest.raises(SystemExit) as ex:
        main(["triage", "-f", "csv", "-j", "1", "--cache", str(db), str(d)])
    out = capsys.readouterr().out
    assert ex.value.code == 0
    assert len(out.splitlines()) == 1 + 5


def _filled(tmp_path: Path) -> tuple[Path, Path]:
    d = tmp_path / "dumps"
    d.mkdir()
    for i in range(6):
        (d / f"p{i}.txt").write_text(positive(host=f"h{i}", cpu=f"ffffff03eb14{i:04x}"))
    for i in range(6):
        (d / f"o{i}.txt").write_text(other(addr=f"ffffff0d4b7e{i:04x}"))
    db = tmp_path / "c.db"
    with pytest.raises(SystemExit) as ex:
        main(["triage", "-f", "csv", "-j", "1", "--cache", str(db), str(d)])
    assert ex.value.code == 0
    return d, db


def _corrupt(db: Path, where: str) -> None:
    # Overwrite the schema (the first page after its 100-byte header) or every page after it with
    # garbage: the header still says "SQLite format 3" with our application_id, so the file is ours.
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 2 * page
    for i in range(100, page) if where == "schema" else range(page, len(data)):
        data[i] = (i * 7 + 13) % 256
    db.write_bytes(bytes(data))


@pytest.mark.parametrize(("fmt", "where"), [("csv", "tables"), ("json", "tables"), ("csv", "schema")])
def test_a_corrupt_cache_is_moved_aside_and_rebuilt_and_every_row_is_printed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fmt: str,
        where: str) -> None:
    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)  # trust the stamps of files written just now
    d, db = _filled(tmp_path)
    capsys.readouterr()
    _corrupt(db, where)
    with pytest.raises(SystemExit) as ex:
        main(["triage", "-f", fmt, "-j", "1", "--cache", str(db), str(d)])
    out, err = capsys.readouterr()
    assert ex.value.code == 0
    assert len(out.splitlines()) == (12 if fmt == "json" else 13)
    assert "warning" in err and "c.db.corrupt" in err
    assert (tmp_path / "c.db.corrupt").exists()
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert check.execute("SELECT count(*) FROM briefs").fetchone()[0] == 12  # rebuilt by this run
    assert check.execute("SELECT count(*) FROM dumps").fetchone()[0] == 12  # and the history of this run
    assert check.execute("SELECT count(*) FROM runs WHERE finished IS NOT NULL").fetchone()[0] == 1
    check.close()


@pytest.mark.parametrize("path", ["/dev/null", "DIR", "MISSING/x.db"])
def test_a_path_that_cannot_be_a_cache_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         path: str) -> None:
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "p.txt").write_text(positive())
    name = path.replace("DIR", str(tmp_path)).replace("MISSING", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as ex:
        main(["triage", "--cache", name, str(d / "p.txt")])
    err = capsys.readouterr().err
    assert ex.value.code == 1
    assert err.startswith(f"dumpscope: error: cache {name}: ") and "internal" not in err
    assert err.count("\n") == 1


def test_a_file_of_a_newer_schema_is_refused_not_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with Cache(str(db), "s", "v") as c:  # as a later dumpscope would leave it
        c.db.execute(f"PRAGMA user_version={cache_mod.CACHE_SCHEMA + 1}")
    before = db.read_bytes()
    with pytest.raises(InputError, match="newer dumpscope"):
        Cache(str(db), "s", "v")
    assert db.read_bytes() == before


def test_a_schema_2_cache_is_migrated_in_place_keeping_its_verdicts(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    with Cache(str(db), "s", "v") as c:  # made now, then taken back to schema 2: no history tables
        c.put_json("d", "{}", ("ok", None, None, None, "b", "t", None))
        c.flush()
        for table in ("runs", "dumps"):
            c.db.execute(f"DROP TABLE {table}")
        c.db.execute("PRAGMA user_version=2")
    with Cache(str(db), "s", "v") as c:
        assert c.get_json("d") == "{}"
        tables = {r[0] for r in c.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert c.db.execute("PRAGMA user_version").fetchone()[0] == cache_mod.CACHE_SCHEMA
    assert {"verdicts", "briefs", "files", "runs", "dumps"} <= tables
    assert os.path.exists(db) and not os.path.exists(str(db) + "-journal")
