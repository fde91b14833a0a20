"""What the user named, as savecore lays crash directories out: one input per dump, transcripts, and skipped files."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dumpscope.sources import expand

__all__ = [
    "BOOKKEEPING",
    "DumpFiles",
    "DumpHeader",
    "DumpKind",
    "Selection",
    "SkipReason",
    "Skipped",
    "dump_files",
    "identity",
    "read_header",
    "select",
    "skip_summary",
]

# illumos savecore(8) (usr/src/cmd/savecore/savecore.c): `bounds` holds the next dump number,
# `minfree` the space to keep free (KB), METRICS.csv the dump's timing metrics. None is a dump.
BOOKKEEPING = frozenset({"bounds", "minfree", "METRICS.csv"})

# vmdump.N is the compressed dump savecore saves by default (DUMPADM_CSAVE=on); `savecore -f
# vmdump.N DIR` expands it into DIR/unix.N (the kernel's symbol table) and DIR/vmcore.N.
_SAVECORE_NAME = re.compile(r"(vmdump|vmcore|unix)\.([0-9]+)")
# coreadm's default pattern is 'core'; SmartOS zones keep /zones/<uuid>/cores/core.<prog>.<pid>.
_CORE_NAME = re.compile(r"core(\..+)?")

# Files that are plainly not transcripts, skipped (and counted) when a directory is walked. Kept to
# what no one saves mdb output as: golden-file expectations, documentation, images.
_NOT_TRANSCRIPT_SUFFIXES = frozenset({
    ".expect", ".md", ".markdown", ".rst", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".bmp",
    ".pdf", ".tiff",
})
_NOT_TRANSCRIPT_STEMS = ("readme", "license", "licence", "copying", "changelog")


class DumpKind(StrEnum):
    """What sort of dump an input is."""

    KERNEL = "kernel dump"  # savecore's unix.N + vmcore.N, or the compressed vmdump.N
    PROCESS = "process core"  # a user process's ELF core file (core, core.<prog>.<pid>)


class SkipReason(StrEnum):
    """Why a file found in a walked directory is not an input. Shown, with counts, in the summary line."""

    BOOKKEEPING = "savecore bookkeeping"  # bounds, minfree, METRICS.csv
    NOT_TRANSCRIPT = "not a transcript"  # .expect, README, INDEX.md, images
    NOT_REGULAR = "not a regular file"  # a FIFO, socket or device (or a symlink to one): never opened
    EXCLUDED = "excluded by --exclude"
    NOT_INCLUDED = "not matched by --include"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file a directory walk found and did not take as an input."""

    path: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class DumpFiles:
    """One crash dump on disk: savecore's files for dump N, or one process core file."""

    name: str  # the input's name in the output: the file analysed (vmcore.N, else vmdump.N, or the core)
    kind: DumpKind
    number: int | None = None  # N of unix.N / vmcore.N / vmdump.N
    unix: str | None = None  # the saved kernel symbol table, when savecore has expanded the dump
    vmcore: str | None = None
    vmdump: str | None = None  # the compressed dump, when present
    core: str | None = None  # the process core file
    problem: str | None = None  # why it cannot be analysed as it is ("unix.3 without vmcore.3")

    @property
    def files(self) -> tuple[str, ...]:
        """The dump's files on disk, in a fixed order."""
        return tuple(p for p in (self.unix, self.vmcore, self.vmdump, self.core) if p)


@dataclass(frozen=True, slots=True)
class Selection:
    """The inputs a run will report (each exactly once, in order) and the files it skipped."""

    inputs: tuple[str, ...]  # transcript paths, '-', and dump names (DumpFiles.name)
    dumps: dict[str, DumpFiles]  # the inputs that are dumps, by name
    skipped: tuple[Skipped, ...]


def select(paths: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Selection:
    """The inputs of `paths`: files and '-' as given, directories walked and read as savecore lays them out.

    In a walked directory, savecore's unix.N, vmcore.N and vmdump.N make one input per dump N;
    `bounds`, `minfree` and `METRICS.csv` are skipped, and so are files that are plainly not
    transcripts (.expect, README, .md, images) and FIFOs, sockets and devices (never opened).
    `include` and `exclude` are glob patterns matched against each walked file's path relative to
    the directory given and against its base name:
    with `include`, exactly the files matching one of them are inputs (the built-in skips then do
    not apply); a file matching an `exclude` pattern never is. Files named one by one are always
    inputs (a dump file named alone is that dump).
    """
    inputs: list[str] = []
    dumps: dict[str, DumpFiles] = {}
    skipped: list[Skipped] = []
    for arg in paths:
        if arg == "-" or not os.path.isdir(arg):
            _take(arg, inputs, dumps, {})
            continue
        start = len(inputs)
        prefix = len(os.path.join(arg, ""))  # expand names each file os.path.join(arg, rel)
        specials: list[str] = []
        walked = expand([arg], specials=specials)
        skipped.extend(Skipped(path, SkipReason.NOT_REGULAR) for path in specials)
        taken: dict[str, str] = {}  # the dumps of this argument (a directory given twice is listed twice)
        for path in walked:
            reason = _skip_reason(path[prefix:] if path != arg else os.path.basename(path), include, exclude)
            if reason is not None:
                skipped.append(Skipped(path, reason))
                continue
            _take(path, inputs, dumps, taken)
        # Dumps in the order of their number (vmdump.0 before unix.1 + vmcore.1, dump 2 before
        # dump 10), in the places the walk gave dumps; transcripts keep theirs.
        seen = set(taken.values())
        slots = [i for i in range(start, len(inputs)) if inputs[i] in seen]
        ordered = sorted((inputs[i] for i in slots), key=lambda n: (os.path.dirname(n), dumps[n].number or 0, n))
        for i, name in zip(slots, ordered, strict=True):
            inputs[i] = name
    return Selection(tuple(inputs), dumps, tuple(skipped))


def _take(path: str, inputs: list[str], dumps: dict[str, DumpFiles], taken: dict[str, str]) -> None:
    # `taken`: dump key (_dump_key) -> the dump's name, for the dumps of this argument so far.
    # unix.N, vmcore.N and vmdump.N of one dump make one input, and once one of them has been taken
    # the others are passed over by name alone: dump_files stats all three, once per dump.
    if path == "-":
        inputs.append(path)
        return
    key = _dump_key(path)
    if key in taken:
        return
    d = dump_files(path)
    if d is None:
        inputs.append(path)
        return
    taken[key] = d.name
    dumps[d.name] = d
    inputs.append(d.name)


def _savecore_name(path: str) -> tuple[str, str] | None:
    # (the path up to the base name, N) of savecore's unix.N, vmcore.N or vmdump.N (N as written:
    # unix.01 pairs with vmcore.01, not vmcore.1); None for any other name.
    base = path[path.rfind(os.sep) + 1:]  # os.path.split costs more than the rest of a directory walk's step
    m = _SAVECORE_NAME.fullmatch(base)
    return (path[:len(path) - len(base)], m.group(2)) if m is not None else None


def _dump_key(path: str) -> str:
    # What the files of one dump share: directory and N for savecore's files; a core is its own dump.
    name = _savecore_name(path)
    return path if name is None else name[0] + "\0" + name[1]


def _skip_reason(rel: str, include: Sequence[str], exclude: Sequence[str]) -> SkipReason | None:
    base = rel[rel.rfind(os.sep) + 1:]
    if exclude and any(fnmatch.fnmatchcase(rel, g) or fnmatch.fnmatchcase(base, g) for g in exclude):
        return SkipReason.EXCLUDED
    if include:
        hit = any(fnmatch.fnmatchcase(rel, g) or fnmatch.fnmatchcase(base, g) for g in include)
        return None if hit else SkipReason.NOT_INCLUDED
    if base in BOOKKEEPING:
        return SkipReason.BOOKKEEPING
    lower = base.lower()
    if lower[lower.rfind("."):] in _NOT_TRANSCRIPT_SUFFIXES or lower.startswith(_NOT_TRANSCRIPT_STEMS):
        # (a compressed transcript keeps its own suffix last: 'dump.txt.gz' is an input)
        return SkipReason.NOT_TRANSCRIPT
    return None


def skip_summary(skipped: Sequence[Skipped]) -> str:
    """One line for the end of a run: 'skipped 3 files: 2 savecore bookkeeping, 1 not a transcript'."""
    counts: dict[SkipReason, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    parts = ", ".join(f"{n} {reason.value}" for reason, n in counts.items())
    return f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''}: {parts}"


def dump_files(path: str) -> DumpFiles | None:
    """The dump a file belongs to, or None when it is not a dump file (a transcript, say).

    unix.N, vmcore.N and vmdump.N name kernel dump N of their directory: the expanded pair is used
    when both halves exist (no savecore needed), else the compressed vmdump.N; a lone half is a dump
    with a `problem`. A file named core or core.* that is an ELF core file is a process core.
    """
    savecore_name = _savecore_name(path)
    if savecore_name is not None:
        _, number = savecore_name
        n = int(number)
        directory = os.path.dirname(path)
        unix, vmcore, vmdump = (os.path.join(directory, f"{k}.{number}") for k in ("unix", "vmcore", "vmdump"))
        have_unix, have_vmcore, have_vmdump = (os.path.isfile(p) for p in (unix, vmcore, vmdump))
        if have_unix and have_vmcore:
            return DumpFiles(vmcore, DumpKind.KERNEL, n, unix, vmcore, vmdump if have_vmdump else None)
        if have_vmdump:
            return DumpFiles(vmdump, DumpKind.KERNEL, n, vmdump=vmdump)
        if have_unix or have_vmcore:
            have, missing = (f"unix.{n}", f"vmcore.{n}") if have_unix else (f"vmcore.{n}", f"unix.{n}")
            return DumpFiles(vmcore if have_vmcore else unix, DumpKind.KERNEL, n,
                             unix if have_unix else None, vmcore if have_vmcore else None,
                             problem=f"incomplete dump: {have} without {missing} (and no vmdump.{n})")
        return None  # none of them exists: read_source reports the path as it does any other
    base = path[path.rfind(os.sep) + 1:]
    if base.startswith("core") and _CORE_NAME.fullmatch(base) and _is_elf_core(path):
        return DumpFiles(path, DumpKind.PROCESS, core=path)
    return None


_ELF_MAGIC = b"\x7fELF"
_ET_CORE = 4


def _head(path: str, size: int) -> bytes:
    # A dump or core is never read whole: its header is all that is needed
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _is_elf_core(path: str) -> bool:
    # e_ident: magic, class, data (1 little-endian, 2 big-endian), ...; e_type follows at offset 16
    head = _head(path, 18)
    if len(head) < 18 or head[:4] != _ELF_MAGIC or head[5] not in (1, 2):
        return False
    order = "<" if head[5] == 1 else ">"
    return bool(struct.unpack(order + "H", head[16:18])[0] == _ET_CORE)


# --- the dump header ------------------------------------------------------------------------------

# illumos sys/dumphdr.h: dumphdr_t starts both vmcore.N and vmdump.N (savecore writes corehdr at
# offset 0). Fields up to dump_uuid: 4 x uint32, 5 x offset_t, struct utsname (5 x SYS_NMLN=257),
# dump_platform[257], dump_panicstring[200], time_t, 7 x long/size_t, uint32, dump_uuid[37].
DUMP_MAGIC = 0xDEFEC8ED
_NMLN = 257
_NODENAME = 56 + _NMLN  # utsname.nodename follows utsname.sysname
_PANICSTRING = 56 + 5 * _NMLN + _NMLN
_UUID = {64: 1868, 32: 1836}  # after alignment of time_t and the longs for each word size
_HEADER_BYTES = 1905


@dataclass(frozen=True, slots=True)
class DumpHeader:
    """What a kernel dump's own header says, read without mdb."""

    uuid: str  # dump_uuid, the OS image UUID ::status shows as 'image uuid'; '' when not set
    nodename: str  # the host that panicked
    panic: str  # dump_panicstring (at most 199 characters)


def read_header(path: str) -> DumpHeader | None:
    """The dumphdr_t at the start of a vmcore.N or vmdump.N, or None when the file does not start with one."""
    head = _head(path, _HEADER_BYTES)
    if len(head) < 16:
        return None
    for order in ("<", ">"):
        magic, _version, _flags, wordsize = struct.unpack(order + "4I", head[:16])
        if magic == DUMP_MAGIC and wordsize in _UUID:
            at = _UUID[wordsize]
            return DumpHeader(_cstr(head[at:at + 37]), _cstr(head[_NODENAME:_NODENAME + _NMLN]),
                              _cstr(head[_PANICSTRING:_PANICSTRING + 200]))
    return None


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def identity(dump: DumpFiles) -> str:
    """The cache key of a dump: its files' names, sizes and modification times, and its header's UUID.

    A dump is never read whole to key it (it can be many GB); its files are never rewritten in
    place, so an unchanged size and mtime mean an unchanged dump, and the UUID in its header tells
    two dumps apart that a copy gave the same stamp. Stable across runs and machines.
    """
    h = hashlib.sha256(dump.kind.value.encode())
    for p in dump.files:
        try:
            st = os.stat(p)
        except OSError:
            h.update(b"\0" + os.path.basename(p).encode() + b"\0-")
            continue
        h.update(b"\0" + os.path.basename(p).encode() + f"\0{st.st_size}\0{st.st_mtime_ns}".encode())
    header = read_header(dump.vmcore or dump.vmdump or "") if dump.kind is DumpKind.KERNEL else None
    h.update(b"\0uuid\0" + (header.uuid.encode() if header is not None else b""))
    return "dump:" + h.hexdigest()
