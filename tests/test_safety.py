"""Safety: signature files are data, transcript control characters never reach the terminal, writes stay in --cache."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _robust import CONTROL_OUTPUT, ROOT
from dumpscope.cli import main
from dumpscope.errors import SignatureFileError
from dumpscope.render import render_verdict_text, verdict_to_json
from dumpscope.signatures import load_signatures
from dumpscope.verdict import Hint
from dumpscope.triage import triage_text

TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
VATPIT = TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt"
VHPET = TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# -- signature files are data ----------------------------------------------------------------------

_PAYLOAD = """\
# every string below looks like Python (or shell); none of it may run
id = "payload"
title = "__import__('pathlib').Path('MARKER-title').write_text('ran')"
description = "exec(\\"open('MARKER-description', 'w').write('ran')\\")"
bugs = ["eval(compile('open(\\\\'MARKER-bugs\\\\', \\\\'w\\\\')', 'x', 'exec'))"]
hints = [{{command = "$(touch MARKER-hint)", settles = "`touch MARKER-hint2`"}}]
events = ["{{cpu}} os.system('touch MARKER-event')"]

[crash]
message = '^attempt to reprogram non-existent cyclic'
message_suffices = true
{bind}

[[crash.frames]]
function = "cyclic_reprogram_cyclic"
"""


def test_python_looking_signature_file_loads_as_plain_strings_and_runs_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(f"os.system{a}") or 0)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(f"Popen{a}"))
    path = tmp_path / "payload.toml"
    path.write_text(_PAYLOAD.format(bind='\n[crash.bind]\ncpu = "cyclic_reprogram_cyclic.arg0"\n'))
    sigs = load_signatures([path])
    (sig,) = sigs.signatures
    assert sig.title == "__import__('pathlib').Path('MARKER-title').write_text('ran')"
    assert sig.hints == (Hint("$(touch MARKER-hint)", "`touch MARKER-hint2`"),)
    v = triage_text(VATPIT.read_text(), "vatpit", signatures=sigs)
    assert v.signature == "payload"
    assert v.title == sig.title  # shown verbatim, as text
    assert [e.text for e in v.events] == ["ffffff03eb144000 os.system('touch MARKER-event')"]  # {cpu} filled (arg0 of cyclic_reprogram_cyclic, line 11), nothing else
    render_verdict_text(v)
    json.dumps(verdict_to_json(v))
    assert calls == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.toml"]  # no MARKER-* anywhere


@pytest.mark.parametrize("events, words", [
    ('["{cpu.__class__.__mro__}"]', "only a bare"),
    ('["{cpu!r}"]', "only a bare"),
    ('["{cpu[0]}"]', "only a bare"),
    ('["{__builtins__}"]', "not a bound name"),
])
def test_templates_cannot_reach_into_python_objects(tmp_path: Path, events: str, words: str) -> None:
    text = _PAYLOAD.format(bind='\n[crash.bind]\ncpu = "cyclic_reprogram_cyclic.arg0"\n')
    text = text.replace("""events = ["{cpu} os.system('touch MARKER-event')"]""", f"events = {events}")
    path = tmp_path / "payload.toml"
    path.write_text(text)
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert exc.value.line == 7  # the events line
    assert words in str(exc.value)


def test_code_outside_strings_is_a_toml_syntax_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "payload.toml"
    path.write_text('id = "payload"\nimport os; os.system("touch MARKER")\n')
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert exc.value.line == 2
    assert not (tmp_path / "MARKER").exists()


# -- control characters from transcripts -----------------------------------------------------------

def _hostile_transcript() -> str:
    # the paired seed with bare control characters where transcript text reaches the output: the host,
    # the panic message, a thread description, a frame line's tail, a raw line and a note-making line
    text = VHPET.read_text()
    text = text.replace("(bhyve/1 [vcpu 0])", "(bhyve\x1b/1 [vcpu\x9b 0]\x07)")
    text = text.replace("After looking", "\x1bP\x9b2J\x07\x08\x0c\x7f\x1b]0;owned\x07 After\rlooking")
    status = ("> ::status\ndebugging crash dump vmcore.0 (64-bit) from ho\x9bst\x1b\n"
              "operating system: 5.11 joyent_2018\x070216T202957Z (i86pc)\n"
              "panic message: attempt to reprogram non-existent cyclic\x07\x9b\x1b\n"
              "bogus key: \x1b[?1049h\x05\n")
    return status + text


def test_hostile_transcript_is_still_triaged() -> None:
    v = triage_text(_hostile_transcript(), "hostile")
    assert v.signature == "illumos-12476" and v.confidence in ("paired", "confirmed")


@pytest.mark.parametrize("argv", [
    ["parse"], ["parse", "--format", "json"], ["triage"], ["triage", "--explain"],
    ["triage", "--format", "json"], ["triage", "--format", "table"], ["triage", "--format", "csv"],
    ["triage", "--summary"],
], ids=lambda a: " ".join(a))
def test_no_raw_control_character_reaches_stdout_or_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    path = tmp_path / "dump\x1b[2J\x07.txt"  # the file name is transcript-controlled text too
    path.write_text(_hostile_transcript())
    code, out, err = _cli(argv + [str(path)], capsys)
    assert code == 0, err
    assert CONTROL_OUTPUT.search(out) is None, repr(CONTROL_OUTPUT.search(out))
    assert CONTROL_OUTPUT.search(err) is None
    # not vacuous: the hostile text did reach the output, escaped
    assert "\\x1b" in out or "\\u001b" in out


def test_error_messages_escape_the_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gone\x1b]0;owned\x07.txt"
    code, out, err = _cli(["triage", str(path)], capsys)
    assert code == 1
    assert CONTROL_OUTPUT.search(out + err) is None
    assert "gone\\x1b]0;owned\\x07.txt: no such file" in err


# -- writes ----------------------------------------------------------------------------------------

def _listing(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def test_nothing_is_written_outside_the_named_cache(tmp_path: Path) -> None:
    where = {name: tmp_path / name for name in ("cwd", "home", "tmp", "inputs", "cachedir")}
    for d in where.values():
        d.mkdir()
    inputs = where["inputs"]
    (inputs / "nested").mkdir()
    (inputs / "vhpet.txt").write_bytes(VHPET.read_bytes())
    (inputs / "nested" / "vatpit.txt.gz").write_bytes(gzip.compress(VATPIT.read_bytes()))
    (inputs / "nested" / "empty.txt").write_bytes(b"")
    for p in sorted(TRANSCRIPTS.glob("near-miss-*.txt"))[:6]:
        (inputs / p.name).write_bytes(p.read_bytes())
    cache = where["cachedir"] / "verdicts.sqlite"
    before = {name: _listing(d) for name, d in where.items()}
    env = dict(os.environ, HOME=str(where["home"]), TMPDIR=str(where["tmp"]), PYTHONDONTWRITEBYTECODE="1",
               XDG_CACHE_HOME=str(where["home"] / ".cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for argv in (["--format", "json", "--jobs", "2"], ["--format", "table", "--jobs", "1"], ["--summary"]):
        r = subprocess.run([sys.executable, "-m", "dumpscope", "triage", "--cache", str(cache), *argv,
                            str(inputs)], capture_output=True, timeout=120, env=env, cwd=where["cwd"])
        assert r.returncode == 1, r.stderr  # the empty file
        assert b"empty.txt: empty file" in r.stderr
    after = {name: _listing(d) for name, d in where.items()}
    for name in ("cwd", "home", "tmp", "inputs"):
        assert after[name] == before[name], name
    assert before["cachedir"] == {}
    assert list(after["cachedir"]) == ["verdicts.sqlite"]  # no -journal, -wal or -shm beside it
