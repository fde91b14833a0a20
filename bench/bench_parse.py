"""Parse throughput benchmark: a big ::findstack -v transcript, a small seed, and a same-run regex baseline.

Run: python bench/bench_parse.py [--threads 20000] [--out DIR]
Prints input sizes, MB/s for the CLI (cold process) and the library call, peak memory, and every
figure as a ratio against the baseline measured in the same run (one compiled regex over every line).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "transcripts" / "seed-12476-vatpit-status-and-dollar-c.txt"

FUNCS = ["swtch", "cv_wait", "taskq_thread_wait", "taskq_thread", "sema_p", "cyclic_remove_here",
         "cyclic_remove", "vmm_glue_callout_drain", "vhpet_cleanup", "vm_cleanup", "vm_reinit",
         "vmmdev_do_ioctl", "vmm_ioctl", "cdev_ioctl", "spec_ioctl", "fop_ioctl", "ioctl",
         "zio_wait", "dmu_tx_wait", "txg_wait_open", "mutex_vector_enter", "turnstile_block"]


def make_big(path: Path, threads: int, seed: int = 1) -> int:
    """Write a ::findstack -v transcript of `threads` threads with 8-10 frames each; return its size."""
    rnd = random.Random(seed)
    with path.open("w") as out:
        out.write("> ::status\ndebugging crash dump vmcore.0 (64-bit) from bench\n"
                  "operating system: 5.11 joyent_20180216T202957Z (i86pc)\n"
                  "panic message: attempt to reprogram non-existent cyclic\n"
                  "dump content: kernel pages only\n> ::walk thread | ::findstack -v\n")
        for _ in range(threads):
            addr = rnd.getrandbits(40) | 0xfffffe0000000000
            sp = rnd.getrandbits(32) | 0xfffffb0400000000
            desc = f"bhyve/{rnd.randrange(1, 99)} [vcpu {rnd.randrange(8)}]"
            out.write(f"stack pointer for thread {addr:x} ({desc}): {sp:x}\n")
            out.write(f"[ {sp:x} _resume_from_idle+0x12b() ]\n")
            for _ in range(rnd.randrange(8, 11)):
                sp += rnd.randrange(0x20, 0x200)
                nargs = rnd.randrange(0, 5)
                args = ", ".join(f"{rnd.getrandbits(rnd.choice((4, 8, 44))):x}" for _ in range(nargs))
                out.write(f"  {sp:x} {rnd.choice(FUNCS)}+0x{rnd.randrange(0x10, 0x400):x}({args})\n")
            out.write("\n")
    return path.stat().st_size


def baseline(text: str) -> float:
    rx = re.compile(r"^\s*([0-9a-f]+) (\w+)\+(0x[0-9a-f]+)\((.*)\)$")
    t = time.perf_counter()
    n = 0
    for line in text.split("\n"):
        if rx.match(line):
            n += 1
    return time.perf_counter() - t


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


# A cold process as a user's shell starts it: the byte-code cache is allowed (an installed package has
# one), even where this machine's environment turns it off.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# The CLI's peak memory, from inside the child: VmHWM (Linux) is the high-water mark of the child's own
# address space. ru_maxrss is not: after fork/vfork + exec it keeps the larger of the parent's and the
# child's, and this benchmark's parent holds the big transcript and three parses of it by then.
_PEAK = """
import os, resource, sys
from dumpscope.cli import main

def peak():
    try:
        with open('/proc/self/status') as status:
            return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: may include the parent's

sys.argv = ['dumpscope', 'parse', sys.argv[1], '--format', 'json']
sys.stdout = open(os.devnull, 'w')
try:
    main()
except SystemExit:
    print(peak(), file=sys.stderr)
"""


def cli(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dumpscope", *args], stdout=subprocess.DEVNULL, check=True, env=_ENV)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=None, help="keep the generated transcript here")
    opts = ap.parse_args()
    folder = opts.out or Path(tempfile.mkdtemp(prefix="dumpscope-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / "big.txt"
    size = make_big(big, opts.threads)
    mb = size / 1e6
    text = big.read_text()
    lines = text.count("\n")

    from dumpscope.parse import parse_transcript

    parse_transcript(SEED.read_text())  # warm the cached parser, as a long-lived caller would
    t_base = best(lambda: baseline(text))
    t_lib = best(lambda: parse_transcript(text), repeat=5)
    t_cli = min(cli(["parse", str(big), "--format", "json"]) for _ in range(3))
    t_seed = min(cli(["parse", str(SEED)]) for _ in range(3))
    t_start = min(cli(["--help"]) for _ in range(3))
    child = subprocess.run([sys.executable, "-c", _PEAK, str(big)], capture_output=True, text=True, check=True)
    peak_kb = int(child.stderr.strip().splitlines()[-1])

    print(f"input: {opts.threads} threads, {lines} lines, {mb:.1f} MB ({big})")
    print(f"baseline (one regex per line):    {t_base:6.3f} s  {mb / t_base:7.1f} MB/s  1.00x")
    print(f"library parse_transcript:         {t_lib:6.3f} s  {mb / t_lib:7.1f} MB/s  {t_lib / t_base:5.2f}x baseline")
    print(f"CLI parse --format json (cold):   {t_cli:6.3f} s  {mb / t_cli:7.1f} MB/s  {t_cli / t_base:5.2f}x baseline")
    print(f"CLI peak memory:                  {peak_kb / 1024:6.1f} MB  {peak_kb * 1024 / size:5.2f}x input")
    print(f"CLI parse of seed fixture (cold): {t_seed:6.3f} s  ({t_start:.3f} s of it is `dumpscope --help`)")
    print("targets: CLI >= 10 MB/s; peak memory < 10x input; cold seed parse < 0.5 s")
    if not opts.out:
        big.unlink()
        os.rmdir(folder)


if __name__ == "__main__":
    main()
