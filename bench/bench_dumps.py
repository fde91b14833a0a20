"""Benchmark of a crash directory's end-to-end time: what dumpscope adds around savecore and mdb.

Builds a savecore directory of N dumps (the recorded sessions of fixtures/dumps/, under the fake
`mdb` and `savecore` of tests/fakes/, which stand in for illumos here) and measures, in one run:

* baseline: the fake tools run directly, one savecore per compressed dump and the mdb passes
  dumpscope would run (the floor: what any script calling mdb pays);
* the first `dumpscope triage DIR --cache DB` (CLI, a fresh process), which runs those tools;
* the re-run answered from the cache (no mdb, no savecore).

Prints times and ratios against the baseline. The fake tools are Python scripts (~30 ms a start),
so the baseline is far cheaper than a real mdb on a real dump: the ratios bound dumpscope's own
share from above.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from _fakes import SESSIONS, write_dump  # noqa: E402

from dumpscope.mdb import first_pass  # noqa: E402
from dumpscope.signatures import signature_set  # noqa: E402


def build(root: Path, n: int) -> Path:
    """N dumps: every third compressed (savecore first), hosts alternating between the two 12476 sessions."""
    d = root / "volatile"
    d.mkdir(parents=True)
    for i in range(n):
        host = "bhyve-b" if i % 2 else "dent"
        if i % 3 == 0:
            write_dump(d / f"vmdump.{i}", host, f"uuid-{i}", compressed=True)
        else:
            (d / f"unix.{i}").write_bytes(b"\x7fELF fake kernel symbols\n")
            write_dump(d / f"vmcore.{i}", host, f"uuid-{i}")
    (d / "bounds").write_text(f"{n}\n")
    return d


def tools(root: Path) -> dict[str, str]:
    b = root / "bin"
    b.mkdir()
    for name in ("mdb", "savecore"):
        exe = b / name
        exe.write_text(f"#!{sys.executable}\n" + (ROOT / "tests" / "fakes" / f"{name}.py").read_text())
        exe.chmod(0o755)
    env = dict(os.environ, PATH=f"{b}{os.pathsep}{os.environ['PATH']}", FAKE_TOOLS_LOG=str(root / "log"),
               FAKE_MDB_SESSIONS=str(SESSIONS))
    return env


def baseline(d: Path, root: Path, env: dict[str, str]) -> float:
    # The same tool runs dumpscope makes, straight from a loop: savecore for vmdump.N, one mdb pass
    # per dump and the follow-up for the bhyve-b dumps.
    script = "; ".join(f"::echo '> {c}'; {c}" for c in first_pass(signature_set()))
    follow = "::echo '> fffffe55d37b8080::findstack -v'; fffffe55d37b8080::findstack -v"
    out = root / "baseline"
    t = time.perf_counter()
    for p in sorted(d.iterdir()):
        if p.name.startswith("vmdump."):
            n = p.name.split(".")[1]
            w = out / n
            w.mkdir(parents=True)
            subprocess.run(["savecore", "-f", str(p), str(w)], env=env, capture_output=True, check=True)
            targets = [str(w / f"unix.{n}"), str(w / f"vmcore.{n}")]
        elif p.name.startswith("vmcore."):
            n = p.name.split(".")[1]
            targets = [str(d / f"unix.{n}"), str(p)]
        else:
            continue
        subprocess.run(["mdb", "-e", script, *targets], env=env, capture_output=True, check=True)
        if int(n) % 2:
            subprocess.run(["mdb", "-e", follow, *targets], env=env, capture_output=True, check=True)
    return time.perf_counter() - t


def cli(d: Path, root: Path, env: dict[str, str], jobs: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dumpscope", "triage", str(d), "--work", str(root / f"work{jobs}"),
                    "--cache", str(root / f"c{jobs}.db"), "--jobs", str(jobs), "-f", "json"],
                   env=env, cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dumps", type=int, default=24, help="dumps in the directory (default 24)")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-dumps-"))
    try:
        d = build(root, args.dumps)
        env = tools(root)
        base = baseline(d, root, env)
        print(f"{args.dumps} dumps; fake tools run directly: {base:.2f} s")
        for jobs in (1, 2):
            first = cli(d, root, env, jobs)
            again = cli(d, root, env, jobs)
            print(f"--jobs {jobs}: first run {first:.2f} s ({first / base:.2f}x the tools alone), "
                  f"cached re-run {again:.2f} s ({again / base:.2f}x; {first / again:.1f}x faster than the first)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
