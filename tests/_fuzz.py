"""Fuzzing at scale (issue 18): hostile mutants of every seed transcript, run through triage and parse.

Shared by tests/test_fuzz.py (a bounded slice in the normal suite; >= 100,000 mutants with
DUMPSCOPE_LONG_TESTS=1) and bench/bench_fuzz.py (prints the slowest inputs and their times). Besides
the damage tests/test_mutations.py does (cuts, shuffles, splices, flipped bits), the mutators here aim
at what the issue's attack run found: frame argument lists left open before lines of spaces and '(',
malformed and endless offsets, numbers too long for a machine word, lines at and past the 64 KiB line
limit, and characters that must never reach a person raw.

An outcome is "ok", "error" (the project's own DumpscopeError: a clear message) or "exception"
(anything else: a bug), with the CPU time triage and parse took together.
"""

from __future__ import annotations

import io
import random
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from _robust import seed_inputs
from test_mutations import MUTATORS

from dumpscope.errors import DumpscopeError
from dumpscope.parse import parse_transcript
from dumpscope.render import iter_dump_json
from dumpscope.sources import read_source
from dumpscope.triage import triage_text

__all__ = ["HOSTILE", "Outcome", "hang_guard", "mutants", "outliers", "run_one"]

Mutator = Callable[[random.Random, bytes, list[bytes]], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _frame_lines(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if b"+0x" in line and b"(" in line] or list(range(len(lines)))


def open_arguments(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # a frame's argument list left open, then a line of many spaces and '(' (the continuation regex's
    # catastrophic backtracking: 228 bytes took 94 s)
    lines = _lines(data)
    i = rng.choice(_frame_lines(lines))
    head = lines[i].split(b")")[0].rstrip(b",") + b","
    pad = b" " * rng.choice([1, 8, 64, 200, 400, 2000])
    tail = rng.choice([b"(", b"((", b"(1,", b"( (", b""])
    lines[i:i + 1] = [head, pad + tail] + ([pad + b"("] if rng.random() < 0.3 else [])
    return b"\n".join(lines)


def paren_run(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # one long line of 'f+0x1(', spaces and '(' (the frame regex's quadratic case)
    unit = rng.choice([b"f+0x1(", b"f+0x1( ", b" (", b"f+0x1(1,", b"ffffff000f832950 f+0x1("])
    line = unit * rng.choice([10, 100, 1000, 5000])
    lines = _lines(data)
    lines.insert(rng.randrange(len(lines) + 1), line)
    return b"\n".join(lines)


def bad_offset(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # a frame offset int() cannot read, or one longer than a machine word
    lines = _lines(data)
    i = rng.choice(_frame_lines(lines))
    bad = rng.choice([b"+x11", b"+8x108", b"+0x0xffffffffffffffffffffffff", b"+0x" + b"f" * 40, b"+" + b"9" * 30,
                      b"+0x", b"+", b"+0x-1", b"+0x1_0", b"+\xd9\xa3", b"+0x" + b"1" * 5000])
    line = lines[i]
    at = line.find(b"+0x")
    if at >= 0:
        end = at + 3
        while end < len(line) and chr(line[end]) in "0123456789abcdefABCDEF":
            end += 1
        lines[i] = line[:at] + bad + line[end:]
    else:
        lines[i] = line + b" f" + bad + b"()"
    return b"\n".join(lines)


def long_number(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # an argument, address, ::stacks count or cpu id of thousands of digits (CPython's 4,300-digit
    # limit of int() on text, and more than 64 bits)
    digits = rng.choice([17, 20, 33, 100, 4301, 5000, 20000])
    num = bytes(rng.choice(b"0123456789abcdef") for _ in range(min(digits, 64))) * (digits // 64 + 1)
    num = num[:digits]
    lines = _lines(data)
    i = rng.randrange(len(lines))
    line = lines[i]
    where = [k for k in range(len(line)) if chr(line[k]) in "0123456789abcdef"]
    if where:
        k = rng.choice(where)
        lines[i] = line[:k] + num + line[k + 1:]
    else:
        lines.insert(i, rng.choice([b"ffffff000f832950 f+0x1(", b"", b"THREAD  STATE  SOBJ  COUNT\n" + num[:16] + b" SLEEP CV "])
                     + num + b")")
    return b"\n".join(lines)


def long_line(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # a line just under, at and over the 64 KiB line limit, built from a real line so regexes try it
    lines = _lines(data)
    i = rng.randrange(len(lines))
    target = rng.choice([65535, 65536, 65537, 70000, 200_000])
    line = lines[i] or b"x"
    filler = rng.choice([b" ", b"(", b",", b"0", b"f+0x1(", line])
    lines[i] = (line + filler * (target // max(1, len(filler)) + 1))[:target]
    return b"\n".join(lines)


def invisible(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    # bidirectional overrides, zero-width characters, line separators, control bytes, ANSI sequences
    chars = ["\u202e", "\u2066", "\u200b", "\u2028", "\u2029", "\ufeff", "\x1b[2J", "\x07", "\x00", "\x85"]
    buf = data
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(buf) + 1)
        buf = buf[:at] + rng.choice(chars).encode() + buf[at:]
    return buf


HOSTILE: tuple[Mutator, ...] = (open_arguments, paren_run, bad_offset, long_number, long_line, invisible)


def mutants(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    """`count` (description, bytes) mutants of the seed transcripts, round robin over the seeds, each
    made by one to three mutators (at least one hostile), deterministic for a given rng state."""
    seeds = [(n, d) for n, d in seed_inputs() if d]
    datas = [d for _, d in seeds]
    for k in range(count):
        name, data = seeds[k % len(seeds)]
        ops: list[Mutator] = [rng.choice(HOSTILE)] + rng.choices(HOSTILE + MUTATORS, k=rng.choice([0, 0, 1, 2]))
        rng.shuffle(ops)
        m = data
        for op in ops:
            m = op(rng, m, datas)
        yield f"{name} <- {'+'.join(op.__name__ for op in ops)}", m


@dataclass(frozen=True)
class Outcome:
    """What triage and parse did with one input."""

    kind: str  # "ok", "error" (DumpscopeError, or an unusable input) or "exception" (a bug)
    detail: str  # the error or exception, one line
    seconds: float  # CPU time of triage + parse + the parse JSON document


class _Hang(BaseException):
    pass


def _on_alarm(_signum: int, _frame: object) -> None:
    raise _Hang


class hang_guard:
    """Stops one run_one past `seconds` of wall time (SIGALRM; main thread only), so a fuzz run reports
    a hang instead of never ending."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> hang_guard:
        self._old = signal.signal(signal.SIGALRM, _on_alarm)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._old)


def run_one(data: bytes, name: str = "mutant", guard: hang_guard | None = None) -> Outcome:
    """Decode `data` as dumpscope reads a file, then triage it, parse it and encode the parse JSON."""
    src = read_source("-", stdin=io.BytesIO(data), digest=False)
    if src.text is None:
        return Outcome("error", src.error or "unreadable", 0.0)
    start = time.process_time()
    if guard is not None:
        signal.setitimer(signal.ITIMER_REAL, guard.seconds)
    try:
        triage_text(src.text, name)
        dump = parse_transcript(src.text, name)
        for _ in iter_dump_json(dump, name):
            pass
    except DumpscopeError as exc:
        return Outcome("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                       time.process_time() - start)
    except _Hang:
        return Outcome("exception", f"hang: over {guard.seconds if guard else 0:g} s", time.process_time() - start)
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzing looks for
        return Outcome("exception", f"{type(exc).__name__}: {str(exc)[:200]}", time.process_time() - start)
    finally:
        if guard is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return Outcome("ok", "", time.process_time() - start)


def cost(outcome: Outcome, size: int) -> float:
    """CPU seconds per KiB (plus one): what 'slower than the median' compares, so a bigger mutant of a
    bigger seed is not an outlier for its size alone."""
    return outcome.seconds / (size / 1024 + 1)


def outliers(costs: list[tuple[int, float]], factor: float) -> tuple[float, list[int]]:
    """The median cost and the indexes of the entries whose cost is over `factor` times it."""
    med = statistics.median(c for _, c in costs)
    return med, [i for i, c in costs if c > factor * med]
