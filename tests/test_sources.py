"""Tests for dumpscope.sources: expanding user-named inputs and reading them into text."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import hashlib
import io
import lzma
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from dumpscope.sources import DEFAULT_MAX_BYTES, Source, expand, iter_sources, read_source

STATUS = (
    "> ::status\n"
    "debugging crash dump vmcore.22 (64-bit) from dent\n"
    "operating system: 5.11 joyent_20180216T202957Z (i86pc)\n"
    "panic message: attempt to reprogram non-existent cyclic\n"
    "dump content: kernel pages only\n"
)

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    # preset 0 = 256 KiB dictionary: xz decoders allocate the whole dictionary up front, and the
    # bomb test measures output buffering, not the dictionary (default preset: 8 MiB).
    "xz": lambda data: lzma.compress(data, preset=0),
}


def write(path: Path, data: bytes | str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def rel_names(tmp_path: Path, names: list[str]) -> list[str]:
    return [os.path.relpath(n, tmp_path) for n in names]


# --- read_source: usable inputs --------------------------------------------------------------


def test_plain_text_is_read_with_digest_and_size(tmp_path: Path) -> None:
    p = write(tmp_path / "dump.txt", STATUS)
    src = read_source(p)
    assert src.ok and src.error is None
    assert src.name == p
    assert src.text == STATUS
    assert src.digest == hashlib.sha256(STATUS.encode()).hexdigest()
    assert src.size == len(STATUS.encode())
    assert src.notes == ()


def test_source_is_frozen() -> None:
    src = Source("x", "t", None, "", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        src.text = "other"  # type: ignore[misc]


def test_bom_stripped_but_line_endings_and_escapes_kept(tmp_path: Path) -> None:
    body = "> $C\r\n\x1b[1mffffff000f8328d0 vpanic()\x1b[0m\r\n"
    p = write(tmp_path / "crlf.txt", b"\xef\xbb\xbf" + body.encode())
    src = read_source(p)
    assert src.text == body  # no BOM, CRLF and ESC untouched: the parser normalises those


def test_bom_with_bad_bytes_counts_only_the_replacements(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + STATUS.encode() + b"panic message: caf\xe9\n"
    src = read_source(write(tmp_path / "bom-latin1.txt", data))
    assert src.text == STATUS + "panic message: caf\ufffd\n"
    assert src.notes == ("non-UTF-8 bytes replaced (1)",)
    assert src.digest == hashlib.sha256(data).hexdigest()  # the bytes as stored, BOM included


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_reading_holds_the_input_at_most_twice(tmp_path: Path, bom: bytes) -> None:
    # The bytes and the decoded text, nothing more: no copy to strip a BOM, none to hash.
    body = (STATUS * 40_000).encode()  # ~9 MB
    p = write(tmp_path / "big.txt", bom + body)
    tracemalloc.start()
    try:
        src = read_source(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert src.ok and src.text is not None and len(src.text) == len(body)
    assert peak < 2.2 * len(body)


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    p = write(tmp_path / "ps.txt", STATUS.encode("utf-16"))
    src = read_source(p)
    assert src.text == STATUS
    assert "decoded UTF-16" in src.notes


def test_few_bad_bytes_are_replaced_with_a_note(tmp_path: Path) -> None:
    # Two latin-1 bytes, each followed by ASCII, so each is one invalid UTF-8 sequence.
    data = STATUS.encode() + b"panic message: caf\xe9 na\xefve\n"
    src = read_source(write(tmp_path / "latin1.txt", data))
    assert src.ok
    assert src.text is not None and src.text.count("\ufffd") == 2
    assert "caf\ufffd na\ufffdve" in src.text
    assert src.notes == ("non-UTF-8 bytes replaced (2)",)
    assert src.digest == hashlib.sha256(data).hexdigest()


def test_genuine_replacement_characters_are_not_counted(tmp_path: Path) -> None:
    data = "a \ufffd b\n".encode() + b"c \xff d\n"
    src = read_source(write(tmp_path / "mixed.txt", data))
    assert src.notes == ("non-UTF-8 bytes replaced (1)",)


def test_text_starting_with_bzh_is_not_bzip2(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "bzh.txt", "BZh is not a transcript\n"))
    assert src.text == "BZh is not a transcript\n"
    assert src.notes == ()


def test_one_long_line_is_read(tmp_path: Path) -> None:
    line = "x" * (5 * 1024 * 1024)
    src = read_source(write(tmp_path / "long.txt", line))
    assert src.ok and src.text is not None and len(src.text) == len(line)


# --- read_source: compression ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_compressed_round_trip_by_magic_not_extension(tmp_path: Path, fmt: str) -> None:
    packed = COMPRESSORS[fmt](STATUS.encode())
    src = read_source(write(tmp_path / "dump.txt", packed))  # misleading extension on purpose
    assert src.text == STATUS
    assert src.notes == (f"decompressed {fmt}",)
    # The digest is of the decompressed bytes: the same transcript gives the same cache key.
    assert src.digest == hashlib.sha256(STATUS.encode()).hexdigest()
    assert src.size == len(packed)


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_concatenated_streams_are_one_input(tmp_path: Path, fmt: str) -> None:
    first, second = "> ::status\n", "> $C\nffffff000f8328d0 vpanic()\n"
    packed = COMPRESSORS[fmt](first.encode()) + COMPRESSORS[fmt](second.encode())
    src = read_source(write(tmp_path / "cat", packed))
    assert src.text == first + second


def test_compressed_stdin(tmp_path: Path) -> None:
    src = read_source("-", stdin=io.BytesIO(gzip.compress(STATUS.encode())))
    assert src.name == "<stdin>"
    assert src.text == STATUS
    assert src.notes == ("decompressed gzip",)


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_corrupt_compressed_data_is_an_error(tmp_path: Path, fmt: str) -> None:
    packed = COMPRESSORS[fmt](STATUS.encode())
    # Keep the magic (and header), garble everything after it.
    broken = packed[:10] + bytes(b ^ 0x5A for b in packed[10:])
    src = read_source(write(tmp_path / "bad", broken))
    assert src.error is not None and src.error.startswith(f"corrupt {fmt} data: ")
    assert src.text is None and src.digest == ""
    assert "\n" not in src.error


def test_truncated_gzip_keeps_what_decompressed(tmp_path: Path) -> None:
    text = "".join(f"ffffff000f8{i:05x} frame_{i}+0x{i:x}()\n" for i in range(4000))
    packed = gzip.compress(text.encode())
    src = read_source(write(tmp_path / "cut.gz", packed[: len(packed) // 2]))
    assert src.ok and src.text is not None
    assert 0 < len(src.text) < len(text)
    assert text.startswith(src.text)
    assert any(n.startswith("truncated gzip data") for n in src.notes)


def test_trailing_garbage_after_gzip_is_noted(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "tail.gz", gzip.compress(STATUS.encode()) + b"junk"))
    assert src.text == STATUS
    assert "trailing data after gzip stream ignored (4 bytes)" in src.notes


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_decompression_bomb_is_refused_with_bounded_memory(tmp_path: Path, fmt: str) -> None:
    bomb = COMPRESSORS[fmt](b"a" * (8 * 1024 * 1024))
    p = write(tmp_path / "bomb", bomb)
    limit = 64 * 1024
    tracemalloc.start()
    try:
        src = read_source(p, max_bytes=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert src.error is not None and src.error.startswith("too large after decompression")
    # 8 MiB of output must never be materialised: peak stays near limit + the small raw file.
    assert peak < 1024 * 1024


def test_xz_dictionary_memory_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dumpscope.sources as sources

    monkeypatch.setattr(sources, "_XZ_MEMLIMIT", 1024 * 1024)
    p = write(tmp_path / "big-dict.xz", lzma.compress(STATUS.encode()))  # preset 6: 8 MiB dictionary
    assert read_source(p).error == "xz data needs more than 1 MiB of memory to decompress"


# --- read_source: errors ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    src = read_source(str(tmp_path / "nope.txt"))
    assert src.error == "no such file"
    assert src.text is None and src.digest == "" and src.size == 0


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert read_source(str(tmp_path / "link")).error == "no such file (dangling symlink)"


def test_path_through_a_file(tmp_path: Path) -> None:
    p = write(tmp_path / "f.txt", STATUS)
    err = read_source(os.path.join(p, "x")).error
    assert err is not None and err.startswith("no such file")


def test_directory_is_an_error(tmp_path: Path) -> None:
    assert read_source(str(tmp_path)).error == "is a directory"


def test_empty_file(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "empty.txt", b""))
    assert src.error == "empty file"
    assert src.size == 0


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    err = read_source(write(tmp_path / "blank.txt", " \n\t\r\n\n")).error
    assert err is not None and err.startswith("empty file")


def test_empty_after_decompression(tmp_path: Path) -> None:
    src = read_source(write(tmp_path / "e.gz", gzip.compress(b"")))
    assert src.error == "empty file"


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    data = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + STATUS.encode()
    assert read_source(write(tmp_path / "a.out", data)).error == "binary file (NUL bytes)"


def test_many_control_bytes_mean_binary(tmp_path: Path) -> None:
    # No NUL at all, but one byte in ten is a control byte no text contains.
    data = (b"abcdefghi\x01" * 100) + b"\n"
    assert read_source(write(tmp_path / "ctl", data)).error == "binary file (control bytes)"


def test_mostly_invalid_utf8_is_not_text(tmp_path: Path) -> None:
    data = bytes(range(0x80, 0x100)) * 8  # no controls, no NUL, almost no valid sequence
    assert read_source(write(tmp_path / "hi", data)).error == "not UTF-8 text"


def test_too_large_is_refused_from_size_without_reading(tmp_path: Path) -> None:
    p = tmp_path / "huge.txt"
    with open(p, "wb") as f:  # sparse: 212 MiB of size, no data written
        f.truncate(212 * 1024 * 1024)
    src = read_source(str(p))
    assert src.error == "too large (212 MiB > limit 128 MiB)"
    assert src.size == 212 * 1024 * 1024
    assert DEFAULT_MAX_BYTES == 128 * 1024 * 1024


def test_too_large_with_small_limit(tmp_path: Path) -> None:
    p = write(tmp_path / "big.txt", "x" * 3072)
    assert read_source(p, max_bytes=1024).error == "too large (3 KiB > limit 1 KiB)"


def test_too_large_stdin_is_not_read_whole() -> None:
    stream = io.BytesIO(b"x" * 10_000)
    src = read_source("-", stdin=stream, max_bytes=1000)
    assert src.error is not None and src.error.startswith("too large")
    assert stream.tell() <= 1001  # stopped one byte past the limit


def test_permission_denied(tmp_path: Path) -> None:
    p = write(tmp_path / "secret.txt", STATUS)
    os.chmod(p, 0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running with privileges that read mode-000 files anyway")
        assert read_source(p).error == "permission denied"
    finally:
        os.chmod(p, 0o644)


def test_errors_are_one_line_and_never_raise(tmp_path: Path) -> None:
    paths = [str(tmp_path / "missing"), str(tmp_path), "bad\x00path"]
    for p in paths:
        src = read_source(p)
        assert src.error and "\n" not in src.error and "Traceback" not in src.error


# --- read_source: stdin ----------------------------------------------------------------------


def test_dash_reads_given_stdin() -> None:
    src = read_source("-", stdin=io.BytesIO(STATUS.encode()))
    assert src.name == "<stdin>"
    assert src.text == STATUS
    assert src.size == len(STATUS)


def test_empty_stdin() -> None:
    assert read_source("-", stdin=io.BytesIO(b"")).error == "empty file"


# --- expand ----------------------------------------------------------------------------------


def test_directory_walk_sorted_bytewise(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for rel in ["b.txt", "a/z.txt", "a.txt", "A.txt", "a/b/c.txt"]:
        write(d / rel, STATUS)
    # Byte order of whole relative paths: 'A' < 'a', and '.' (0x2e) < '/' (0x2f).
    assert rel_names(tmp_path, expand([str(d)])) == [
        "d/A.txt",
        "d/a.txt",
        "d/a/b/c.txt",
        "d/a/z.txt",
        "d/b.txt",
    ]


def test_names_join_the_directory_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "d" / "sub" / "x.txt", STATUS)
    monkeypatch.chdir(tmp_path)
    assert expand(["d"]) == [os.path.join("d", "sub", "x.txt")]
    assert expand(["d/"]) == ["d/sub/x.txt"]
    assert expand(["./d"]) == ["./d/sub/x.txt"]


def test_hidden_files_and_dirs_skipped(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for rel in ["keep.txt", ".hidden.txt", ".git/objects/x", "sub/.swp", "sub/keep2.txt"]:
        write(d / rel, STATUS)
    assert rel_names(tmp_path, expand([str(d)])) == ["d/keep.txt", "d/sub/keep2.txt"]


def test_symlink_loops_terminate_and_list_each_file_once(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(d / "one.txt", STATUS)
    write(d / "sub" / "two.txt", STATUS)
    (d / "sub" / "up").symlink_to("..")  # loop back to d
    (d / "self").symlink_to(".")  # loop onto itself
    (d / "alias").symlink_to("sub")  # second name for a walked dir
    (d / "latest.txt").symlink_to("one.txt")  # second name for a walked file
    assert rel_names(tmp_path, expand([str(d)])) == ["d/one.txt", "d/sub/two.txt"]


def test_symlinked_directory_outside_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "far.txt", STATUS)
    d = tmp_path / "d"
    write(d / "near.txt", STATUS)
    (d / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "back").symlink_to(d)  # loop through the outside tree
    assert rel_names(tmp_path, expand([str(d)])) == ["d/link/far.txt", "d/near.txt"]


def test_symlinked_root_directory_is_walked(tmp_path: Path) -> None:
    write(tmp_path / "real" / "x.txt", STATUS)
    (tmp_path / "ln").symlink_to("real")
    assert rel_names(tmp_path, expand([str(tmp_path / "ln")])) == ["ln/x.txt"]


def test_hard_links_are_distinct_names(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(d / "a.txt", STATUS)
    os.link(d / "a.txt", d / "b.txt")
    assert rel_names(tmp_path, expand([str(d)])) == ["d/a.txt", "d/b.txt"]


def test_dangling_symlink_in_walk_is_kept_fifo_skipped(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(d / "ok.txt", STATUS)
    (d / "broken").symlink_to("gone")
    os.mkfifo(d / "pipe")
    names = expand([str(d)])
    assert rel_names(tmp_path, names) == ["d/broken", "d/ok.txt"]
    assert read_source(names[0]).error == "no such file (dangling symlink)"


def test_unlistable_subdirectory_becomes_an_entry(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(d / "ok.txt", STATUS)
    locked = d / "locked"
    write(locked / "x.txt", STATUS)
    os.chmod(locked, 0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running with privileges that list mode-000 directories anyway")
        names = expand([str(d)])
        assert rel_names(tmp_path, names) == ["d/locked", "d/ok.txt"]
        err = read_source(names[0]).error
        assert err is not None and err.startswith("permission denied")
    finally:
        os.chmod(locked, 0o755)


def test_arguments_keep_their_order_missing_and_dash(tmp_path: Path) -> None:
    b = write(tmp_path / "b.txt", STATUS)
    a = write(tmp_path / "a.txt", STATUS)
    missing = str(tmp_path / "missing.txt")
    assert expand([b, missing, "-", a, b]) == [b, missing, "-", a, b]


def test_no_walk_keeps_directory_for_an_error_row(tmp_path: Path) -> None:
    write(tmp_path / "d" / "x.txt", STATUS)
    assert expand([str(tmp_path / "d")], walk_dirs=False) == [str(tmp_path / "d")]


def test_empty_directory_contributes_nothing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert expand([str(tmp_path / "d")]) == []


def test_order_is_stable_across_calls(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for i in (7, 3, 11, 0, 5):
        write(d / f"n{i}" / f"f{i}.txt", STATUS)
    first = expand([str(d)])
    assert first == expand([str(d)])
    assert rel_names(tmp_path, first) == [f"d/n{i}/f{i}.txt" for i in (0, 11, 3, 5, 7)]


# --- iter_sources ----------------------------------------------------------------------------


def test_iter_sources_one_row_per_input_bad_ones_included(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write(d / "a.txt", STATUS)
    write(d / "b.bin", b"\x00\x01\x02")
    write(d / "c.txt.gz", gzip.compress(STATUS.encode()))
    write(d / "d.txt", b"")
    missing = str(tmp_path / "missing")
    rows = list(iter_sources([str(d), missing, "-"], stdin=io.BytesIO(STATUS.encode())))
    assert [os.path.basename(r.name) for r in rows] == [
        "a.txt",
        "b.bin",
        "c.txt.gz",
        "d.txt",
        "missing",
        "<stdin>",
    ]
    assert [r.error for r in rows] == [
        None,
        "binary file (NUL bytes)",
        None,
        "empty file",
        "no such file",
        None,
    ]
    assert rows[0].digest == rows[2].digest == rows[5].digest


# --- the bad-input fixtures read as their .expect files say ----------------------------------

ERRORS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "errors"


@pytest.mark.parametrize("stem", ["err.empty", "err.binary", "err.non-utf8"])
def test_error_fixtures_fail_or_degrade_at_read_time(stem: str) -> None:
    fields = dict(
        line.split(": ", 1)
        for line in (ERRORS_DIR / f"{stem}.expect").read_text().splitlines()
        if line and not line.startswith("#")
    )
    src = read_source(str(ERRORS_DIR / f"{stem}.txt"))
    if "ERROR" in fields:
        assert src.error is not None and fields["ERROR"] in src.error
    else:
        assert src.ok
        assert any(fields["NOTE"] in n for n in src.notes)


# --- property: arbitrary bytes never raise ---------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MAGICS = [b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00", b"BZh9", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"\xef\xbb\xbf"]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(MAGICS), body=st.binary(max_size=2048))
def test_arbitrary_bytes_give_text_or_one_line_error(prefix: bytes, body: bytes) -> None:
    src = read_source("-", stdin=io.BytesIO(prefix + body), max_bytes=4096)
    assert (src.error is None) == (src.text is not None)
    assert (src.error is None) == (src.digest != "")
    if src.error is not None:
        assert src.error and "\n" not in src.error


def test_the_digest_is_computed_only_when_asked_for(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("> ::status\npanic message: x\n")
    hashed, plain = read_source(str(p)), read_source(str(p), digest=False)
    assert hashed.digest == hashlib.sha256(p.read_bytes()).hexdigest()
    assert plain.digest == "" and plain.text == hashed.text and plain.notes == hashed.notes
