"""Turn what the user named (files, directories, `-`) into an ordered list of decoded inputs."""

from __future__ import annotations

import bz2
import errno
import hashlib
import lzma
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = [
    "DEFAULT_MAX_BYTES",
    "STDIN_NAME",
    "Source",
    "expand",
    "iter_sources",
    "read_source",
]

# The parser's peak memory is about 10x its input, so refusing inputs above 128 MiB (after
# decompression) bounds one transcript's memory at roughly 1.3 GB. Real mdb transcripts are KBs to a
# few MBs; anything near this limit is almost certainly not a transcript (a raw vmcore, a log dump).
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

STDIN_NAME = "<stdin>"

_MIB = 1024 * 1024
_KIB = 1024
_CHUNK = 1024 * 1024
# xz's dictionary is allocated up front and a crafted header can ask for 1.5 GiB; `xz -9` needs
# 65 MiB, so this cap refuses only hostile or exotic files.
_XZ_MEMLIMIT = 128 * 1024 * 1024
_SNIFF = 64 * 1024  # binary detection looks at this much of the (decompressed) input

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_REPLACEMENT = "\ufffd"
_ENCODED_REPLACEMENT = _REPLACEMENT.encode("utf-8")

# Control bytes that never occur in text. Tab, newline, CR, FF, VT, backspace (typo corrections
# captured by script(1)) and ESC (ANSI colour codes pasted from a terminal) are excluded on purpose:
# transcripts really contain them, and the parser neutralises them later.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v\b\x1b") + b"\x7f"
_MAX_CONTROL_RATIO = 0.05  # random bytes have ~10%; text has ~0
_MAX_REPLACED_RATIO = 0.25  # above this the "text" is mostly replacement characters


@dataclass(frozen=True, slots=True)
class Source:
    """One input, read and decoded (or the one-line reason it could not be)."""

    name: str  # the path as the user gave it (walked files: given dir joined with relative path); '<stdin>' for '-'
    text: str | None  # decoded text, BOM stripped, line endings untouched; None when error is set
    error: str | None  # one-line reason the input is unusable ("no such file", "empty file", ...); None if usable
    digest: str  # sha256 hex of the bytes after decompression (cache key); '' when error is set or not asked for
    size: int  # bytes as stored (compressed size for compressed inputs; st_size for refused large files)
    notes: tuple[str, ...] = ()  # degradations that still left usable text ("decompressed gzip", ...)

    @property
    def ok(self) -> bool:
        """True when the input was read and decoded into usable text."""
        return self.error is None


# ----------------------------------------------------------------------------------------------
# expand


def expand(paths: Sequence[str], *, walk_dirs: bool = True, specials: list[str] | None = None) -> list[str]:
    """Expand the paths the user named into the ordered list of inputs to read.

    Each argument contributes in the order given. '-' (stdin) and paths that do not exist stay as
    they are, so they become error rows later rather than vanishing. A directory (when `walk_dirs`)
    becomes its regular files, recursively, sorted byte-wise by relative path, each named as the
    directory as given joined with the relative path; names starting with '.' (files and
    directories) are skipped, and so are FIFOs, sockets and devices (and symlinks to them), which are
    not transcripts and could block a read or never end one: they are never opened, and their paths
    are appended to `specials` when it is given, for the caller to report. Dangling or looping
    symlinks and unlistable subdirectories are kept so that they show up as error rows. Symlinked
    directories are followed, but every directory is walked at most once (tracked by (st_dev,
    st_ino)), so symlink loops terminate.

    Duplicates: an argument given twice is listed twice, because the user asked for it twice (this
    also holds for a directory given twice, or a file given both explicitly and inside a given
    directory). Within one directory argument, a file reached both directly and through a symlink
    is listed once, under its non-symlink path when it has one; distinct hard links are distinct
    names and are all kept.
    """
    out: list[str] = []
    for arg in paths:
        if arg != "-" and walk_dirs and _is_dir(arg):
            found_specials: list[str] = []
            out.extend(os.path.join(arg, rel) if rel else arg for rel in _walk(arg, found_specials))
            if specials is not None:
                specials.extend(os.path.join(arg, rel) for rel in sorted(found_specials, key=os.fsencode))
        else:
            out.append(arg)
    return out


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class _Found:
    rel: str  # path relative to the walked root
    path: str  # path to stat (root joined with rel)
    via_link: bool  # reached through a symlink (to a file or through a symlinked directory)
    dedupe: bool  # False for entries that are not readable files (dangling links, unlistable dirs)


def _walk(root: str, specials: list[str]) -> list[str]:
    # Two phases so that a file reachable both directly and through a symlink keeps its real name:
    # first the real tree (symlinked directories only recorded), then the recorded links, each
    # walked only if its directory was not walked yet.
    visited: set[tuple[int, int]] = set()
    found: list[_Found] = []
    links: list[tuple[str, str]] = []  # (path, rel) of symlinked directories, FIFO

    st = os.stat(root)
    visited.add((st.st_dev, st.st_ino))
    _scan(root, "", False, visited, found, links, specials)
    while links:
        path, rel = links.pop(0)
        try:
            st = os.stat(path)
        except OSError:
            continue  # vanished since it was listed
        ident = (st.st_dev, st.st_ino)
        if ident in visited:
            continue  # a loop, or a directory already walked under another name
        visited.add(ident)
        _scan(path, rel, True, visited, found, links, specials)

    kept: list[str] = []
    seen: set[tuple[int, int]] = set()
    needs_ident = any(f.via_link for f in found)
    for f in sorted(found, key=lambda f: f.via_link):  # stable: direct entries first
        if needs_ident and f.dedupe:
            try:
                fst = os.stat(f.path)
            except OSError:
                kept.append(f.rel)
                continue
            ident = (fst.st_dev, fst.st_ino)
            if f.via_link and ident in seen:
                continue
            seen.add(ident)
        kept.append(f.rel)
    # Byte-wise order of the whole relative path (what `LC_ALL=C sort` gives), stable across runs
    # and machines; os.fsencode round-trips undecodable names.
    kept.sort(key=os.fsencode)
    return kept


def _scan(
    top: str,
    top_rel: str,
    via_link: bool,
    visited: set[tuple[int, int]],
    found: list[_Found],
    links: list[tuple[str, str]],
    specials: list[str],
) -> None:
    # Iterative depth-first walk (a recursive one would hit the recursion limit on deep trees).
    stack = [(top, top_rel)]
    while stack:
        dirpath, rel = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError:
            # Unlistable (permission denied, vanished): keep it so it becomes an error row.
            found.append(_Found(rel, dirpath, via_link, dedupe=False))  # rel "" = the root itself
            continue
        subdirs: list[tuple[str, str]] = []
        for e in entries:
            if e.name.startswith("."):
                continue
            erel = os.path.join(rel, e.name) if rel else e.name
            try:
                is_link = e.is_symlink()
                is_dir = e.is_dir()
                is_file = not is_dir and e.is_file()
            except OSError:
                found.append(_Found(erel, e.path, via_link, dedupe=False))
                continue
            if is_dir:
                if is_link:
                    links.append((e.path, erel))
                    continue
                try:
                    dst = e.stat()
                except OSError:
                    found.append(_Found(erel, e.path, via_link, dedupe=False))
                    continue
                ident = (dst.st_dev, dst.st_ino)
                if ident not in visited:  # bind mounts can make a real tree revisit itself
                    visited.add(ident)
                    subdirs.append((e.path, erel))
            elif is_file:
                found.append(_Found(erel, e.path, via_link or is_link, dedupe=True))
            elif is_link and not _exists(e.path):
                # Dangling or looping symlink: not silently dropped; read_source names the problem.
                found.append(_Found(erel, e.path, via_link, dedupe=False))
            else:
                # A FIFO, socket or device, or a symlink to one: never opened (a FIFO's open blocks
                # until a writer comes, /dev/zero never ends), only reported.
                specials.append(erel)
        stack.extend(reversed(subdirs))


# ----------------------------------------------------------------------------------------------
# read_source


class _Unusable(Exception):
    """Internal: carries the one-line reason an input is unusable up to read_source."""

    def __init__(self, reason: str, size: int = 0) -> None:
        super().__init__(reason)
        self.size = size  # bytes as stored, when known before giving up


def read_source(
    path: str, *, stdin: BinaryIO | None = None, max_bytes: int = DEFAULT_MAX_BYTES, digest: bool = True
) -> Source:
    """Read one input named by the user and decode it to text.

    `path` is a file path or '-' for standard input (`stdin`, default `sys.stdin.buffer`). Inputs
    compressed with gzip, bzip2 or xz are recognised by their magic bytes, whatever their name, and
    decompressed in a bounded stream. Inputs larger than `max_bytes` (before or after decompression)
    are refused without being read whole. Never raises for I/O or content problems: the returned
    Source carries a one-line `error` instead (missing, directory, permission, empty, binary,
    undecodable, too large, corrupt compressed data). Text that is mostly UTF-8 with a few bad
    bytes is decoded with replacement characters and a note. With `digest=False` the content is not
    hashed (the digest is only a cache key) and `Source.digest` is ''.
    """
    name = STDIN_NAME if path == "-" else path
    size = 0
    notes: list[str] = []
    try:
        if path == "-":
            raw = _read_stdin(stdin, max_bytes)
        else:
            raw, size = _read_file(path, max_bytes)
        size = size or len(raw)
        data = _maybe_decompress(raw, max_bytes, notes)
        del raw
        text = _decode(data, notes)
    except _Unusable as exc:
        return Source(name, None, str(exc), "", size or exc.size, tuple(notes))
    return Source(name, text, None, hashlib.sha256(data).hexdigest() if digest else "", size, tuple(notes))


def iter_sources(
    paths: Sequence[str],
    *,
    walk_dirs: bool = True,
    stdin: BinaryIO | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[Source]:
    """Yield one Source per input of `expand(paths)`, in that order, reading each lazily."""
    for p in expand(paths, walk_dirs=walk_dirs):
        yield read_source(p, stdin=stdin, max_bytes=max_bytes)


def _read_stdin(stdin: BinaryIO | None, max_bytes: int) -> bytes:
    stream: BinaryIO | None = stdin
    if stream is None:
        stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise _Unusable("standard input is not available")
    try:
        data = _read_bounded(stream.read, max_bytes)
    except OSError as exc:
        raise _Unusable(_os_reason(exc)) from None
    if data is None:
        raise _Unusable(f"too large (more than limit {_fmt_size(max_bytes)})")
    return data


def _read_file(path: str, max_bytes: int) -> tuple[bytes, int]:
    try:
        st = os.stat(path)
    except ValueError:  # embedded NUL in the path
        raise _Unusable("invalid path (NUL byte in name)") from None
    except OSError as exc:
        raise _Unusable(_os_reason(exc, path)) from None
    if stat.S_ISDIR(st.st_mode):
        try:
            os.scandir(path).close()
        except PermissionError:
            raise _Unusable("permission denied (cannot list directory)") from None
        except OSError:
            pass
        raise _Unusable("is a directory")
    regular = stat.S_ISREG(st.st_mode)
    # Refuse by size before reading anything: the 200 MB case must not cost 200 MB of memory.
    if regular and st.st_size > max_bytes:
        raise _Unusable(
            f"too large ({_fmt_size(st.st_size)} > limit {_fmt_size(max_bytes)})", st.st_size
        )
    try:
        with open(path, "rb") as f:
            data = _read_bounded(f.read, max_bytes, st.st_size if regular else 0)
    except OSError as exc:
        raise _Unusable(_os_reason(exc, path)) from None
    if data is None:  # grew while reading, or a device / FIFO with no size
        raise _Unusable(f"too large (more than limit {_fmt_size(max_bytes)})")
    return data, st.st_size if regular else len(data)


def _read_bounded(read: Callable[[int], bytes], max_bytes: int, size_hint: int = 0) -> bytes | None:
    # Read in chunks; None as soon as more than max_bytes arrived (the rest is left unread). A
    # regular file's size is read in one call, so the join below does not copy it a second time.
    parts: list[bytes] = []
    total = 0
    want = size_hint + 1 if size_hint else _CHUNK
    while True:
        chunk = read(min(want, max_bytes + 1 - total))
        want = _CHUNK
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            return None


def _os_reason(exc: OSError, path: str | None = None) -> str:
    code = exc.errno
    if code == errno.ENOENT:
        if path is not None and os.path.islink(path):
            return "no such file (dangling symlink)"
        return "no such file"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.EISDIR:
        return "is a directory"
    if code == errno.ENOTDIR:
        return "no such file (a path component is not a directory)"
    if code == errno.ELOOP:
        return "symlink loop"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


# --- decompression ------------------------------------------------------------------------------


class _Decompressor(Protocol):
    # What zlib, bz2 and lzma decompressor objects have in common.
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


# magic prefix, format name, factory. bzip2's magic is 'BZh' plus a block-size digit; requiring the
# digit keeps a text file that happens to start with "BZh" from being taken for bzip2.
_FORMATS: tuple[tuple[Callable[[bytes], bool], str, Callable[[], _Decompressor]], ...] = (
    (lambda b: b[:2] == b"\x1f\x8b", "gzip", lambda: zlib.decompressobj(wbits=31)),
    (lambda b: b[:3] == b"BZh" and b[3:4] in b"123456789" and len(b) > 3, "bzip2", bz2.BZ2Decompressor),
    (
        lambda b: b[:6] == b"\xfd7zXZ\x00",
        "xz",
        lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMLIMIT),
    ),
)


def _maybe_decompress(raw: bytes, max_bytes: int, notes: list[str]) -> bytes:
    for is_fmt, fmt, factory in _FORMATS:  # noqa: B007 - fmt and factory are used after the loop
        if is_fmt(raw):
            break
    else:
        return raw
    notes.append(f"decompressed {fmt}")
    out = bytearray()
    pending = raw
    members = 0
    while True:
        dec = factory()
        try:
            # max_length caps the output of every call, so a decompression bomb costs at most
            # max_bytes + 1 bytes before it is refused.
            out += dec.decompress(pending, max_bytes + 1 - len(out))
        except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
            if isinstance(exc, lzma.LZMAError) and "memory usage limit" in str(exc).lower():
                raise _Unusable(
                    f"xz data needs more than {_fmt_size(_XZ_MEMLIMIT)} of memory to decompress"
                ) from None
            if not out:
                raise _Unusable(f"corrupt {fmt} data: {_first_line(exc)}") from None
            notes.append(f"corrupt {fmt} data after {len(out)} bytes ignored ({_first_line(exc)})")
            break
        if len(out) > max_bytes:
            raise _Unusable(f"too large after decompression (more than limit {_fmt_size(max_bytes)})")
        if not dec.eof:
            # All input consumed (output was below the cap) but the stream did not end: truncated.
            if not out:
                raise _Unusable(f"corrupt {fmt} data: truncated stream")
            notes.append(f"truncated {fmt} data (decompressed {len(out)} bytes)")
            break
        members += 1
        # Concatenated members/streams (`cat a.gz b.gz`, pigz, pbzip2) are one input; xz pads
        # between streams with NUL bytes.
        pending = dec.unused_data.lstrip(b"\x00")
        if not pending:
            break
        if not is_fmt(pending):
            notes.append(f"trailing data after {fmt} stream ignored ({len(pending)} bytes)")
            break
    return bytes(out)


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__


# --- decoding -----------------------------------------------------------------------------------


def _decode(data: bytes, notes: list[str]) -> str:
    if not data:
        raise _Unusable("empty file")
    # PowerShell's `>` writes UTF-16 with a BOM; decode it rather than calling it binary.
    if data[:2] in _UTF16_BOMS:
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise _Unusable("not UTF-8 text (invalid UTF-16)") from None
        notes.append("decoded UTF-16")
        return _non_blank(text)
    sniff = data[:_SNIFF]
    if b"\x00" in sniff:
        raise _Unusable("binary file (NUL bytes)")
    controls = len(sniff) - len(sniff.translate(None, _CONTROL_BYTES))
    if controls > _MAX_CONTROL_RATIO * len(sniff):
        raise _Unusable("binary file (control bytes)")
    # Decode through a memoryview: slicing the BOM off bytes would copy the whole input.
    body = memoryview(data)[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    try:
        return _non_blank(str(body, "utf-8"))
    except UnicodeDecodeError:
        pass
    text = str(body, "utf-8", "replace")
    replaced = text.count(_REPLACEMENT) - data.count(_ENCODED_REPLACEMENT)  # the BOM is no U+FFFD
    if replaced > _MAX_REPLACED_RATIO * len(text):
        raise _Unusable("not UTF-8 text")
    notes.append(f"non-UTF-8 bytes replaced ({replaced})")
    return _non_blank(text)


def _non_blank(text: str) -> str:
    if not text or text.isspace():  # isspace(), not strip(): no copy of a 100 MB text
        raise _Unusable("empty file (whitespace only)")
    return text


def _fmt_size(n: int) -> str:
    for unit, scale in (("MiB", _MIB), ("KiB", _KIB)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if n % scale == 0 else f"{value:.1f} {unit}"
    return f"{n} bytes"
