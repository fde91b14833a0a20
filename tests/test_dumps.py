"""Crash dumps where they lie: savecore directories, mdb and savecore run on them (fake tools on the PATH).

Expected verdicts are read off the recorded sessions in fixtures/dumps/ (see its README): dent is the
12476 report's first dump (::status and $C; ::stacks -c cyclic_remove_here finds no thread), so it
stays `likely`; bhyve-b is the report's second dump, whose remover ::stacks lists without
arguments, so the first pass is `likely` with the hint fffffe55d37b8080::findstack -v and the
follow-up pass makes it `confirmed` (as seed-12476-vhpet-with-remover, the same stacks); broken-c
cannot be loaded by mdb.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

from dumpscope.analyse import Options, analyse, analyse_dump, dump_verdict
from dumpscope.crashdir import dump_files
from dumpscope.mdb import STANDARD_DCMDS, Tools, first_pass, follow_ups, mdb_argv
from dumpscope.signatures import signature_set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakes import FakeTools, crash_tree, install, write_dump  # noqa: E402

REMOVER_HINT = "fffffe55d37b8080::findstack -v"


run = run_cli


def snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    return install(tmp_path, monkeypatch)


def test_done_when_one_row_per_dump_likely_upgraded_and_a_second_run_starts_no_mdb(
        tmp_path: Path, fake: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    before = snapshot(crash)
    args = ["triage", str(crash), "--work", str(tmp_path / "work"), "--cache", str(tmp_path / "c.db"),
            "--format", "json"]
    rc, out, err = run(args, capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 1  # one dump cannot be read
    assert [r["source"] for r in rows] == [str(crash / "vmdump.0"), str(crash / "vmcore.1"), str(crash / "vmcore.2")]
    assert [(r["signature"], r["confidence"]) for r in rows[:2]] == [("illumos-12476", "likely"),
                                                                     ("illumos-12476", "confirmed")]
    assert any(n.startswith(f"follow-up pass ran {REMOVER_HINT}: likely -> confirmed") for n in rows[1]["notes"])
    assert rows[2]["status"] == "error"
    assert rows[2]["error"].startswith("mdb could not load the dump: failed to initialize target: dump is incomplete")
    assert "skipped 3 files: 3 savecore bookkeeping" in err
    # savecore once (dump 0), mdb: one pass each for dumps 0 and 2, two for dump 1
    assert len(fake.calls("savecore")) == 1
    assert len(fake.calls("mdb")) == 4
    assert snapshot(crash) == before  # nothing written into the crash directory

    rc2, out2, _ = run(args, capsys)
    assert (rc2, out2) == (rc, out)
    assert len(fake.calls()) == 5  # the second run started no mdb and no savecore


def test_the_real_invocations(tmp_path: Path, fake: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    work = tmp_path / "work"
    run(["triage", str(crash), "--work", str(work), "--jobs", "1"], capsys)
    (save,) = fake.calls("savecore")
    assert save[:2] == ["-f", str(crash / "vmdump.0")]
    assert Path(save[2]).parent == work / "savecore"  # into --work, never beside the dump
    mdb = fake.calls("mdb")
    first = "; ".join(f"::echo '> {c}'; {c}" for c in first_pass(signature_set()))
    assert mdb[0] == ["-e", first, save[2] + "/unix.0", save[2] + "/vmcore.0"]
    assert mdb[1] == ["-e", first, str(crash / "unix.1"), str(crash / "vmcore.1")]
    assert mdb[2] == ["-e", f"::echo '> {REMOVER_HINT}'; {REMOVER_HINT}", str(crash / "unix.1"), str(crash / "vmcore.1")]
    # the union of the standard set and what the signatures declare, without the {address} follow-ups
    cmds = first_pass(signature_set())
    assert cmds[:len(STANDARD_DCMDS)] == STANDARD_DCMDS
    assert "::stacks -c cyclic_remove_here" in cmds and not any("{" in c for c in cmds)
    # transcripts saved inside --work, reproducing the verdict without the dump
    saved = work / "transcripts" / (str(crash).strip("/").replace("/", "-") + ".dump.1.txt")
    rc, out, _ = run(["triage", "--format", "json", str(saved)], capsys)
    assert json.loads(out)["confidence"] == "confirmed"


def test_follow_ups_run_only_declared_dcmds_with_a_concrete_address() -> None:
    sigs = signature_set()
    hints = [REMOVER_HINT, "ADDR::findstack -v", "::stacks -c cyclic_remove_here", "fffff::findstack -v ! rm -rf /",
             "$C"]
    assert follow_ups(hints, sigs) == (REMOVER_HINT,)
    assert follow_ups(hints, sigs, done=(REMOVER_HINT,)) == ()


def test_save_transcripts_elsewhere_and_no_follow_up_without_an_address(
        tmp_path: Path, fake: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    rc, out, _ = run(["triage", str(crash / "vmdump.0"), "--work", str(tmp_path / "w"), "--save-transcripts",
                      str(tmp_path / "t"), "-f", "json"], capsys)
    row = json.loads(out)
    assert (row["signature"], row["confidence"]) == ("illumos-12476", "likely")
    assert len(fake.calls("mdb")) == 1  # no remover was listed, so no address to follow up
    (saved,) = (tmp_path / "t").iterdir()
    assert saved.name.endswith(".dump.0.txt") and saved.read_text().startswith("> ::status\n")


def test_a_dump_analysed_before_starts_no_tool_and_new_dcmds_run_alone(tmp_path: Path, fake: FakeTools) -> None:
    crash = crash_tree(tmp_path)
    d = dump_files(str(crash / "vmdump.0"))
    assert d is not None
    options = Options(tools=Tools.find(None, None, str(tmp_path / "w"), None))
    first, again = analyse_dump(d, options), analyse_dump(d, options)
    assert first.confidence == again.confidence == "likely"
    assert (len(fake.calls("savecore")), len(fake.calls("mdb"))) == (1, 1)
    assert again.notes[-1].startswith("mdb transcript of an earlier run reused: ")
    # a site signature that declares another dcmd: only that one runs, on the expansion already made
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme-x.toml").write_text('id = "acme-x"\ntitle = "x"\nbugs = ["X-1"]\ndcmds = ["::spa -v"]\n'
                                      '[crash]\nmessage = "no such panic"\n[[crash.frames]]\nfunction = "f"\n')
    assert analyse_dump(d, replace(options, site=(str(site),))).confidence == "likely"
    assert (len(fake.calls("savecore")), len(fake.calls("mdb"))) == (1, 2)
    assert fake.calls("mdb")[1][1] == "::echo '> ::spa -v'; ::spa -v"
    # the record lost: mdb runs again, on the expansion kept
    shutil.rmtree(tmp_path / "w" / "runs")
    analyse_dump(d, options)
    assert (len(fake.calls("savecore")), len(fake.calls("mdb"))) == (1, 3)


def test_without_a_cache_a_second_run_starts_no_mdb_either(tmp_path: Path, fake: FakeTools,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    args = ["triage", str(crash), "--work", str(tmp_path / "work"), "-f", "json"]
    first = [json.loads(line) for line in run(args, capsys)[1].splitlines()]
    calls = len(fake.calls())
    again = [json.loads(line) for line in run(args, capsys)[1].splitlines()]
    assert len(fake.calls()) == calls  # the saved transcripts (and mdb's failure) are reused
    assert [(r["confidence"], r["error"]) for r in again] == [(r["confidence"], r["error"]) for r in first]


def test_without_mdb_the_row_gives_the_exact_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    rc, out, err = run(["triage", str(crash), "--work", "/w", "-f", "json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    script = "; ".join(first_pass(signature_set()))
    assert rc == 1
    assert rows[0]["error"] == (f"needs mdb (illumos); save a transcript with: savecore -f {crash}/vmdump.0 /w && "
                                f"mdb -e '{script}' /w/unix.0 /w/vmcore.0 > dump.0.txt")
    assert rows[1]["error"] == (f"needs mdb (illumos); save a transcript with: mdb -e '{script}' {crash}/unix.1 "
                                f"{crash}/vmcore.1 > dump.1.txt")


def test_mdb_timeout_is_an_error_row_and_the_others_go_on(tmp_path: Path, fake: FakeTools,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    for n, host in ((0, "slow"), (1, "bhyve-b")):
        (crash / f"unix.{n}").write_bytes(b"x")
        write_dump(crash / f"vmcore.{n}", host)
    rc, out, _ = run(["triage", str(crash), "--work", str(tmp_path / "w"), "--mdb-timeout", "1", "-f", "json",
                      "--cache", str(tmp_path / "c.db")], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["error"] == "mdb timed out after 1 s (--mdb-timeout)"
    assert rows[1]["confidence"] == "confirmed"
    calls = len(fake.calls("mdb"))
    run(["triage", str(crash), "--work", str(tmp_path / "w"), "--mdb-timeout", "1", "-f", "json",
         "--cache", str(tmp_path / "c.db")], capsys)
    assert len(fake.calls("mdb")) == calls + 1  # a timeout is not cached: only the slow dump is tried again


def test_garbage_from_mdb_and_a_failing_savecore(tmp_path: Path, fake: FakeTools) -> None:
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "unix.0").write_bytes(b"x")
    write_dump(crash / "vmcore.0", "noisy")
    write_dump(crash / "vmdump.1", "nospace", compressed=True)
    (crash / "vmdump.2").write_bytes(b"\0" * 4096)  # no dump header at all
    options = Options(tools=Tools.find(None, None, str(tmp_path / "w"), None))
    v0, v1, v2 = (analyse(str(crash / n), options) for n in ("vmcore.0", "vmdump.1", "vmdump.2"))
    assert v0.status == "error" and v0.error is not None
    assert v0.error.startswith("mdb printed nothing dumpscope can read")
    assert v1.error == f"savecore failed: not enough space in {Path(fake.calls('savecore')[0][2])} (1 MB avail, 4096 MB needed)"
    assert v2.error == "savecore failed: bad magic number 0 (it wrote no unix.2 and vmcore.2)"
    # no savecore failure is cached: it may be this machine's (space), not the dump's
    d1 = dump_files(str(crash / "vmdump.1"))
    assert d1 is not None and dump_verdict(d1, options)[1] is False


def test_a_process_core_is_reported_as_one(tmp_path: Path, fake: FakeTools) -> None:
    cores = tmp_path / "zones" / "z1" / "cores"
    cores.mkdir(parents=True)
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + (4).to_bytes(2, "little") + b"\0" * 64  # ET_CORE
    (cores / "core.bhyve.4242").write_bytes(elf)
    (cores / "core.notes").write_text("not an ELF file: a transcript\n")
    d = dump_files(str(cores / "core.bhyve.4242"))
    assert d is not None and d.kind.value == "process core"
    assert dump_files(str(cores / "core.notes")) is None
    v = analyse(str(cores / "core.bhyve.4242"), Options(tools=Tools.find(None, None, str(tmp_path / "w"), None)))
    assert v.title.startswith("user process core: ")
    assert "mutex_enter: bad mutex type" in v.title
    assert v.notes[0] == "a user process core, not a kernel crash dump"
    assert fake.calls("mdb")[0] == ["-e", "::echo '> ::status'; ::status; ::echo '> $C'; $C", str(cores / "core.bhyve.4242")]


def test_jobs_run_dumps_in_workers(tmp_path: Path, fake: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    rc, out, _ = run(["triage", str(crash), "--work", str(tmp_path / "w"), "--jobs", "0", "-f", "json"], capsys)
    assert [json.loads(line)["confidence"] for line in out.splitlines()] == ["likely", "confirmed", None]


def test_mdb_argv_shape() -> None:
    d = dump_files(os.devnull)
    assert d is None
    from dumpscope.crashdir import DumpFiles, DumpKind

    k = DumpFiles("/c/vmcore.3", DumpKind.KERNEL, 3, "/c/unix.3", "/c/vmcore.3")
    assert mdb_argv("/usr/bin/mdb", ["::status", "$C"], k) == [
        "/usr/bin/mdb", "-e", "::echo '> ::status'; ::status; ::echo '> $C'; $C", "/c/unix.3", "/c/vmcore.3"]


def test_version_completion_and_jobs_zero(capsys: pytest.CaptureFixture[str]) -> None:
    from dumpscope import __version__

    assert run(["--version"], capsys)[:2] == (0, f"dumpscope {__version__}\n")
    rc, out, _ = run(["--help"], capsys)
    assert "--install-completion" in out and "--show-completion" in out
    rc, out, _ = run(["triage", "--help"], capsys)
    assert "[default: 0, every CPU]" in " ".join(out.split())


def test_explain_quotes_the_saved_transcript_of_a_dump(tmp_path: Path, fake: FakeTools,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    rc, out, _ = run(["triage", "--explain", str(crash / "vmcore.1"), "--work", str(tmp_path / "w")], capsys)
    # bhyve-b.mdb: the echoed '> ::status' is line 1, so the panic message is line 5
    assert "+ panic message (line 5): attempt to reprogram non-existent cyclic" in out
    assert "    5 | panic message: attempt to reprogram non-existent cyclic" in out


def test_analyse_runs_in_a_fresh_process_from_its_name_and_options(tmp_path: Path, fake: FakeTools) -> None:
    # what a pool or Dask worker does: a spawned interpreter, nothing inherited but the pickled arguments
    import multiprocessing
    import pickle

    crash = crash_tree(tmp_path)
    options = Options(tools=Tools.find(None, None, str(tmp_path / "w"), None))
    assert pickle.loads(pickle.dumps(options)) == options
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.starmap(analyse, [(str(crash / "vmcore.1"), options),
                                     (str(ROOT / "fixtures" / "transcripts" / "seed-12476-vhpet-with-remover.txt"),
                                      options)])
    assert [v.confidence for v in got] == ["confirmed", "confirmed"]


def test_a_named_mdb_that_is_not_executable_is_a_usage_error(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mdb").write_text("not a program")
    rc, out, err = run(["triage", "--mdb", str(tmp_path / "mdb"), str(tmp_path)], capsys)
    assert rc == 2 and out == "" and "is not an executable file" in err


def test_an_unknown_dcmd_does_not_lose_the_dcmds_after_it(tmp_path: Path, fake: FakeTools,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # mdb -e drops the rest of its script after a dcmd it cannot run; the rest runs again without it
    monkeypatch.setenv("FAKE_MDB_UNKNOWN", "::panicinfo")
    crash = crash_tree(tmp_path)
    v = analyse(str(crash / "vmcore.1"), Options(tools=Tools.find(None, None, str(tmp_path / "w"), None)))
    assert v.confidence == "confirmed"
    cmds = list(first_pass(signature_set()))
    rest = cmds[cmds.index("::panicinfo") + 1:]
    assert f"mdb stopped after ::panicinfo; ran again for {'; '.join(rest)}" in v.notes
    assert [c[1] for c in fake.calls("mdb")] == [
        "; ".join(f"::echo '> {c}'; {c}" for c in cmds),
        "; ".join(f"::echo '> {c}'; {c}" for c in rest),
        f"::echo '> {REMOVER_HINT}'; {REMOVER_HINT}"]


def test_a_dump_named_twice_in_parallel_is_read_by_mdb_once(tmp_path: Path, fake: FakeTools,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    crash = crash_tree(tmp_path)
    d1 = str(crash / "vmcore.1")
    rc, out, _ = run(["triage", d1, d1, d1, "--work", str(tmp_path / "w"), "--jobs", "2", "-f", "json"], capsys)
    assert [json.loads(line)["confidence"] for line in out.splitlines()] == ["confirmed"] * 3
    assert len(fake.calls("mdb")) == 2  # one first pass and one follow-up; the other two re-read them
