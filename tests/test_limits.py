"""Resource limits: huge lines, huge inputs, huge directories and hostile regular expressions stay bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from _robust import LONG, ROOT
from dumpscope.errors import SignatureFileError
from dumpscope.lexer import MAX_LINE
from dumpscope.match import match
from dumpscope.parse import parse_transcript
from dumpscope.signatures import MAX_SUBJECT_LENGTH, check_regex, load_signatures, signature_set
from dumpscope.sources import DEFAULT_MAX_BYTES
from dumpscope.triage import triage_text

TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
VATPIT = TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt"
KVM_154 = TRANSCRIPTS / "illumos-joyent-154-kvm-create-vm-badtrap.txt"
MIB = 1024 * 1024

# A child process that runs the CLI in-process and reports its exit code and peak memory (KiB) as the
# last line of stderr; worker processes are joined first so that their peak is counted.
_RSS_WRAPPER = textwrap.dedent("""
    import json, multiprocessing, resource, sys
    from dumpscope.cli import main
    out, argv = sys.argv[1], sys.argv[2:]
    code = None
    with open(out, "w", encoding="utf-8") as f:
        sys.stdout = f
        try:
            main(argv)
        except SystemExit as e:
            code = e.code
        sys.stdout.flush()
        sys.stdout = sys.__stdout__
    for p in multiprocessing.active_children():
        p.join()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a child of a big pytest process
    # would report pytest's peak. Workers are forked by this process, so RUSAGE_CHILDREN is theirs.
    try:
        with open("/proc/self/status") as f:
            self_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"code": code, "self_kb": self_kb,
                      "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}), file=sys.stderr)
""")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _run_measured(tmp: Path, argv: list[str], stdin: bytes | None = None, timeout: float = 600) -> tuple[dict, str, str]:  # type: ignore[type-arg]
    wrapper = tmp / "rss_wrapper.py"
    wrapper.write_text(_RSS_WRAPPER)
    out = tmp / "stdout.txt"
    r = subprocess.run([sys.executable, str(wrapper), str(out), *argv], input=stdin, capture_output=True,
                       timeout=timeout, env=_env(), cwd=tmp)
    err = r.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    report = json.loads(err.strip().splitlines()[-1])
    return report, out.read_text(encoding="utf-8"), err


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from dumpscope.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


# -- a multi-megabyte line -------------------------------------------------------------------------

@pytest.mark.parametrize("junk", [
    "x" * (5 * MIB),
    "ffffff000f832950 cyclic_reprogram_cyclic+0x97(" + "a, " * (2 * MIB),  # a frame that never closes
    "panic message: " + "attempt to reprogram non-existent cyclic " * 100_000,
    "> " * (3 * MIB),
], ids=["letters", "open-frame", "panic-message", "quotes"])
def test_multi_megabyte_line_is_kept_raw_and_the_rest_still_parses(junk: str) -> None:
    original = VATPIT.read_text()
    lines = original.split("\n")
    text = "\n".join(lines[:1] + [junk] + lines[1:])  # the long line becomes line 2
    before, after = parse_transcript(original), parse_transcript(text)
    assert any("line 2 is" in n and "kept as raw text" in n for n in after.notes), after.notes
    assert after.line_count == before.line_count + 1
    assert after.panic_message == before.panic_message  # the long line is not taken for ::status
    assert before.panic_stack is not None and after.panic_stack is not None
    assert [(f.line + 1, f.function, f.args) for f in before.panic_stack.frames] == \
        [(f.line, f.function, f.args) for f in after.panic_stack.frames]
    v0, v1 = triage_text(original), triage_text(text)
    assert (v1.signature, v1.confidence, v1.bucket) == (v0.signature, v0.confidence, v0.bucket)


def test_lines_up_to_the_cap_go_through_the_line_regexes_without_blowing_up(tmp_path: Path) -> None:
    # Just below MAX_LINE the terminals do run. Shapes that make backtracking regexes explode if a
    # terminal had a nested quantifier; a generous subprocess timeout catches a hang (no timing assertion).
    n = MAX_LINE - 64
    shapes = [
        "f(" + "(a)" * (n // 3), "ffffffff f(" + "(a" * (n // 2), " " * n + "x", "f" * n, "ffffffff " * (n // 9),
        "f(" + "a," * (n // 2), "a`" * (n // 2), "f+" + "0x1+" * (n // 4), "panic message: " + "a " * (n // 2),
        "debugging " + "crash dump " * (n // 11), "a: " + "b: " * (n // 3), "stack pointer for thread " + "f (x" * (n // 4),
        ">::" * (n // 3), "\x1b[" * (n // 2), "\x1b]" * (n // 2), "<br" * (n // 3), " " * 12 + "abcd " * (n // 5),
        "\t" * n + "f()", "0 ffffffff 1 " + "0 " * (n // 2), "ffffffff ffffffff " + "f " * (n // 2),
        "ffffffff " + "a" * n + " (", "Jun 10 16:56:31 m s: [ID 1 kern.notice] " * (n // 40),
        "panic[cpu0]/thread=" + "f" * n + ":", "BAD TRAP: type=" + "e" * n, "                 " + "a" * n,
    ]
    path = tmp_path / "shapes.txt"
    path.write_text("\n".join(s for s in shapes for _ in range(3)) + "\n")
    r = subprocess.run([sys.executable, "-m", "dumpscope", "triage", "--format", "json", str(path)],
                       capture_output=True, timeout=120, env=_env(), cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    assert b"Traceback" not in r.stderr


def test_multi_megabyte_line_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "long-line.txt"
    lines = VATPIT.read_text().split("\n")
    path.write_text("\n".join(lines[:3] + ["\x1b[31m" + "z" * (8 * MIB)] + lines[3:]))
    for cmd in (["triage"], ["parse"], ["triage", "--format", "json"]):
        r = subprocess.run([sys.executable, "-m", "dumpscope", *cmd, str(path)], capture_output=True,
                           timeout=120, env=_env(), cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(r.stdout) < 200_000  # the line is summarised (a note), not echoed
        assert b"\x1b" not in r.stdout


# -- inputs over the size limit --------------------------------------------------------------------

def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)  # a hole: costs no disk and no time, but stat() says `size`
    return path


def test_200_mb_file_is_refused_by_size_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = _sparse(tmp_path / "vmcore.txt", 200 * 1000 * 1000)
    for cmd in ("triage", "parse"):
        code, out, err = _cli([cmd, str(big)], capsys)
        assert code == 1
        assert err == f"dumpscope: error: {big}: too large (190.7 MiB > limit 128 MiB)\n"
        assert "Traceback" not in out + err


def test_200_mb_file_in_a_directory_is_one_error_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "dumps"
    d.mkdir()
    _sparse(d / "a-huge.txt", 200 * MIB)
    (d / "b-vatpit.txt").write_bytes(VATPIT.read_bytes())
    code, out, err = _cli(["triage", "--format", "json", "--jobs", "2", str(d)], capsys)
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["source"], r["status"]) for r in rows] == [(str(d / "a-huge.txt"), "error"), (str(d / "b-vatpit.txt"), "ok")]
    assert rows[0]["error"] == "too large (200 MiB > limit 128 MiB)"
    assert rows[1]["signature"] == "illumos-12476"


def test_limit_is_the_documented_128_mib() -> None:
    assert DEFAULT_MAX_BYTES == 128 * MIB


@pytest.mark.skipif(not LONG, reason="long run only (DUMPSCOPE_LONG_TESTS=1): pipes 200 MB")
def test_200_mb_on_stdin_is_refused_after_the_limit_with_bounded_memory(tmp_path: Path) -> None:
    data = (VATPIT.read_bytes() + b"\n") * (200 * MIB // (len(VATPIT.read_bytes()) + 1) + 1)
    report, out, err = _run_measured(tmp_path, ["triage", "-"], stdin=data)
    assert report["code"] == 1
    assert "too large (more than limit 128 MiB)" in err
    # at most the limit (plus one chunk) is held, once as chunks and once joined: well under 3x the limit
    assert report["self_kb"] * 1024 < 3 * DEFAULT_MAX_BYTES + 100 * MIB


def _big_transcript(path: Path, threads: int) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_parse import make_big  # the benchmark's ::findstack -v generator
    finally:
        sys.path.pop(0)
    return make_big(path, threads)


@pytest.mark.parametrize("threads", [120_000 * 3 // 2 if LONG else 6_000])
def test_big_transcript_completes_with_memory_bounded_by_its_size(tmp_path: Path, threads: int) -> None:
    # default: ~3.5 MB; long run: ~105 MB, close to the 128 MiB limit
    path = tmp_path / "big.txt"
    size = _big_transcript(path, threads)
    assert size < DEFAULT_MAX_BYTES
    report, out, _ = _run_measured(tmp_path, ["triage", "--format", "json", str(path)])
    assert report["code"] == 0
    assert json.loads(out)["status"] == "ok"
    # measured on the project's machines: ~9-12x the input including the interpreter; bound: 16x + 80 MB
    assert report["self_kb"] * 1024 < 16 * size + 80 * MIB


# -- a directory of very many small files ----------------------------------------------------------

def _many(d: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        sub = d / f"host{i // 100:04d}"
        if i % 100 == 0:
            sub.mkdir(parents=True)
        p = sub / f"vmcore.{i}.txt"
        if i % 997 == 13:
            p.write_bytes(b"")  # a few bad files: error rows, not gaps
        else:
            p.write_text(f"> ::status\ndebugging crash dump vmcore.{i} (64-bit) from host{i}\n"
                         f"panic message: assertion failed: x == {i}, file: ../../common/fs/zfs/foo.c, line: {i}\n"
                         f"> $C\nffffff000f832950 vpanic()\nffffff000f832960 assfail+0x{i:x}(1, 2)\n"
                         f"ffffff000f832970 zfs_foo+0x10({i:x})\n")
        names.append(str(p))
    return names


N_FILES = 100_000 if LONG else 2_000


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    d = tmp_path_factory.mktemp("many") / "dumps"
    return d, _many(d, N_FILES)


def test_directory_of_many_files_every_file_once_bounded_memory(many: tuple[Path, list[str]], tmp_path: Path) -> None:
    d, names = many
    report, out, err = _run_measured(tmp_path, ["triage", "--format", "json", "--jobs", "2", str(d)])
    assert report["code"] == 1  # the empty files
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["source"] for r in rows] == sorted(names, key=os.fsencode)
    bad = {n for i, n in enumerate(names) if i % 997 == 13}
    assert {r["source"] for r in rows if r["status"] == "error"} == bad
    assert all(r["title"] == "assertion failed in zfs_foo" for r in rows if r["status"] == "ok")
    # JSON lines stream: measured ~50 MB at 2,000 files and ~75 MB at 100,000 (the list of names is
    # the only per-file state). Bound: 120 MB + 1 KiB per file, for the parent and for each worker.
    bound = 120 * MIB + 1024 * len(names)
    assert report["self_kb"] * 1024 < bound
    assert report["children_kb"] * 1024 < bound


def test_directory_of_many_files_as_a_table(many: tuple[Path, list[str]], tmp_path: Path) -> None:
    d, names = many
    report, out, _ = _run_measured(tmp_path, ["triage", "--format", "csv", "--jobs", "2", str(d)])
    assert report["code"] == 1
    body = out.splitlines()[1:]
    assert len(body) == len(names)
    # table/csv/--summary keep every row until the end: measured ~220 MB at 100,000 files.
    # Bound: 150 MB + 4 KiB per file.
    assert report["self_kb"] * 1024 < 150 * MIB + 4096 * len(names)


# -- regular expressions in signature files --------------------------------------------------------

_SIG = """\
id = "evil"
title = "a signature with a hostile pattern"
bugs = ["nobody 1"]

[crash]
message = {message}

[[crash.frames]]
function = {function}
"""


@pytest.mark.parametrize("message, function, line", [
    ("'^boom'", "'(a+)+'", 9),
    ("'^boom'", "'(a|aa)*b'", 9),
    ("'^boom'", "'(.*)*x'", 9),
    ("'(x+x+)+y'", "'vpanic'", 6),
    ("'^(?=a)b'", "'vpanic'", 6),
    ("'(a)\\1'", "'vpanic'", 6),
])
def test_super_linear_pattern_in_a_signature_file_is_refused_with_file_and_line(
        tmp_path: Path, message: str, function: str, line: int) -> None:
    path = tmp_path / "evil.toml"
    path.write_text(_SIG.format(message=message, function=function))
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert exc.value.path == str(path)
    assert exc.value.line == line
    assert str(exc.value).startswith(f"{path}:{line}: ")


def test_a_safe_version_of_the_same_file_loads(tmp_path: Path) -> None:
    # the refusals above are about the patterns, not the rest of the file
    path = tmp_path / "evil.toml"
    path.write_text(_SIG.format(message="'^boom'", function="'a+'"))
    assert [s.id for s in load_signatures([path])] == ["evil"]


def test_every_shipped_pattern_is_linear_and_subjects_are_cut() -> None:
    # the two halves of the guarantee: no shipped pattern has a super-linear shape, and what a pattern
    # is matched against is cut to MAX_SUBJECT_LENGTH (and a line longer than MAX_LINE is never matched)
    for sig in signature_set():
        pats = [sig.crash.message] + [f.function for f in sig.crash.frames] + list(sig.crash.exclude)
        pats += [f.function for t in sig.threads for f in t.frames]
        for p in pats:
            if p is not None:
                assert check_regex(p.pattern) is None, (sig.id, p.pattern)
    assert MAX_SUBJECT_LENGTH <= MAX_LINE


def test_matching_cuts_the_panic_message() -> None:
    # illumos-joyent-154's message pattern is not anchored: it is searched for, but only in the first
    # MAX_SUBJECT_LENGTH characters, so a long message cannot make the search cost more.
    dump = parse_transcript(KVM_154.read_text())
    sig = signature_set().get("illumos-joyent-154")
    assert sig is not None and dump.panic_message
    assert match(dump, sig) is not None
    head, sep, tail = dump.panic_message.partition("occurred in module")
    assert sep
    padded = head + "x" * MAX_SUBJECT_LENGTH + sep + tail
    assert match(replace(dump, panic_message=padded), sig) is None


def test_shipped_signatures_on_a_1_mb_line_finish(tmp_path: Path) -> None:
    # The whole library path on 1 MB subjects: a hand-built dump whose panic message, frame names and
    # thread description are 1 MB each, triaged against every shipped signature. No timing assertion:
    # a generous timeout only catches a hang.
    script = textwrap.dedent("""
        from dataclasses import replace
        from dumpscope.dump import Frame, SectionKind, Thread
        from dumpscope.parse import parse_transcript
        from dumpscope.triage import triage
        big = "attempt to reprogram non-existent cyclic " + "a" * (1024 * 1024)
        name = "cyclic_reprogram_cyclic" + "_" * (1024 * 1024)
        dump = parse_transcript(open(VATPIT_PATH).read())
        frames = tuple(Frame(10 + i, name if i % 2 else "a" * (1024 * 1024), "m" * 1000, 1, (1, 2), None)
                       for i in range(6))
        st = replace(dump.panic_stack, frames=frames + dump.panic_stack.frames)
        th = Thread(1, SectionKind.FINDSTACK, 0xfffffe55d37b8080, frames, description=big)
        dump = replace(dump, panic_message=big, panic_stack=st, stacks=(st,), threads=(th,))
        v = triage(dump, "<big>", text=big)
        print(v.status, v.signature, v.confidence)
    """).replace("VATPIT_PATH", repr(str(VATPIT)))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=20, env=_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.decode().split()[0] == "ok"
