"""Bulk triage: every input exactly once, in stable order, bad inputs as error rows, same rows with any --jobs."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from pathlib import Path

import pytest
from _triage_samples import OTHER, POSITIVE, other, positive

import dumpscope.triage as triage_mod
from dumpscope.bulk import error_verdict, triage_all
from dumpscope.render import summary_rows

ROOT = Path(__file__).resolve().parent.parent
MIX = ROOT / "fixtures" / "dirs" / "corpus-mix"
MIX_EXPECTED = ROOT / "fixtures" / "dirs" / "corpus-mix.expected.tsv"


def _tree(tmp: Path) -> Path:
    """A dump directory with nested folders, compressed copies and every kind of bad file."""
    d = tmp / "dumps"
    (d / "rack1" / "cn3").mkdir(parents=True)
    (d / "rack2").mkdir()
    (d / "rack1" / "cn3" / "vmcore.0.txt").write_text(POSITIVE)
    (d / "rack1" / "other.txt").write_text(OTHER)
    (d / "rack2" / "pos.txt.gz").write_bytes(gzip.compress(POSITIVE.encode(), mtime=0))
    (d / "rack2" / "pos.txt.bz2").write_bytes(bz2.compress(POSITIVE.encode()))
    (d / "rack2" / "other.txt.xz").write_bytes(lzma.compress(OTHER.encode()))
    (d / "empty.txt").write_bytes(b"")
    (d / "core.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (d / "latin1.txt").write_bytes(bytes(range(0xA0, 0x100)) * 8)
    (d / ".hidden.txt").write_text(POSITIVE)  # dot files are not inputs
    os.symlink("..", d / "rack1" / "cn3" / "up")  # a directory loop: walked once
    os.symlink("selfloop", d / "selfloop")  # a symlink loop on itself: an error row
    return d


def test_bad_inputs_each_appear_once_in_stable_order(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    missing = str(tmp_path / "no-such-dump.txt")
    stdin = io.BytesIO(OTHER.encode())
    rows = list(triage_all([str(d), missing, "-"], jobs=1, stdin=stdin))
    # Byte-wise sorted relative paths within the directory, then the other arguments as given.
    want = ["core.bin", "empty.txt", "latin1.txt", "rack1/cn3/vmcore.0.txt", "rack1/other.txt",
            "rack2/other.txt.xz", "rack2/pos.txt.bz2", "rack2/pos.txt.gz", "selfloop"]
    assert [r.source for r in rows] == [os.path.join(str(d), w) for w in want] + [missing, "<stdin>"]
    by = {r.source.removeprefix(str(d) + "/"): r for r in rows}
    errors = {k: r.error for k, r in by.items() if r.status == "error"}
    assert errors == {
        "core.bin": "binary file (NUL bytes)",
        "empty.txt": "empty file",
        "latin1.txt": "not UTF-8 text",
        "selfloop": "symlink loop",
        missing: "no such file",
    }
    for r in rows:
        if r.status == "error":
            assert r.bucket == "" and r.title == f"error: {r.error}" and r.signature is None
    for name in ("rack1/cn3/vmcore.0.txt", "rack2/pos.txt.gz", "rack2/pos.txt.bz2"):
        assert (by[name].status, by[name].signature, by[name].confidence) == ("ok", "illumos-12476", "likely")
    for name in ("rack1/other.txt", "rack2/other.txt.xz", "<stdin>"):
        assert (by[name].status, by[name].signature) == ("ok", None)
        assert by[name].title.startswith("BAD TRAP")
    # compressed inputs say so in their notes; the plain copy does not
    assert "decompressed gzip" in by["rack2/pos.txt.gz"].notes
    assert not any(n.startswith("decompressed") for n in by["rack1/cn3/vmcore.0.txt"].notes)


def _twenty(tmp: Path) -> list[str]:
    d = tmp / "twenty"
    d.mkdir()
    for i in range(20):
        if i % 7 == 3:
            data = b"" if i % 2 else b"\x00\x01\x02binary"
        elif i % 2:
            data = positive(cpu=f"ffffff03eb14{i:04x}", ndx=f"{i:x}", host=f"cn{i}").encode()
        else:
            data = other(addr=f"ffffff0d4b7e{i:04x}", host=f"cn{i}").encode()
        (d / f"dump{i:02d}.txt").write_bytes(data)
    return [str(d), str(tmp / "missing.txt")]


def test_jobs_1_and_2_give_identical_rows_in_identical_order(tmp_path: Path) -> None:
    paths = _twenty(tmp_path)
    one = list(triage_all(paths, jobs=1))
    two = list(triage_all(paths, jobs=2))
    assert len(one) == 21
    assert one == two
    # the right verdict sits on the right row: odd files are the positives with their own host
    for i, row in enumerate(one[:20]):
        assert row.source.endswith(f"dump{i:02d}.txt")
        if i % 7 == 3:
            assert row.status == "error"
        elif i % 2:
            assert (row.signature, row.host) == ("illumos-12476", f"cn{i}")
        else:
            assert (row.signature, row.host) == (None, f"cn{i}")
    assert one[20].error == "no such file"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_triage_that_raises_becomes_one_error_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    real = triage_mod.triage_text

    def flaky(text: str, source: str = "<input>", signatures=None):  # type: ignore[no-untyped-def]
        if "cn4" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return real(text, source, signatures)

    monkeypatch.setattr(triage_mod, "triage_text", flaky)  # forked workers inherit the patch
    paths = _twenty(tmp_path)
    rows = list(triage_all(paths, jobs=jobs))
    assert len(rows) == 21
    bad = [r for r in rows if r.error and r.error.startswith("internal error")]
    assert [r.source for r in bad] == [os.path.join(paths[0], "dump04.txt")]
    assert bad[0].error == "internal error: RecursionError: maximum recursion depth exceeded"
    assert rows[5].signature == "illumos-12476"  # the neighbours are untouched


def test_stdin_is_read_once_even_when_named_twice() -> None:
    stdin = io.BytesIO(POSITIVE.encode())
    rows = list(triage_all(["-", "-"], jobs=2, stdin=stdin))
    assert [r.source for r in rows] == ["<stdin>", "<stdin>"]
    assert rows[0] == rows[1]
    assert rows[0].signature == "illumos-12476"


def test_progress_reports_every_input(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    rows = list(triage_all(_twenty(tmp_path), jobs=1, progress=lambda d, t: seen.append((d, t))))
    assert seen == [(i, 21) for i in range(1, 22)]
    assert len(rows) == 21


def test_error_verdict_shape() -> None:
    v = error_verdict("x.txt", "empty file")
    assert (v.status, v.error, v.bucket, v.title, v.signature) == ("error", "empty file", "", "error: empty file", None)


# --- the corpus-mix directory (fixtures/dirs) -------------------------------------------------------


def _expected() -> list[tuple[str, str, str]]:
    rows = []
    for line in MIX_EXPECTED.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, status, sig, _why = line.split("\t")
        rows.append((path, status, sig))
    return rows


def test_corpus_mix_directory_matches_hand_written_expectations() -> None:
    expected = _expected()
    on_disk = sorted((str(p.relative_to(MIX)) for p in MIX.rglob("*") if p.is_file()), key=os.fsencode)
    assert sorted(p for p, _, _ in expected) == sorted(on_disk), "expected.tsv and the directory disagree"
    rows = list(triage_all([str(MIX)], jobs=2))
    got = [(r.source.removeprefix(str(MIX) + "/"), r.status, r.signature or "-") for r in rows]
    assert [g[0] for g in got] == on_disk  # every file once, byte-wise order
    wrong = [(g, e) for g, e in zip(got, sorted(expected, key=lambda e: os.fsencode(e[0])), strict=True) if g != e]
    assert not wrong, "\n".join(f"got {g}, expected {e}" for g, e in wrong)


def test_corpus_mix_summary_groups_as_the_sources_say() -> None:
    expected = _expected()
    groups = {(g["group"], g["key"]): g for g in summary_rows(triage_all([str(MIX)], jobs=1))}
    for sig in {s for _, st, s in expected if s != "-"}:
        want = sum(1 for _, st, s in expected if s == sig)
        assert groups[("signature", sig)]["count"] == want, sig
    assert groups[("error", "error")]["count"] == sum(1 for _, st, _ in expected if st == "error")
    # the 12476 group: the vatpit dump and its gzip copy, both on joyent_20180216T202957Z (INDEX/001)
    g = groups[("signature", "illumos-12476")]
    assert (g["first_build"], g["last_build"]) == ("joyent_20180216T202957Z", "joyent_20180216T202957Z")
    assert g["example"].endswith("compressed/001-illumos-12476-cyclic-reprogram-vatpit.txt.gz")


def test_compact_worker_rows_equal_fresh_verdict_rows() -> None:
    # compact=True: workers send fresh verdicts as brief + stored JSON; every output form the CLI
    # makes of such a row must equal the one made of the Verdict itself
    from dumpscope.bulk import triage_rows
    from dumpscope.render import to_json_line, verdict_to_json

    fresh = list(triage_all([str(MIX)], jobs=1))
    rows = list(triage_rows([str(MIX)], jobs=2, compact=True))
    assert [r.source for r in rows] == [v.source for v in fresh]
    assert any(r._verdict is None for r in rows), "no row came back compact: the test would be vacuous"
    for row, v in zip(rows, fresh, strict=True):
        assert row.json_line() == to_json_line(verdict_to_json(v))
        assert (row.status, row.error) == (v.status, v.error)
        brief = row.table_verdict()
        assert (brief.signature, brief.confidence, brief.bucket, brief.title, brief.platform) == \
            (v.signature, v.confidence, v.bucket, v.title, v.platform)
        assert row.verdict() == v


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_size_limit_is_the_options_own_in_process_in_workers_and_on_stdin(tmp_path: Path, jobs: int) -> None:
    from dumpscope.analyse import Options

    (tmp_path / "small.txt").write_text("> ::status\npanic message: tiny\n")
    (tmp_path / "big.txt").write_text(POSITIVE)
    limit = len(POSITIVE.encode()) - 1
    rows = list(triage_all([str(tmp_path), "-"], jobs=jobs, stdin=io.BytesIO(POSITIVE.encode()),
                           options=Options(max_bytes=limit)))
    assert [(Path(v.source).name, v.status) for v in rows] == [("big.txt", "error"), ("small.txt", "ok"),
                                                                ("<stdin>", "error")]
    assert all(v.error and v.error.startswith("too large") for v in (rows[0], rows[2]))


def test_the_pool_and_a_runner_are_handed_the_same_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One record carries the run's settings to pool workers and to Dask tasks alike: what one gets,
    # the other gets, including the options' size limit, the time limit and the compact form.
    import dumpscope.bulk as bulk_mod
    from dumpscope.analyse import Options
    from dumpscope.crashdir import select

    handed: dict[str, object] = {}

    def pooled(names, workers, run, cache_args):  # type: ignore[no-untyped-def]
        handed["pool"] = run
        return (bulk_mod._process_path(name, run) for name in names)

    class Runner:
        def select(self, paths, include=(), exclude=()):  # type: ignore[no-untyped-def]
            return select(paths, include, exclude)

        def results(self, names, run):  # type: ignore[no-untyped-def]
            handed["runner"] = run
            return (bulk_mod._process_path(name, run) for name in names)

        def close(self) -> None:
            pass

    monkeypatch.setattr(bulk_mod, "_pooled", pooled)
    paths = _twenty(tmp_path)[:3]
    options = Options(max_bytes=12345)
    pool_rows = [r.json_line() for r in bulk_mod.triage_rows(paths, jobs=2, compact=True, options=options, timeout=7)]
    dask_rows = [r.json_line() for r in bulk_mod.triage_rows(paths, runner=Runner(), compact=True, options=options,
                                                             timeout=7)]
    assert pool_rows == dask_rows
    assert handed["pool"] == handed["runner"]
    run = handed["pool"]
    assert (run.options.max_bytes, run.timeout, run.compact) == (12345, 7, True)  # type: ignore[attr-defined]
