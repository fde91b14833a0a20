"""Issue 12's numbers: this checkout against another commit, measured in the same run, interleaved.

Run: python bench/bench_compare.py [BASE_REF] [--files 1000] [--threads 20000] [--repeat 3]

BASE_REF (default: the commit before the parse-path rewrite) is exported with `git archive` into a
temporary directory; each measurement runs the CLI of both trees in turn, as a user's shell starts
it (byte-code cache allowed), and keeps the best of --repeat runs:

- cold `dumpscope triage` of the seed vhpet transcript, against `python -c pass`;
- `parse --format json` of the --threads ::findstack -v transcript (bench_parse.make_big), and `triage`
  of it;
- bulk `triage DIR --jobs 2 --format json` of --files transcripts (bench_bulk.generate);
- the lines of the parse path in dumpscope/ (grammar, lexer, terminals, parse, dump, frozen, and the
  parse-JSON writer of render).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bench_bulk  # noqa: E402
import bench_parse  # noqa: E402
from bench_parse import best  # noqa: E402

DEFAULT_BASE = "8f7d9cb"  # main just before the parser rewrite landed (old parser, every other change)
SEED = "fixtures/transcripts/seed-12476-vhpet-with-remover.txt"
PARSE_PATH = ("grammar.py", "lexer.py", "terminals.py", "parse.py", "dump.py", "frozen.py")
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _cli(tree: Path, *args: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run([sys.executable, "-m", "dumpscope", *args], cwd=tree, env=_ENV, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run


def _parse_path_lines(tree: Path) -> int:
    n = 0
    for name in PARSE_PATH:
        path = tree / "dumpscope" / name
        if path.exists():
            n += len(path.read_text().splitlines())
    render = (tree / "dumpscope" / "render.py").read_text().splitlines()
    # the parse-JSON writer: from its schema constant to the verdict section
    start = next(i for i, line in enumerate(render) if line.startswith("PARSE_SCHEMA"))
    end = next(i for i, line in enumerate(render) if line.startswith("def to_json_line"))
    return n + end - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", nargs="?", default=DEFAULT_BASE)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dumpscope-compare-") as tmp:
        work = Path(tmp)
        base = work / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", opts.base], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees = {"before": base, "after": ROOT}
        big = work / "big.txt"
        size = bench_parse.make_big(big, opts.threads)
        bench_bulk.generate(work / "corpus", opts.files)
        for tree in trees.values():  # byte-code caches written, parsers warmed
            _cli(tree, "triage", SEED)()
        python = best(lambda: subprocess.run([sys.executable, "-c", "pass"], env=_ENV, check=True), 7)
        rows: dict[str, dict[str, float]] = {name: {} for name in trees}
        for _ in range(opts.repeat):  # interleaved: both trees see the machine in the same state
            for name, tree in trees.items():
                r = rows[name]
                r["cold"] = min(r.get("cold", 1e9), best(_cli(tree, "triage", SEED), 3))
                r["json"] = min(r.get("json", 1e9), best(_cli(tree, "parse", "--format", "json", str(big)), 1))
                r["triage_big"] = min(r.get("triage_big", 1e9), best(_cli(tree, "triage", str(big)), 1))
                r["bulk"] = min(r.get("bulk", 1e9), best(
                    _cli(tree, "triage", str(work / "corpus"), "--jobs", "2", "--format", "json"), 1))
        print(f"base {opts.base}; python -c pass {python * 1000:.0f} ms; {opts.files} bulk transcripts; "
              f"::findstack -v of {opts.threads} threads, {size / 1e6:.1f} MB")
        print("| measure | before | after | after/before | target |")
        print("|---|---|---|---|---|")
        b, a = rows["before"], rows["after"]
        print(f"| cold triage of the seed vhpet | {b['cold'] * 1000:.0f} ms ({b['cold'] / python:.1f}x python) | "
              f"{a['cold'] * 1000:.0f} ms ({a['cold'] / python:.1f}x python) | {a['cold'] / b['cold']:.2f} "
              "| <= 12x python |")
        print(f"| parse --format json, {size / 1e6:.0f} MB | {size / 1e6 / b['json']:.1f} MB/s | "
              f"{size / 1e6 / a['json']:.1f} MB/s | {a['json'] / b['json']:.2f} | >= 4 MB/s |")
        print(f"| triage of it | {b['triage_big']:.2f} s | {a['triage_big']:.2f} s | "
              f"{a['triage_big'] / b['triage_big']:.2f} | < 3 s |")
        print(f"| bulk triage --jobs 2 | {opts.files / b['bulk']:.0f}/s | {opts.files / a['bulk']:.0f}/s | "
              f"{a['bulk'] / b['bulk']:.2f} | >= 800/s, <= 1.25 |")
        print(f"| lines of the parse path | {_parse_path_lines(base)} | {_parse_path_lines(ROOT)} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
