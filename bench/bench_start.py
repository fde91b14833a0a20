"""Cold start: `dumpscope triage` of the seed vhpet transcript against `python -c pass`, same run.

Run: python bench/bench_start.py [BASE_REF ...] [--repeat 20] [--importtime]

Each process starts as a user's shell starts an installed dumpscope: byte-code caching ON
(PYTHONDONTWRITEBYTECODE, set in this project's environment, is removed from the child's environment;
with it every run compiles dumpscope from source and the figure is ~2x too slow). Measured, best of
--repeat, interleaved so every command sees the machine in the same state:

- `python -c pass` (the unit of issue 12's target: triage at most 12x it);
- `python -c "import typer, lark"` (the floor while the CLI is typer and the parser Lark);
- `python -m dumpscope triage SEED` in this checkout and in each BASE_REF (exported with `git archive`).

--importtime prints this checkout's `python -X importtime` of the triage, biggest cumulative first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = "fixtures/transcripts/seed-12476-vhpet-with-remover.txt"
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(argv: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=_ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def _importtime(tree: Path, top: int = 30) -> None:
    err = subprocess.run([sys.executable, "-X", "importtime", "-m", "dumpscope", "triage", SEED], cwd=tree,
                         env=_ENV, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            own, cumulative, name = line[len("import time:"):].split("|")
            rows.append((int(cumulative), int(own), name.rstrip()))
    print(f"-X importtime of this checkout's triage, top {top} by cumulative (us):")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"{cumulative:8d} {own:8d} {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bases", nargs="*", help="git refs to measure beside this checkout")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--importtime", action="store_true")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dumpscope-start-") as tmp:
        trees = {}
        for ref in opts.bases:
            tree = Path(tmp) / ref.replace("/", "_")
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            trees[ref] = tree
        trees["this checkout"] = ROOT
        py = sys.executable
        commands = {"python -c pass": ([py, "-c", "pass"], ROOT),
                    "import typer, lark": ([py, "-c", "import typer, lark"], ROOT)}
        for name, tree in trees.items():
            commands[f"triage ({name})"] = ([py, "-m", "dumpscope", "triage", SEED], tree)
        for argv, cwd in commands.values():  # byte-code caches written
            subprocess.run(argv, cwd=cwd, env=_ENV, check=False, capture_output=True)
        best = {name: 1e9 for name in commands}
        for _ in range(opts.repeat):
            for name, (argv, cwd) in commands.items():
                best[name] = min(best[name], _time(argv, cwd))
        unit = best["python -c pass"]
        for name, seconds in best.items():
            print(f"{name:40s} {seconds * 1000:7.1f} ms {seconds / unit:5.1f}x python -c pass")
        if opts.importtime:
            _importtime(ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
