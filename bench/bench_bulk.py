"""Benchmark of bulk triage: dumps/s for --jobs 1 and 2, cached re-runs, against a same-run grep floor."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    from dumpscope.bulk import triage_all
except ModuleNotFoundError:  # run from a checkout without installing: python bench/bench_bulk.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dumpscope.bulk import triage_all

from dumpscope import __version__
from dumpscope.cache import Cache
from dumpscope.signatures import signature_set
from dumpscope.verdict import Verdict

__all__ = ["generate", "main"]

ROOT = Path(__file__).resolve().parents[1]
MIN_SIZE, MAX_SIZE = 3 * 1024, 20 * 1024
# The mix (issue 5): 12476 positives, near misses (remover on another cpu/ndx), other panics.
KINDS = (("positive", 0.3), ("positive-likely", 0.1), ("near-miss", 0.2), ("other", 0.4))


# --- synthetic transcripts ----------------------------------------------------------------------


def _addr(rng: random.Random, hi: str = "fffffdc") -> str:
    return hi + "".join(rng.choice("0123456789abcdef") for _ in range(16 - len(hi)))


def _sp(rng: random.Random) -> str:
    return "fffffb04" + "".join(rng.choice("0123456789abcdef") for _ in range(8))


def _status(rng: random.Random, msg: str) -> list[str]:
    day = rng.randrange(0, 2000)
    t = time.gmtime(1420070400 + day * 86400 + rng.randrange(86400))  # 2015..2020
    build = time.strftime("joyent_%Y%m%dT%H%M%SZ", t)
    return [
        "> ::status",
        f"debugging crash dump vmcore.{rng.randrange(50)} (64-bit) from cn{rng.randrange(1000)}",
        f"operating system: 5.11 {build} (i86pc)",
        "image uuid: (not set)",
        f"panic message: {msg}",
        "dump content: kernel pages only",
    ]


def _frames(rng: random.Random, names: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    return [f"{_sp(rng)} {fn}+0x{rng.randrange(8, 0x400):x}({', '.join(args)})" for fn, args in names]


def _tail(rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    return [("av_dispatch_softvect", ("2",)), ("apix_dispatch_softint", ("0", "0")),
            ("switch_sp_and_call", ()), ("apix_do_softint", (_sp(rng),)),
            ("apix_do_interrupt", (_sp(rng), "0")), ("_interrupt", ()), ("i86_mwait", ()),
            ("cpu_idle_mwait", ()), ("idle", ()), ("thread_start", ())]


def _panic_12476(rng: random.Random, cpu: str, ndx: str, cid: str, callout: str, vhpet: bool) -> list[str]:
    arg = _addr(rng)
    timer = ([("vhpet_start_timer", (arg, "0", "3e391951", "ec66a4e3055561")), ("vhpet_handler", (arg,))]
             if vhpet else [("pit_timer_start_cntr0", (arg,)), ("vatpit_callout_handler", (arg,))])
    names = [("cyclic_reprogram_cyclic", (cpu, ndx, "370a98496f2f04")),
             ("cyclic_reprogram", (cid, "370a98496f2f04")),
             ("vmm_glue_callout_reset_sbt", (callout, "ec66a4e704be61", "3ff6900", "fffffffff8494aa0", arg, "200")),
             *timer, ("vmm_glue_callout_handler", (callout,)),
             ("cyclic_softint", (_addr(rng), "0")), ("cbe_low_level", ())] + _tail(rng)
    return ["> $C", f"{_sp(rng)} vpanic()"] + _frames(rng, names)


def _remover(rng: random.Random, cpu: str, ndx: str, cid: str, callout: str) -> list[str]:
    thread = _addr(rng, "fffffe5")
    sema = f"{int(cpu, 16) + 0xa0:x}"
    vm = _addr(rng)
    names = [("swtch", ()), ("sema_p", (sema,)), ("cyclic_remove_here", (cpu, ndx, "0", "0")),
             ("cyclic_remove", (cid,)), ("vmm_glue_callout_drain", (callout,)),
             ("vhpet_cleanup", (_addr(rng),)), ("vm_cleanup", (vm, "0")), ("vm_reinit", (vm,)),
             ("vmmdev_do_ioctl", (_addr(rng), "20007605", "0", "202003")), ("ioctl", ("3", "20007605", "0")),
             ("sys_syscall", ())]
    sp = _sp(rng)
    return [f"> {thread}::findstack -v",
            f"stack pointer for thread {thread} (bhyve/1 [vcpu 0]): {sp}",
            f"[ {sp} _resume_from_idle+0x12b() ]"] + ["  " + f for f in _frames(rng, names)]


def _other(rng: random.Random) -> list[str]:
    module, fns = rng.choice([
        ("zfs", ["dbuf_rele_and_unlock", "dbuf_rele", "dmu_buf_rele", "zfs_znode_free", "zfs_inactive"]),
        ("zfs", ["arc_buf_destroy", "dbuf_evict_one", "dbuf_evict_notify", "txg_sync_thread"]),
        ("genunix", ["list_remove", "dsl_dir_tempreserve_clear", "dmu_tx_commit", "zfs_write"]),
        ("unix", ["mutex_enter", "kmem_cache_reap_now", "kmem_reap_common", "taskq_thread"]),
    ])
    addr = rng.choice(["0", "18", "8", "20"])
    msg = (f"BAD TRAP: type=e (#pf Page fault) rp={_sp(rng)} addr={addr} occurred in module "
           f'"{module}" due to a NULL pointer dereference')
    names = [("die", ("e", _sp(rng), addr, "2")), ("trap", (_sp(rng), addr, "2")), ("cmntrap", ())]
    names += [(f, (_addr(rng), _addr(rng))) for f in fns] + [("thread_start", ())]
    return _status(rng, msg) + ["> $C", f"{_sp(rng)} vpanic()"] + _frames(rng, names)


def _padding(rng: random.Random, need: int) -> list[str]:
    # ::stacks output of sleeping kernel threads (mdb-formats §6), then ::msgbuf lines: the bulk of a
    # real transcript, and the part the parser spends its time on.
    out = ["> ::stacks", "THREAD           STATE    SOBJ                COUNT"]
    stacks = [("CV", ["swtch+0x141", "cv_wait+0x70", "taskq_thread_wait+0xbe", "taskq_thread+0x344"]),
              ("CV", ["swtch+0x141", "cv_timedwait_hires+0xe0", "cv_reltimedwait+0x4f", "txg_thread_wait+0x5f"]),
              ("SEMA", ["swtch+0x141", "sema_p+0x1d7", "biowait+0xa4", "bdev_strategy+0x58"]),
              ("CV", ["swtch+0x141", "cv_wait_sig_swap_core+0x1b9", "cv_wait_sig_swap+0x17", "cv_waituntil_sig+0xbd"])]
    size = 0
    use_msgbuf = rng.random() < 0.5  # half the transcripts end with a ::msgbuf section
    in_msgbuf = False
    while size < need:
        if use_msgbuf and not in_msgbuf and size > need // 2:
            out.append("> ::msgbuf")
            in_msgbuf = True
        if in_msgbuf:
            block = [f"NOTICE: vnic{rng.randrange(5000)} link up, {rng.choice(['1000', '10000'])} Mbps, full duplex"]
        else:
            sobj, frames = rng.choice(stacks)
            block = [f"{_addr(rng, 'fffffe0'):<16} {'SLEEP':<8} {sobj:<16} {rng.randrange(1, 300):>8}"]
            block += [" " * 17 + f for f in frames] + [" " * 17 + "thread_start+8", ""]
        out.extend(block)
        size += sum(len(b) + 1 for b in block)
    return out


def transcript(rng: random.Random, kind: str, size: int) -> str:
    """One synthetic mdb transcript of about `size` bytes of the given kind."""
    cpu, cid, callout = _addr(rng), _addr(rng, "fffffdce"), _addr(rng)
    ndx = f"{rng.randrange(1, 0x100):x}"
    if kind == "other":
        lines = _other(rng)
    else:
        lines = _status(rng, "attempt to reprogram non-existent cyclic")
        lines += _panic_12476(rng, cpu, ndx, cid, callout, vhpet=rng.random() < 0.5)
        if kind == "positive":
            lines += _remover(rng, cpu, ndx, cid, callout)
        elif kind == "near-miss":
            if rng.random() < 0.5:
                lines += _remover(rng, _addr(rng), ndx, _addr(rng, "fffffdce"), _addr(rng))  # another cpu
            else:
                other = f"{(int(ndx, 16) + rng.randrange(1, 9)) & 0xff:x}"
                lines += _remover(rng, cpu, other, _addr(rng, "fffffdce"), _addr(rng))  # another index
    body = "\n".join(lines) + "\n"
    return body + "\n".join(_padding(rng, size - len(body))) + "\n"


def generate(directory: Path, count: int, seed: int = 12476) -> tuple[int, dict[str, int]]:
    """Write `count` transcripts into `directory` (100 per subfolder); returns total bytes and kind counts."""
    rng = random.Random(seed)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    total = 0
    counts: dict[str, int] = dict.fromkeys(kinds, 0)
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        counts[kind] += 1
        text = transcript(rng, kind, rng.randrange(MIN_SIZE, MAX_SIZE))
        sub = directory / f"{i // 100:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        (sub / f"vmcore-{i:05d}-{kind}.txt").write_bytes(data)
        total += len(data)
    return total, counts


# --- measurement --------------------------------------------------------------------------------


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _library(directory: Path, jobs: int, cache: str | None = None) -> list:  # type: ignore[type-arg]
    store = Cache(cache, signature_set().version, __version__) if cache else None
    try:
        return list(triage_all([str(directory)], jobs=jobs, cache=store))
    finally:
        if store is not None:
            store.close()


def _cli(directory: Path, jobs: int, cache: str | None = None, fmt: str = "json") -> int:
    cmd = [sys.executable, "-m", "dumpscope", "triage", "--format", fmt, "--jobs", str(jobs), str(directory)]
    if cache:
        cmd[4:4] = ["--cache", cache]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"CLI failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    # rows: JSON Lines one per line; the table has a header and a rule above them, CSV a header
    return proc.stdout.count(b"\n") - {"json": 0, "table": 2, "csv": 1}[fmt]


def _interpreter() -> int:
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return 0


def _stub_triage(text: str, source: str = "<input>") -> Verdict:
    return Verdict(source=source, status="ok", bucket="0000000000", title="stub")


def _grep(directory: Path) -> int:
    proc = subprocess.run(["grep", "-rl", "panic message", str(directory)], stdout=subprocess.PIPE, check=False)
    return proc.stdout.count(b"\n")


def main(argv: list[str] | None = None) -> int:
    """Generate the corpus and print throughput, cache speed-up and ratios against grep."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1,000 files instead of 10,000")
    ap.add_argument("--count", type=int, help="number of files (overrides --quick)")
    ap.add_argument("--dir", help="generate into this directory (kept) instead of a temporary one")
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI subprocess runs")
    args = ap.parse_args(argv)
    count = args.count or (1000 if args.quick else 10000)
    tmp = None if args.dir else tempfile.mkdtemp(prefix="dumpscope-bench-")
    base = Path(args.dir or tmp)  # type: ignore[arg-type]
    try:
        corpus = base / "corpus"
        if corpus.exists():
            shutil.rmtree(corpus)
        t_gen, (total, kinds) = _timed(lambda: generate(corpus, count))
        print(f"corpus: {count} files, {total / 1e6:.1f} MB ({total / count / 1024:.1f} KiB avg), "
              f"generated in {t_gen:.1f}s; " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
        print(f"cpus available: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
        _grep(corpus)  # warm the page cache so neither side pays for the first read
        t_grep, hits = _timed(lambda: _grep(corpus))
        print(f"floor: grep -rl 'panic message': {t_grep:.3f}s, {count / t_grep:,.0f} files/s ({hits} hits)")
        rows: list[tuple[str, float, int]] = []

        def run(label: str, fn: Callable[[], object], n: int = count) -> float:
            t, out = _timed(fn)
            got = len(out) if isinstance(out, list) else out
            if got != n:
                raise SystemExit(f"{label}: {got} rows for {n} inputs")
            rows.append((label, t, n))
            print(f"{label:<34} {t:8.3f}s {n / t:10,.0f} dumps/s   {t / t_grep:7.1f}x grep")
            return t

        # The machinery alone (expand, read, hash, pool, pickling, ordering) with triage replaced by a
        # stub: what bulk.py itself costs per input, whatever the parser's speed.
        import dumpscope.triage as triage_mod

        real = triage_mod.triage_text
        triage_mod.triage_text = _stub_triage  # type: ignore[assignment]
        try:
            run("bulk overhead, triage stubbed, -j 1", lambda: _library(corpus, 1))
            run("bulk overhead, triage stubbed, -j 2", lambda: _library(corpus, 2))
        finally:
            triage_mod.triage_text = real  # type: ignore[assignment]
        run("library --jobs 1", lambda: _library(corpus, 1))
        run("library --jobs 2", lambda: _library(corpus, 2))
        if not args.no_cli:
            run("cli --jobs 1 (json)", lambda: _cli(corpus, 1))
            run("cli --jobs 2 (json)", lambda: _cli(corpus, 2))
        db = str(base / "cache.sqlite")
        for p in Path(base).glob("cache.sqlite*"):
            p.unlink()
        first = run("library --jobs 2 --cache (first)", lambda: _library(corpus, 2, db))
        again = run("library --jobs 2 --cache (re-run)", lambda: _library(corpus, 2, db))
        print(f"cache speed-up (library): {first / again:.1f}x (target >= 10x)")
        if not args.no_cli:
            db2 = str(base / "cache-cli.sqlite")
            first = run("cli --jobs 2 --cache (first)", lambda: _cli(corpus, 2, db2))
            again = run("cli --jobs 2 --cache (re-run)", lambda: _cli(corpus, 2, db2))
            print(f"cache speed-up (cli): {first / again:.1f}x (target >= 10x)")
            # The other formats read the cache differently (no documents, the brief columns only);
            # each re-run against the same first run (which printed JSON).
            for fmt in ("table", "csv"):
                again = run(f"cli -j 2 --cache (re-run, {fmt})", lambda fmt=fmt: _cli(corpus, 2, db2, fmt))
                print(f"cache speed-up (cli, {fmt}): {first / again:.1f}x (target >= 10x)")
            # A re-run is now mostly process start-up: the bare interpreter, same machine, same moment.
            t_py, _ = _timed(_interpreter)
            print(f"python -c pass (start-up floor): {t_py:.3f}s"
                  + ("; PYTHONDONTWRITEBYTECODE is set, so every CLI run also compiles dumpscope's modules"
                     if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""))
        strays = sorted(p.name for p in base.iterdir() if p.name.startswith("cache") and not p.name.endswith(".sqlite"))
        print(f"files beside the cache: {strays or 'none'}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
