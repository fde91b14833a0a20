"""The crash history (issue 16): three triage passes over a changing directory, statuses, --new-only, --since."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _triage_samples import assertion, other, positive

from dumpscope.cli import main
from dumpscope.history import Status, history_rows, parse_since, read_dumps

# A VERIFY in vn_rele from zfs_inactive that no shipped signature names (_triage_samples.assertion). By
# hand from issue 5's bucket rules: the panic plumbing (vpanic, assfail) is skipped, so the bucket is
# titled for the first meaningful frame.
ASSERT_VN_RELE = assertion()
# The 12476 panic on a SmartOS build of 2020-06-01: after OS-6684 (illumos-joyent, 2019-07-18), so a
# known bug on a build that has its fix: a regression.
FIXED_BUILD = "joyent_20200601T000000Z"


def _triage(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(args)
    out, err = capsys.readouterr()
    return int(ex.value.code or 0), out, err


def _history(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, dict]:
    rc, out, err = _triage(["history", "--db", str(db), "-f", "json", *extra], capsys)
    assert (rc, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(r["schema"] == "dumpscope.history/1" for r in rows)
    return {r["key"] if r["group"] == "signature" else r["title"]: r for r in rows}


ZFS = "BAD TRAP: page fault (NULL pointer dereference) in dbuf_rele_and_unlock"
VN_RELE = "assertion failed in vn_rele"


def test_three_passes_show_new_recurring_and_regressed_rows(tmp_path: Path, capsys) -> None:
    d = tmp_path / "crash"
    d.mkdir()
    db = tmp_path / "crashes.db"
    # pass 1: a 12476 panic on a build before the fix, and a zfs NULL dereference
    (d / "h1-vmdump.0.txt").write_text(positive(host="h1"))
    (d / "cn7-vmdump.0.txt").write_text(other(host="cn7"))
    rc, _, _ = _triage(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)
    assert rc == 0
    h = _history(db, capsys)
    assert {k: (r["status"], r["count"]) for k, r in h.items()} == {"illumos-12476": ("new", 1), ZFS: ("new", 1)}
    assert h["illumos-12476"]["hosts"] == ["h1"] and h["illumos-12476"]["fix"] == {"predates-fix": 1}

    # pass 2: the zfs crash again on another host (other content), a new assertion, and copies of the
    # pass-1 12476 dump (renamed, and gzipped): the same dump, never counted twice
    (d / "cn8-vmdump.0.txt").write_text(other(addr="ffffff0d4b7e9b50", host="cn8"))
    (d / "cn9-vmdump.0.txt").write_text(ASSERT_VN_RELE)
    (d / "copy-of-h1.txt").write_text(positive(host="h1"))
    (d / "h1-vmdump.0.txt.gz").write_bytes(gzip.compress(positive(host="h1").encode(), mtime=0))
    rc, _, _ = _triage(["triage", "-f", "json", "--db", str(db), str(d)], capsys)
    assert rc == 0
    h = _history(db, capsys)
    assert {k: (r["status"], r["count"]) for k, r in h.items()} == {
        "illumos-12476": ("recurring", 1), ZFS: ("recurring", 2), VN_RELE: ("new", 1)}
    assert h[ZFS]["hosts"] == ["cn7", "cn8"]
    assert h[VN_RELE]["first_build"] == h[VN_RELE]["last_build"] == "joyent_20190110T001522Z"

    # pass 3: the 12476 panic on a build that has the fix: the signature regressed. --new-only prints
    # that input alone (the others are not new to the history) and exits 4.
    (d / "h3-vmdump.0.txt").write_text(positive(host="h3").replace("joyent_20180216T202957Z", FIXED_BUILD))
    rc, out, err = _triage(["triage", "-f", "csv", "--db", str(db), "--new-only", str(d)], capsys)
    assert rc == 4
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["file"].rsplit("/", 1)[-1], r["signature"], r["platform"]) for r in rows] == [
        ("h3-vmdump.0.txt", "illumos-12476", FIXED_BUILD)]
    h = _history(db, capsys)
    assert {k: (r["status"], r["count"]) for k, r in h.items()} == {
        "illumos-12476": ("regressed", 2), ZFS: ("recurring", 2), VN_RELE: ("recurring", 1)}
    r = h["illumos-12476"]
    assert (r["first_build"], r["last_build"], r["regressions"]) == ("joyent_20180216T202957Z", FIXED_BUILD, 1)
    assert r["fix"] == {"has-fix": 1, "predates-fix": 1} and r["hosts"] == ["h1", "h3"]
    assert list(h) == ["illumos-12476", ZFS, VN_RELE]  # regressed first, then by count

    # pass 4, nothing changed: nothing is new to the history, nothing printed, exit 0
    rc, out, _ = _triage(["triage", "-f", "csv", "--db", str(db), "--new-only", str(d)], capsys)
    assert (rc, out) == (0, "")
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 4
    assert con.execute("SELECT count(*) FROM dumps").fetchone()[0] == 5
    assert con.execute("SELECT inputs FROM runs WHERE id = 4").fetchone()[0] == 7
    assert con.execute("SELECT max(last_run) FROM dumps").fetchone()[0] == 3  # run 4 changed no dump's row
    con.close()


def test_new_only_on_a_fresh_history_prints_everything_and_exits_4(tmp_path: Path, capsys) -> None:
    d = tmp_path / "crash"
    d.mkdir()
    (d / "a.txt").write_text(other())
    (d / "b.txt").write_text("not a transcript\n")  # an error row: exit 4 still wins over 1
    rc, out, err = _triage(["triage", "-f", "json", "--db", str(tmp_path / "h.db"), "--new-only", str(d)], capsys)
    assert rc == 4
    assert [json.loads(line)["source"].rsplit("/", 1)[-1] for line in out.splitlines()] == ["a.txt"]
    assert "b.txt" in err


def test_new_only_without_a_database_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text(other())
    rc, _, err = _triage(["triage", "--new-only", str(tmp_path / "a.txt")], capsys)
    assert rc == 2 and "--db" in err


def test_db_and_cache_are_one_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text(other())
    db = tmp_path / "one.db"
    rc, _, _ = _triage(["triage", "--cache", str(db), str(tmp_path / "a.txt")], capsys)
    assert rc == 0
    h = _history(db, capsys)
    assert h[ZFS]["count"] == 1
    rc, _, err = _triage(["triage", "--cache", str(db), "--db", str(tmp_path / "two.db"), str(tmp_path / "a.txt")],
                         capsys)
    assert rc == 2 and "same file" in err


def test_since_quiet_and_the_text_and_csv_forms(tmp_path: Path, capsys) -> None:
    d = tmp_path / "crash"
    d.mkdir()
    (d / "a.txt").write_text(other())
    (d / "b.txt").write_text(positive())
    db = tmp_path / "h.db"
    assert _triage(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)[0] == 0
    assert _history(db, capsys, "--since", "2999-01-01") == {}
    assert set(_history(db, capsys, "--since", "1d")) == {"illumos-12476", ZFS}
    rc, out, _ = _triage(["history", "--db", str(db)], capsys)
    assert rc == 0 and out.splitlines()[0].split()[:2] == ["status", "signature/bucket"]
    assert "illumos-12476" in out and "new" in out
    rc, out, _ = _triage(["history", "--db", str(db), "-f", "csv"], capsys)
    assert [r["status"] for r in csv.DictReader(io.StringIO(out))] == ["new", "new"]
    # 40 days on, with no new dump: quiet; a second run later makes the rows recurring, not new
    dumps, latest = read_dumps(str(db))
    later = datetime.now(UTC) + timedelta(days=40)
    assert {r.status for r in history_rows(dumps, latest, now=later)} == {Status.NEW}  # still the latest run's
    assert _triage(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)[0] == 0
    dumps, latest = read_dumps(str(db))
    assert {r.status for r in history_rows(dumps, latest, now=later)} == {Status.QUIET}
    assert {r.status for r in history_rows(dumps, latest, now=later, quiet_days=60)} == {Status.RECURRING}


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "7x"])
def test_a_bad_since_is_a_clear_error(tmp_path: Path, capsys, bad: str) -> None:
    (tmp_path / "a.txt").write_text(other())
    db = tmp_path / "h.db"
    assert _triage(["triage", "-f", "csv", "--db", str(db), str(tmp_path / "a.txt")], capsys)[0] == 0
    rc, out, err = _triage(["history", "--db", str(db), "--since", bad], capsys)
    assert (rc, out) == (1, "") and "--since" in err and err.count("\n") == 1


def test_parse_since_forms() -> None:
    now = datetime(2026, 12, 4, 16, 55, 28, tzinfo=UTC)
    assert parse_since("2026-12-01") == "2026-12-01T00:00:00Z"
    assert parse_since("2026-12-01T06:00+01:00") == "2026-12-01T05:00:00Z"
    assert parse_since("7d", now) == "2026-11-27T16:55:28Z"
    assert parse_since("2w", now) == "2026-11-20T16:55:28Z"


@pytest.mark.parametrize("what", ["missing", "not-ours"])
def test_history_of_a_file_that_is_not_a_history_is_an_error(tmp_path: Path, capsys, what: str) -> None:
    db = tmp_path / "x.db"
    if what == "not-ours":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
    rc, out, err = _triage(["history", "--db", str(db)], capsys)
    assert (rc, out) == (1, "") and str(db) in err and err.count("\n") == 1
    assert what != "missing" or not db.exists()  # reading never creates the file


def test_history_needs_a_database(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUMPSCOPE_DB", raising=False)
    rc, _, err = _triage(["history"], capsys)
    assert rc == 2 and "--db" in err


def test_a_cache_from_before_the_history_fills_it_from_its_stored_verdicts(tmp_path: Path, capsys,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import dumpscope.cache as cache_mod

    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)  # trust the stamps: the re-run reads brief rows only
    (tmp_path / "a.txt").write_text(other(host="cn7"))
    db = tmp_path / "h.db"
    assert _triage(["triage", "-f", "csv", "-j", "1", "--cache", str(db), str(tmp_path / "a.txt")], capsys)[0] == 0
    con = sqlite3.connect(db)
    con.execute("DELETE FROM dumps")  # as a schema-2 cache migrated in place has it: verdicts, no history
    con.commit()
    con.close()
    assert _triage(["triage", "-f", "csv", "-j", "1", "--db", str(db), str(tmp_path / "a.txt")], capsys)[0] == 0
    h = _history(db, capsys)
    assert h[ZFS]["hosts"] == ["cn7"] and h[ZFS]["count"] == 1


def test_a_site_note_with_a_fixed_build_makes_later_dumps_regressions(tmp_path: Path, capsys) -> None:
    d = tmp_path / "crash"
    d.mkdir()
    db = tmp_path / "h.db"
    (d / "cn7.txt").write_text(other(host="cn7"))  # built 2015-01-23
    assert _triage(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)[0] == 0
    zfs_bucket = _history(db, capsys)[ZFS]["key"]
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.toml").write_text(f"""
[[bucket_notes]]
bucket = "{zfs_bucket}"
ticket = "https://tracker.example.com/OPS-17"
owner = "storage team"
fixed = "joyent_20160101T000000Z"
""")
    # the same crash on a 2017 build: past the build the site says fixed it
    (d / "cn8.txt").write_text(other(host="cn8", addr="ffffff0d4b7e9b50").replace(
        "joyent_20150123T195942Z", "joyent_20170101T000000Z"))
    rc, out, _ = _triage(["triage", "-f", "csv", "--db", str(db), "--signatures", str(site), "--new-only", str(d)],
                         capsys)
    assert rc == 4
    assert [r["file"].rsplit("/", 1)[-1] for r in csv.DictReader(io.StringIO(out))] == ["cn8.txt"]
    h = _history(db, capsys, "--signatures", str(site))
    assert (h[ZFS]["status"], h[ZFS]["regressions"], h[ZFS]["count"]) == ("regressed", 1, 2)
    assert _history(db, capsys)[ZFS]["status"] == "recurring"  # without the site's notes
    rc, html, _ = _triage(["report", "--db", str(db), "--signatures", str(site)], capsys)
    assert rc == 0 and 'href="https://tracker.example.com/OPS-17"' in html and "owner storage team" in html


@pytest.mark.parametrize(("build", "fixed", "after"), [
    ("joyent_20170101T000000Z", "joyent_20160101T000000Z", True),
    ("joyent_20150123T195942Z", "joyent_20160101T000000Z", False),
    ("omnios-r151048", "omnios-r151046", True),
    ("omnios-r151044", "omnios-r151046", False),
    ("helios-3.0.240", "helios-3.0.99", True),
    ("helios-3.0.240", "omnios-r151046", False),  # other names: not comparable
    ("joyent_20170101T000000Z", "omnios-r151046", False),
    ("helios-" + "9" * 5000, "helios-1", True),  # a long run of digits is read in bounded pieces
])
def test_built_after(build: str, fixed: str, after: bool) -> None:
    from dumpscope.history import built_after

    assert built_after(build, fixed) is after


def test_history_csv_cells_from_transcripts_never_start_a_formula(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text(other(host="=HYPERLINK(\"http://x\")").replace(
        "joyent_20150123T195942Z", "@SUM(1+1)"))
    db = tmp_path / "h.db"
    assert _triage(["triage", "-f", "csv", "--db", str(db), str(tmp_path / "a.txt")], capsys)[0] == 0
    rc, out, _ = _triage(["history", "--db", str(db), "-f", "csv"], capsys)
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and row["hosts"] == "'=HYPERLINK(\"http://x\")"
    assert row["first_build"] == row["last_build"] == "'@SUM(1+1)"


def test_the_cli_quiet_days_default_is_the_history_default() -> None:
    from dumpscope import cli, history

    assert cli.QUIET_DAYS == history.DEFAULT_QUIET_DAYS


def test_example_verdicts_take_each_rows_newest_stored_verdict_in_one_query(tmp_path: Path, capsys,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import dumpscope.cache as cache_mod
    from dumpscope.history import example_verdicts

    d = tmp_path / "crash"
    d.mkdir()
    db = tmp_path / "h.db"
    (d / "cn7.txt").write_text(other(host="cn7"))
    (d / "h1.txt").write_text(positive(host="h1"))
    assert _triage(["triage", "-f", "csv", "-j", "1", "--db", str(db), str(d)], capsys)[0] == 0
    (d / "cn8.txt").write_text(other(addr="ffffff0d4b7e9b50", host="cn8"))  # the zfs row's newest dump
    assert _triage(["triage", "-f", "csv", "-j", "1", "--db", str(db), str(d)], capsys)[0] == 0
    dumps, latest = read_dumps(str(db))
    rows = {r.key if r.group == "signature" else r.title: r for r in history_rows(dumps, latest)}
    zfs, known = rows[ZFS], rows["illumos-12476"]
    assert [Path(x.source).name for x in zfs.dumps] == ["cn7.txt", "cn8.txt"]
    con = sqlite3.connect(db)
    # the newest zfs dump has no stored verdict: the row's example is the dump before it
    con.execute("DELETE FROM verdicts WHERE digest = ?", (zfs.dumps[-1].digest,))
    # the 12476 dump's verdict stored again, later, by another dumpscope: the latest one written is shown
    con.execute("INSERT INTO verdicts SELECT digest, sigset, 'other-version', replace(verdict, ?, ?) "
                "FROM verdicts WHERE digest = ?", ('"host":"h1"', '"host":"h1-again"', known.dumps[-1].digest))
    con.commit()
    con.close()

    statements: list[str] = []
    connect = cache_mod.connect_readonly

    def traced(path: str) -> sqlite3.Connection:
        c = connect(path)
        c.set_trace_callback(statements.append)
        return c

    monkeypatch.setattr(cache_mod, "connect_readonly", traced)
    found = example_verdicts(str(db), [zfs, known])
    assert [(Path(v.source).name, v.host) if v else None for v in found] == [("cn7.txt", "cn7"), ("h1.txt", "h1-again")]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
