"""The savecore directory layout: one input per dump, bookkeeping and non-transcripts skipped, --include/--exclude."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

from dumpscope.crashdir import SkipReason, dump_files, identity, read_header, select, skip_summary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakes import crash_tree, dump_header, write_dump  # noqa: E402


def test_one_input_per_dump_in_number_order_and_bookkeeping_skipped(tmp_path: Path) -> None:
    crash = crash_tree(tmp_path)
    write_dump(crash / "vmdump.10", "h10", compressed=True)
    (crash / "unix.2.txt").write_text("> ::status\n")  # a saved transcript is still an input
    sel = select([str(crash)])
    assert sel.inputs == tuple(str(crash / n) for n in ("vmdump.0", "vmcore.1", "unix.2.txt", "vmcore.2", "vmdump.10"))
    assert set(sel.dumps) == {str(crash / n) for n in ("vmdump.0", "vmcore.1", "vmcore.2", "vmdump.10")}
    assert sorted((Path(s.path).name, s.reason) for s in sel.skipped) == [
        ("METRICS.csv", SkipReason.BOOKKEEPING), ("bounds", SkipReason.BOOKKEEPING), ("minfree", SkipReason.BOOKKEEPING)]
    d1 = sel.dumps[str(crash / "vmcore.1")]
    assert (d1.number, d1.unix, d1.vmdump) == (1, str(crash / "unix.1"), None)


def test_an_expanded_dump_is_preferred_to_its_compressed_copy(tmp_path: Path) -> None:
    write_dump(tmp_path / "vmdump.4", "h", compressed=True)
    (tmp_path / "unix.4").write_bytes(b"x")
    write_dump(tmp_path / "vmcore.4", "h")
    (d,) = select([str(tmp_path)]).dumps.values()
    assert (d.name, d.vmdump) == (str(tmp_path / "vmcore.4"), str(tmp_path / "vmdump.4"))
    assert dump_files(str(tmp_path / "vmdump.4")) == d  # named alone, the same dump


def test_half_a_dump_is_an_input_with_its_problem(tmp_path: Path) -> None:
    (tmp_path / "unix.3").write_bytes(b"x")
    d = dump_files(str(tmp_path / "unix.3"))
    assert d is not None and d.problem == "incomplete dump: unix.3 without vmcore.3 (and no vmdump.3)"
    assert dump_files(str(tmp_path / "vmcore.9")) is None  # nothing there: read_source says 'no such file'


def test_plainly_non_transcripts_are_skipped_and_counted(tmp_path: Path) -> None:
    for name in ("a.txt", "a.expect", "INDEX.md", "README", "readme.txt", "shot.png", "b.txt.gz", "notes.log"):
        (tmp_path / name).write_text("x")
    sel = select([str(tmp_path)])
    assert [Path(p).name for p in sel.inputs] == ["a.txt", "b.txt.gz", "notes.log"]
    assert skip_summary(sel.skipped) == "skipped 5 files: 5 not a transcript"
    # named one by one, a file is always an input
    assert select([str(tmp_path / "a.expect")]).inputs == (str(tmp_path / "a.expect"),)


def test_include_and_exclude_say_exactly_what_is_an_input(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.txt", "b.log", "sub/c.txt", "x.expect"):
        (tmp_path / name).write_text("x")
    inc = select([str(tmp_path)], include=["*.txt", "*.expect"])
    assert [os.path.relpath(p, tmp_path) for p in inc.inputs] == ["a.txt", "sub/c.txt", "x.expect"]
    assert [(Path(s.path).name, s.reason) for s in inc.skipped] == [("b.log", SkipReason.NOT_INCLUDED)]
    exc = select([str(tmp_path)], exclude=["sub/*"])
    assert [os.path.relpath(p, tmp_path) for p in exc.inputs] == ["a.txt", "b.log"]
    assert skip_summary(exc.skipped) == "skipped 2 files: 1 excluded by --exclude, 1 not a transcript"


def test_the_dump_header_is_read_in_either_byte_order(tmp_path: Path) -> None:
    p = write_dump(tmp_path / "vmcore.0", "cn7", "0f1e2d3c-0000-4000-8000-00000000abcd")
    h = read_header(str(p))
    assert h is not None and (h.uuid, h.nodename) == ("0f1e2d3c-0000-4000-8000-00000000abcd", "cn7")
    assert h.panic == "attempt to reprogram non-existent cyclic"
    # SPARC writes it big-endian; a 64-bit header's fields sit at the same offsets
    le = dump_header("sparc1", "u-1")
    be = struct.pack(">4I", *struct.unpack("<4I", le[:16])) + le[16:]
    (tmp_path / "vmcore.1").write_bytes(be)
    h1 = read_header(str(tmp_path / "vmcore.1"))
    assert h1 is not None and (h1.nodename, h1.uuid) == ("sparc1", "u-1")
    (tmp_path / "vmcore.2").write_bytes(b"> ::status\n" * 300)
    assert read_header(str(tmp_path / "vmcore.2")) is None


def test_identity_follows_size_mtime_and_uuid(tmp_path: Path) -> None:
    (tmp_path / "unix.0").write_bytes(b"x")
    write_dump(tmp_path / "vmcore.0", "h", "uuid-a")
    d = dump_files(str(tmp_path / "vmcore.0"))
    assert d is not None
    key = identity(d)
    assert key.startswith("dump:") and identity(d) == key
    st = (tmp_path / "vmcore.0").stat()
    write_dump(tmp_path / "vmcore.0", "h", "uuid-b")  # same size
    os.utime(tmp_path / "vmcore.0", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert identity(d) != key  # only the UUID differs
    write_dump(tmp_path / "vmcore.0", "h", "uuid-a")  # the first dump's bytes again: its key again
    os.utime(tmp_path / "vmcore.0", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert identity(d) == key
    os.utime(tmp_path / "vmcore.0", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert len({identity(d), key}) == 2  # only the mtime differs
    os.utime(tmp_path / "vmcore.0", ns=(st.st_atime_ns, st.st_mtime_ns))
    with open(tmp_path / "vmcore.0", "ab") as f:
        f.write(b"\0")  # past the header: the UUID stays
    os.utime(tmp_path / "vmcore.0", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert identity(d) != key  # only the size differs


def test_a_directory_given_twice_lists_its_dumps_twice(tmp_path: Path) -> None:
    (tmp_path / "unix.0").write_bytes(b"x")
    write_dump(tmp_path / "vmcore.0", "h")
    sel = select([str(tmp_path), str(tmp_path), str(tmp_path / "unix.0")])
    assert sel.inputs == (str(tmp_path / "vmcore.0"),) * 3


def test_a_walk_stats_each_file_of_a_dump_once(tmp_path: Path, monkeypatch) -> None:
    # unix.N, vmcore.N and vmdump.N each lead to the same dump: once one of them is taken, the others
    # must not look at the disk again (three files, each stat'ed once, not three times each).
    for n in (0, 1):
        (tmp_path / f"unix.{n}").write_bytes(b"x")
        write_dump(tmp_path / f"vmcore.{n}", "h")
        write_dump(tmp_path / f"vmdump.{n}", "h", compressed=True)
    stats: dict[str, int] = {}
    real = os.stat

    def counting(path, *args, **kwargs):
        name = os.path.basename(os.fspath(path))
        stats[name] = stats.get(name, 0) + 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting)
    sel = select([str(tmp_path)])
    monkeypatch.setattr(os, "stat", real)
    assert sel.inputs == (str(tmp_path / "vmcore.0"), str(tmp_path / "vmcore.1"))
    assert {k: v for k, v in stats.items() if k[:1] in "uv"} == {
        f"{k}.{n}": 1 for k in ("unix", "vmcore", "vmdump") for n in (0, 1)}
