"""Fake illumos dumps and fake `mdb`/`savecore` on the PATH, for the tests of dumps and crash directories.

The dumps carry a real dumphdr_t (illumos sys/dumphdr.h, 64-bit little-endian, as amd64 writes it),
so dumpscope reads their UUID as it would a real dump's; the fake tools (tests/fakes/) replay the
recorded sessions of fixtures/dumps/ for the dump's host.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SESSIONS = HERE.parent / "fixtures" / "dumps"

DUMP_MAGIC = 0xDEFEC8ED
DF_VALID, DF_COMPLETE, DF_COMPRESSED = 0x1, 0x2, 0x8


def dump_header(host: str, uuid: str = "", panic: str = "", compressed: bool = False) -> bytes:
    """A dumphdr_t as an amd64 kernel writes it (field layout of illumos sys/dumphdr.h, version 10)."""
    flags = DF_VALID | DF_COMPLETE | (DF_COMPRESSED if compressed else 0)
    head = struct.pack("<4I5q", DUMP_MAGIC, 10, flags, 64, 0, 0, 0, 0, 0)
    uts = b"".join(s.encode().ljust(257, b"\0") for s in ("SunOS", host, "5.11", "joyent_20180216T202957Z", "i86pc"))
    head += uts + b"i86pc".ljust(257, b"\0") + panic.encode()[:199].ljust(200, b"\0")
    head += b"\0\0"  # time_t is 8-aligned
    head += struct.pack("<q7qI", 1_580_000_000, 12, 4096, 0xFFFF, 0, 0, 0, 0, 0)
    assert len(head) == 1868
    return head + uuid.encode().ljust(37, b"\0")


def write_dump(path: Path, host: str, uuid: str = "", compressed: bool = False, size: int = 8192) -> Path:
    """A fake dump file: the header, then filler up to `size` bytes."""
    data = dump_header(host, uuid, "attempt to reprogram non-existent cyclic", compressed)
    path.write_bytes(data + b"\xa5" * max(0, size - len(data)))
    return path


@dataclass
class FakeTools:
    """Where the fake tools are and what they were asked to do."""

    bin: Path
    log: Path

    def calls(self, tool: str | None = None) -> list[list[str]]:
        """The argv of every call so far (of one tool, when named)."""
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r["argv"] for r in rows if tool is None or r["tool"] == tool]


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: tuple[str, ...] = ("mdb", "savecore")) -> FakeTools:
    """Put executable fake `mdb` and `savecore` first on the PATH (only those named in `tools`)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    for name in tools:
        exe = bin_dir / name
        exe.write_text(f"#!{sys.executable}\n" + (HERE / "fakes" / f"{name}.py").read_text())
        exe.chmod(0o755)
    log = tmp_path / "fake-tools.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_TOOLS_LOG", str(log))
    monkeypatch.setenv("FAKE_MDB_SESSIONS", str(SESSIONS))
    return FakeTools(bin_dir, log)


def crash_tree(root: Path) -> Path:
    """A /var/crash/volatile as savecore leaves it, with three dumps and its bookkeeping.

    0: only the compressed vmdump.0 (host dent: the 12476 report's first dump; no remover to find);
    1: unix.1 + vmcore.1 (host bhyve-b: the report's second dump, remover only in ::stacks: the
       follow-up pass finds its stack); 2: unix.2 + vmcore.2 that mdb cannot load (host broken-c).
    """
    d = root / "var" / "crash" / "volatile"
    d.mkdir(parents=True)
    write_dump(d / "vmdump.0", "dent", "5c7bd8b2-5e5e-4fd4-9a2d-4a4fbd0c1c00", compressed=True)
    (d / "unix.1").write_bytes(b"\x7fELF fake kernel symbols\n")
    write_dump(d / "vmcore.1", "bhyve-b", "a1b2c3d4-0000-4000-8000-000000000001")
    (d / "unix.2").write_bytes(b"\x7fELF fake kernel symbols\n")
    write_dump(d / "vmcore.2", "broken-c", "a1b2c3d4-0000-4000-8000-000000000002")
    (d / "bounds").write_text("3\n")
    (d / "minfree").write_text("1048576\n")
    (d / "METRICS.csv").write_text("[[[[,,,savecore -f vmdump.0\n]]]]\n")
    return d
