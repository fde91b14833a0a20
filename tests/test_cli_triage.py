"""`dumpscope triage` end to end through cli.main: formats, JSON schema, exit codes, stderr, help."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _triage_samples import OTHER, POSITIVE

import dumpscope.signatures as signatures_mod
from dumpscope.cli import main

ROOT = Path(__file__).resolve().parent.parent
# issue 3 "Output" (at least these) plus the fields the brief adds, and the schema tag.
JSON_KEYS = {
    "schema", "source", "status", "error", "panic_message", "platform", "signature", "confidence", "bucket",
    "title", "evidence", "fix", "host", "bugs", "events", "hints", "notes", "panic_thread", "replay",
    "stack", "key_frames", "unchecked", "conclusion", "trap", "stack_owner",
}


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


class _Tty(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def run(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; stdin is a pipe holding `stdin`, or a terminal when None."""
    stream = _Stdin(io.BytesIO(stdin)) if stdin is not None else _Tty(io.BytesIO(b""))
    monkeypatch.setattr(sys, "stdin", stream)
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    d = tmp_path / "dumps"
    (d / "nested").mkdir(parents=True)
    (d / "a-positive.txt").write_text(POSITIVE)
    (d / "nested" / "b-other.txt").write_text(OTHER)
    return d


def test_single_file_defaults_to_text_with_the_verdict_first(dumps: Path, capsys, monkeypatch) -> None:
    rc, out, err = run(["triage", str(dumps / "a-positive.txt")], capsys, monkeypatch)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("illumos-12476 (likely): ")
    assert lines[0].endswith(" — " + str(dumps / "a-positive.txt"))
    assert "panic message: attempt to reprogram non-existent cyclic" in lines
    assert "confidence: likely" in lines
    assert "  ::stacks -c cyclic_remove_here | ::findstack -v" in lines
    # evidence: the panic message clause cites transcript line 5 (::status is lines 1-6)
    assert any(ln.startswith("  + panic message (line 5)") for ln in lines)


def test_explain_quotes_the_transcript_lines(dumps: Path, capsys, monkeypatch) -> None:
    rc, out, _ = run(["triage", "--explain", "-"], capsys, monkeypatch, stdin=POSITIVE.encode())
    assert rc == 0
    quoted = [" ".join(ln.split()) for ln in out.splitlines() if "|" in ln]
    assert "> 5 | panic message: attempt to reprogram non-existent cyclic" in quoted
    assert "> 9 | ffffff000f832950 cyclic_reprogram_cyclic+0xb0(ffffff03eb144000, b, 2cc15105498)" in quoted


def test_directory_defaults_to_a_table(dumps: Path, capsys, monkeypatch) -> None:
    rc, out, err = run(["triage", str(dumps)], capsys, monkeypatch)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["file", "title", "signature", "confidence", "bucket", "platform"]
    assert str(dumps / "a-positive.txt") in lines[2] and "illumos-12476" in lines[2]
    assert str(dumps / "nested" / "b-other.txt") in lines[3] and "joyent_20150123T195942Z" in lines[3]
    assert len(lines) == 4


def test_json_lines_same_schema_for_single_bulk_and_errors(dumps: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    rc, out, err = run(["triage", "--format", "json", str(dumps), str(empty), str(tmp_path / "gone")],
                       capsys, monkeypatch)
    assert rc == 1
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 4
    for doc in docs:
        assert set(doc) == JSON_KEYS
        assert doc["schema"] == "dumpscope.verdict/2"
    assert [d["status"] for d in docs] == ["ok", "ok", "error", "error"]
    assert docs[0]["signature"] == "illumos-12476" and docs[0]["confidence"] == "likely"
    assert docs[0]["evidence"][0].keys() == {"clause", "lines", "holds", "detail"}
    assert docs[0]["fix"].keys() == {"references", "status", "detail"}
    assert docs[0]["fix"]["status"] == "predates-fix"  # joyent_20180216T202957Z < OS-6684 (2019-07-18)
    assert docs[1]["signature"] is None and docs[1]["confidence"] is None and docs[1]["fix"] is None
    assert (docs[2]["error"], docs[3]["error"]) == ("empty file", "no such file")
    assert err.splitlines() == [f"dumpscope: error: {empty}: empty file",
                                f"dumpscope: error: {tmp_path / 'gone'}: no such file"]
    # keys sorted, one object per line (JSON Lines)
    assert out.splitlines()[0] == json.dumps(docs[0], sort_keys=True, separators=(",", ":"))
    rc1, one, _ = run(["triage", "-f", "json", str(dumps / "a-positive.txt")], capsys, monkeypatch)
    assert rc1 == 0 and json.loads(one) == docs[0]


def test_csv_has_the_table_columns_plus_status_and_error(dumps: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    rc, out, _ = run(["triage", "-f", "csv", str(dumps), str(tmp_path / "gone")], capsys, monkeypatch)
    assert rc == 1
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["file", "title", "signature", "confidence", "bucket", "platform", "status", "error"]
    assert rows[1][2:4] == ["illumos-12476", "likely"] and rows[1][6:] == ["ok", ""]
    assert rows[3][0] == str(tmp_path / "gone") and rows[3][6:] == ["error", "no such file"]


def test_summary_counts_signatures_buckets_and_errors(dumps: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (dumps / "c-positive-again.txt").write_text(POSITIVE.replace("from dent", "from cn2"))
    rc, out, _ = run(["triage", "--summary", str(dumps), str(tmp_path / "gone")], capsys, monkeypatch)
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["signature/bucket", "title", "count"]
    sig = next(ln for ln in lines if ln.startswith("illumos-12476"))
    assert " 2 " in sig and "joyent_20180216T202957Z" in sig and str(dumps / "a-positive.txt") in sig
    assert any(ln.startswith("bucket ") and " 1 " in ln for ln in lines)
    assert any(ln.startswith("error ") and " 1 " in ln for ln in lines)


def test_stdin_when_no_path_and_piped(capsys, monkeypatch) -> None:
    rc, out, err = run(["triage"], capsys, monkeypatch, stdin=OTHER.encode())
    assert (rc, err) == (0, "")
    assert out.splitlines()[0].startswith("unknown [")
    assert out.splitlines()[0].endswith("— <stdin>")


@pytest.mark.parametrize("args", [
    ["triage"],  # stdin is a terminal and no path
    ["triage", "--format", "yaml", "x"],
    ["triage", "--jobs", "-1", "x"],
    ["triage", "--explain", "--format", "json", "x"],
])
def test_usage_errors_exit_2(args: list[str], capsys, monkeypatch) -> None:
    rc, out, err = run(args, capsys, monkeypatch)
    assert rc == 2
    assert out == "" and "Traceback" not in err


def test_cache_option_writes_only_its_file_and_follows_the_signature_version(
        dumps: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "triage.cache"
    rc, first, _ = run(["triage", "-f", "json", "--cache", str(db), str(dumps)], capsys, monkeypatch)
    rc2, second, _ = run(["triage", "-f", "json", "--cache", str(db), str(dumps)], capsys, monkeypatch)
    assert (rc, rc2) == (0, 0) and first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dumps", "triage.cache"]
    # a new signature set: the old rows must not be reused (the command triages again)
    real = signatures_mod.signature_set
    monkeypatch.setattr(signatures_mod, "signature_set", lambda site=(): dataclasses.replace(real(site), version="changed"))
    import dumpscope.triage as triage_mod

    calls: list[str] = []
    real_triage = triage_mod.triage_text
    monkeypatch.setattr(triage_mod, "triage_text", lambda t, s="<input>", sigs=None: calls.append(s) or real_triage(t, s, sigs))
    rc3, third, _ = run(["triage", "-f", "json", "-j", "1", "--cache", str(db), str(dumps)], capsys, monkeypatch)
    assert rc3 == 0 and third == first
    assert len(calls) == 2


def test_help_documents_exit_codes_and_a_piped_example(capsys, monkeypatch) -> None:
    rc, out, _ = run(["triage", "--help"], capsys, monkeypatch)
    assert rc == 0
    text = " ".join(out.split())
    assert "classify crash dumps and transcripts, with evidence." in text
    assert "| dumpscope triage" in text
    for code in ("0 every input was triaged", "1 some inputs could not be read", "2 usage error"):
        assert code in text
    for opt in ("--format", "--jobs", "--summary", "--cache", "--explain"):
        assert opt in text


def test_subprocess_bad_input_no_traceback_exit_1(tmp_path: Path) -> None:
    binary = tmp_path / "raw.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    good = tmp_path / "good.txt"
    good.write_text(POSITIVE)
    proc = subprocess.run([sys.executable, "-m", "dumpscope", "triage", "-f", "json", str(binary), str(good)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"dumpscope: error: {binary}: binary file (NUL bytes)\n"
    assert [json.loads(x)["status"] for x in proc.stdout.splitlines()] == ["error", "ok"]


# --- cached re-runs through the CLI ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", [["-f", "json"], ["-f", "table"], ["-f", "csv"], ["--summary"], ["--summary", "-f", "json"],
                                 ["-f", "text"]])
def test_a_cached_rerun_prints_what_a_fresh_run_prints(fmt: list[str], tmp_path: Path, capsys, monkeypatch) -> None:
    import dumpscope.cache as cache_mod

    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)  # trust the stamps of files written just now
    d = tmp_path / "dumps"
    (d / "z").mkdir(parents=True)
    (d / "a-positive.txt").write_text(POSITIVE)
    (d / "b-other.txt.gz").write_bytes(gzip.compress(OTHER.encode(), mtime=0))  # a read note
    (d / "c-prose.txt").write_text("hello\nnot a transcript\n")  # an error verdict, cached
    (d / "d-empty.txt").write_bytes(b"")  # an error row, never cached
    (d / "z" / "e-positive-copy.txt").write_text(POSITIVE)  # same content as a-positive.txt
    db = str(tmp_path / "c.db")
    fresh = run(["triage", *fmt, str(d)], capsys, monkeypatch)
    first = run(["triage", *fmt, "--cache", db, str(d)], capsys, monkeypatch)
    import dumpscope.triage as triage_mod

    calls: list[str] = []
    real = triage_mod.triage_text
    monkeypatch.setattr(triage_mod, "triage_text", lambda t, s="<input>", sigs=None: calls.append(s) or real(t, s, sigs))
    again = run(["triage", *fmt, "-j", "1", "--cache", db, str(d)], capsys, monkeypatch)
    assert calls == []  # every row but the empty file came from the cache
    assert fresh == first == again
    assert fresh[0] == 1 and "c-prose.txt: no mdb output" in fresh[2] and "d-empty.txt: empty file" in fresh[2]


def test_a_changed_file_is_triaged_again_through_the_cli(tmp_path: Path, capsys, monkeypatch) -> None:
    import dumpscope.cache as cache_mod

    monkeypatch.setattr(cache_mod, "RACY_NS", -10**18)
    d = tmp_path / "dumps"
    d.mkdir()
    (d / "a.txt").write_text(POSITIVE)
    (d / "b.txt").write_text(OTHER)
    db = str(tmp_path / "c.db")
    _, before, _ = run(["triage", "-f", "json", "--cache", db, str(d)], capsys, monkeypatch)
    (d / "b.txt").write_text(OTHER.replace("from cn7", "from cn9"))
    _, after, _ = run(["triage", "-f", "json", "--cache", db, str(d)], capsys, monkeypatch)
    _, fresh, _ = run(["triage", "-f", "json", str(d)], capsys, monkeypatch)
    assert after == fresh
    hosts = [json.loads(line)["host"] for line in after.splitlines()]
    assert hosts == ["dent", "cn9"] and [json.loads(line)["host"] for line in before.splitlines()] == ["dent", "cn7"]
    _, table, _ = run(["triage", "-f", "table", "--cache", db, str(d)], capsys, monkeypatch)
    _, fresh_table, _ = run(["triage", "-f", "table", str(d)], capsys, monkeypatch)
    assert table == fresh_table




