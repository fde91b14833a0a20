"""A site's own signatures and notes: --signatures, $DUMPSCOPE_SIGNATURES, override by id, the cache key,
and `dumpscope signatures check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_signature_raise, run_cli

from dumpscope.errors import SignatureFileError
from dumpscope.signatures import ENV_SIGNATURES, load_signature_set, site_dirs
from dumpscope.triage import triage_text

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
BUNDLED = ROOT / "dumpscope" / "data" / "signatures"
LIST_REMOVE = TRANSCRIPTS / "illumos-joyent-45-badtrap-genunix-list-remove.txt"
SEED = TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"
# the bucket of LIST_REMOVE as triage prints it (unknown [3b1341ff9d])
LIST_REMOVE_BUCKET = "3b1341ff9d"

SITE_SIG = '''id = "acme-zfs-tempreserve"
title = "ZFS tempreserve list corruption (ACME-77)"
bugs = ["ACME-77"]
dcmds = ["::spa -v"]

[crash]
message = "BAD TRAP: type=e"

[[crash.frames]]
function = "list_remove"

[[crash.frames]]
function = "dsl_dir_tempreserve_clear"
'''


run = run_cli


def site(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "site"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_a_site_signature_matches_and_the_verdict_names_its_file(tmp_path: Path) -> None:
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG})
    sigs = load_signature_set((str(d),))
    v = triage_text(LIST_REMOVE.read_text(), "x", sigs)
    assert (v.signature, v.title) == ("acme-zfs-tempreserve", "ZFS tempreserve list corruption (ACME-77)")
    assert f"signature acme-zfs-tempreserve from site file {d / 'acme-zfs-tempreserve.toml'}" in v.notes
    assert sigs.get("acme-zfs-tempreserve").dcmds == ("::spa -v",)  # type: ignore[union-attr]
    assert triage_text(LIST_REMOVE.read_text(), "x").signature is None  # not without the site


def test_a_site_signature_replaces_the_bundled_one_of_its_id(tmp_path: Path) -> None:
    text = (BUNDLED / "illumos-12476.toml").read_text().replace(
        'title = "bhyve timer handler re-armed', 'title = "SITE: bhyve timer handler re-armed')
    d = site(tmp_path, {"illumos-12476.toml": text})
    sigs = load_signature_set((str(d),))
    assert len(sigs) == len(load_signature_set(()))
    v = triage_text(SEED.read_text(), "x", sigs)
    assert v.title.startswith("SITE: bhyve timer handler re-armed")
    assert (f"signature illumos-12476 from site file {d / 'illumos-12476.toml'}, replacing the bundled "
            "dumpscope/data/signatures/illumos-12476.toml") in v.notes


def test_two_site_files_with_one_id_are_an_error_with_file_and_line(tmp_path: Path) -> None:
    a = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG})
    b = tmp_path / "other"
    b.mkdir()
    (b / "acme-zfs-tempreserve.toml").write_text(SITE_SIG)
    with pytest.raises(SignatureFileError, match=r"other/acme-zfs-tempreserve.toml:1: duplicate id"):
        load_signature_set((str(a), str(b)))


def test_notes_on_a_bucket_and_a_signature_are_shown_in_every_verdict(tmp_path: Path) -> None:
    d = site(tmp_path, {"notes.toml": f'''
[[bucket_notes]]
bucket = "{LIST_REMOVE_BUCKET}"
ticket = "https://tickets.example.com/OPS-12"
owner = "storage team"
note = "seen on imgadm imports; upgrade the PI"

[[bucket_notes]]
signature = "illumos-12476"
ticket = "https://tickets.example.com/OPS-3"
'''})
    sigs = load_signature_set((str(d),))
    v = triage_text(LIST_REMOVE.read_text(), "x", sigs)
    assert v.bucket == LIST_REMOVE_BUCKET
    assert (f"site note: ticket https://tickets.example.com/OPS-12; owner storage team; seen on imgadm imports; "
            f"upgrade the PI (site note from {d / 'notes.toml'})") in v.notes
    seed = triage_text(SEED.read_text(), "x", sigs)
    assert any(n.startswith("site note: ticket https://tickets.example.com/OPS-3") for n in seed.notes)


def test_bad_notes_are_refused_with_file_and_line(tmp_path: Path) -> None:
    d = site(tmp_path, {"notes.toml": '[[bucket_notes]]\nbucket = "nothex"\nowner = "x"\n'})
    with pytest.raises(SignatureFileError, match=r"notes.toml:2: bucket 'nothex' must be a bucket id"):
        load_signature_set((str(d),))
    d2 = site(tmp_path, {"notes.toml": '[[bucket_notes]]\nsignature = "illumos-12476"\nticket = "javascript:x"\n'})
    with pytest.raises(SignatureFileError, match=r"ticket 'javascript:x' must be an http\(s\) URL"):
        load_signature_set((str(d2),))


def test_a_dcmd_that_would_run_anything_but_mdb_is_refused(tmp_path: Path) -> None:
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG.replace('"::spa -v"', '"::spa -v ! sh"')})
    with pytest.raises(SignatureFileError, match=r"acme-zfs-tempreserve.toml:4: dcmd '::spa -v ! sh'"):
        load_signature_set((str(d),))


def test_env_and_option_dirs_and_the_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert site_dirs(["b"], {ENV_SIGNATURES: "x:y"}) == ("x", "y", "b")
    d = site(tmp_path, {})
    db = str(tmp_path / "c.db")
    args = ["triage", "-f", "json", "--cache", db, str(LIST_REMOVE)]
    rc, out, _ = run(args, capsys)
    assert json.loads(out)["signature"] is None
    monkeypatch.setenv(ENV_SIGNATURES, str(d))
    (d / "acme-zfs-tempreserve.toml").write_text(SITE_SIG)
    rc, out, _ = run(args, capsys)  # the same cache: adding a file re-triages
    assert json.loads(out)["signature"] == "acme-zfs-tempreserve"
    monkeypatch.delenv(ENV_SIGNATURES)
    rc, out, _ = run(args + ["--signatures", str(d)], capsys)
    assert json.loads(out)["signature"] == "acme-zfs-tempreserve"
    rc, out, _ = run(["signatures", "--signatures", str(d)], capsys)
    assert f"acme-zfs-tempreserve         ZFS tempreserve list corruption (ACME-77)  [ACME-77]  (site: {d}" in out


def test_a_bad_site_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG.replace('function = "list_remove"', 'function = "(a+)+"')})
    rc, out, err = run(["triage", "--signatures", str(d), str(LIST_REMOVE)], capsys)
    assert rc == 1 and out == ""
    assert err.startswith(f"dumpscope: error: {d}/acme-zfs-tempreserve.toml:10: ")
    assert "nested quantifier" in err


# --- dumpscope signatures check ---------------------------------------------------------------------


def test_check_reports_every_bad_file_with_file_and_line_and_exits_1(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    d = site(tmp_path, {
        "acme-zfs-tempreserve.toml": SITE_SIG.replace('function = "list_remove"', 'function = "(.*)*x"'),
        "acme-b.toml": 'id = "acme-b"\ntitle = "b"\nbugs = ["B-1"]\nwhat = 1\n[crash]\nmessage = "x"\n'
                       '[[crash.frames]]\nfunction = "f"\n',
        "acme-c.toml": SITE_SIG.replace("acme-zfs-tempreserve", "acme-c"),
    })
    rc, out, _ = run(["signatures", "check", str(d)], capsys)
    lines = out.splitlines()
    assert rc == 1
    assert lines[0] == f"{d}/acme-b.toml:4: error: unknown key 'what' (allowed: " + lines[0].split("(allowed: ")[1]
    assert lines[1].startswith(f"{d}/acme-zfs-tempreserve.toml:10: error: function '(.*)*x': nested quantifier")
    assert lines[-1] == "2 errors, 0 warnings"


def test_check_against_transcripts_hits_near_misses_and_overlaps(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    against = tmp_path / "against"
    against.mkdir()
    shutil.copy(LIST_REMOVE, against / "hit.txt")
    (against / "hit.expect").write_text("SIGNATURE: acme-zfs-tempreserve\n")
    near = LIST_REMOVE.read_text().replace("dsl_dir_tempreserve_clear", "dmu_tx_commit")
    (against / "near.txt").write_text(near)
    (against / "near.expect").write_text("NOT_SIGNATURE: acme-zfs-tempreserve\n")
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG})
    rc, out, _ = run(["signatures", "check", str(d), "--against", str(against)], capsys)
    assert rc == 0, out
    assert f"{d}/acme-zfs-tempreserve.toml: note: acme-zfs-tempreserve: matches 1 transcript(s); 1 near miss(es) checked" in out
    # an overlapping second signature, one that matches nothing, and a near miss that is matched
    loose = SITE_SIG.replace("acme-zfs-tempreserve", "acme-loose").replace(
        '[[crash.frames]]\nfunction = "dsl_dir_tempreserve_clear"\n', "")
    never = SITE_SIG.replace("acme-zfs-tempreserve", "acme-never").replace("list_remove", "no_such_function")
    site(tmp_path, {"acme-loose.toml": loose, "acme-never.toml": never})
    (against / "near.expect").write_text("NOT_SIGNATURE: acme-loose\n")
    rc, out, _ = run(["signatures", "check", str(d), "--against", str(against)], capsys)
    assert rc == 1
    assert f"{against}/hit.txt: warning: overlap: acme-loose and acme-zfs-tempreserve all match this transcript" in out
    assert f"{against}/near.txt: error: near miss of acme-loose is matched by it" in out
    assert f"{d}/acme-never.toml: error: acme-never: no transcript in {against} matches it" in out


def test_check_of_a_missing_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["signatures", "check", str(tmp_path / "nope")], capsys)
    assert rc == 1
    assert out.splitlines() == [f"{tmp_path / 'nope'}: error: cannot list signature directory: No such file or directory",
                                "1 error, 0 warnings"]


def test_check_parses_each_site_file_once_into_the_set_a_triage_run_loads(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import dumpscope.sigcheck as sigcheck
    import dumpscope.signatures as signatures

    notes = '[[bucket_notes]]\nbucket = "3b1341ff9d"\nticket = "https://example.com/T-1"\n'
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG, "acme-notes.toml": notes,
                        "illumos-12476.toml": (BUNDLED / "illumos-12476.toml").read_text()})
    want = load_signature_set((str(d),))
    signatures.signature_set()  # the bundled set, as a triage run has it loaded
    parsed: list[str] = []
    real = signatures._parse_any
    monkeypatch.setattr(signatures, "_parse_any", lambda path, *a, **k: parsed.append(path) or real(path, *a, **k))
    built: list[signatures.SignatureSet] = []
    real_set = sigcheck.site_signature_set
    monkeypatch.setattr(sigcheck, "site_signature_set", lambda files: built.append(real_set(files)) or built[-1])
    findings = sigcheck.check_signatures(str(d))
    assert not [f for f in findings if f.severity is sigcheck.Severity.ERROR], findings
    assert sorted(parsed) == sorted(str(p) for p in d.iterdir())  # each site file once, no bundled file
    (got,) = built
    assert (got.version, got.signatures, got.notes) == (want.version, want.signatures, want.notes)
    assert got.get("illumos-12476").replaces == "dumpscope/data/signatures/illumos-12476.toml"  # type: ignore[union-attr]


def test_check_against_transcripts_reports_a_signature_that_raises_and_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # matched as triage matches (triage.match_all): a signature that raises is a finding, not a traceback
    import dumpscope.sigcheck as sigcheck

    against = tmp_path / "against"
    against.mkdir()
    shutil.copy(LIST_REMOVE, against / "hit.txt")
    d = site(tmp_path, {"acme-zfs-tempreserve.toml": SITE_SIG})
    make_signature_raise(monkeypatch, "illumos-12476")
    found = [f.text() for f in sigcheck.check_signatures(str(d), str(against))]
    assert f"{against}/hit.txt: error: signature illumos-12476 raised RuntimeError: boom; skipped" in found
    assert not any("no transcript in" in f for f in found)  # the site signature still matched
