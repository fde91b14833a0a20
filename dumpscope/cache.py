"""An opt-in SQLite cache of verdicts, keyed by transcript content, signature set and dumpscope version."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, Self

from dumpscope.errors import InputError
from dumpscope.verdict import (
    VERDICT_SCHEMA,
    Confidence,
    Event,
    Evidence,
    Fix,
    FixStatus,
    Hint,
    ShownFrame,
    ShownTrap,
    Verdict,
)

__all__ = [
    "BRIEF_FIELDS",
    "CACHE_SCHEMA",
    "RACY_NS",
    "Brief",
    "Cache",
    "FileStamp",
    "Known",
    "brief_of",
    "brief_verdict",
    "connect_readonly",
    "content_json",
    "json_line",
    "newest_json",
    "restore",
    "stamp_of",
    "verdict_from_json",
    "write_transaction",
]

# The layout of the file, migrated in place (see _migrate). The cache's own tables are only a cache
# and are rebuilt when their layout changes; the history tables are the user's record and never are.
# 2: the verdicts' table columns (BRIEF_FIELDS) in a table of their own; documents in a rowid table.
# 3: the history of triage runs (runs, dumps) beside the cache (issue 16).
CACHE_SCHEMA = 3
# A file modified this recently may change again within the filesystem's timestamp granularity
# without its (size, mtime) changing (git's "racily clean" problem; FAT and some NFS servers keep
# 1-2 s), so its stamp is not trusted and its content is hashed again next run.
RACY_NS = 2_000_000_000
# The application_id in the SQLite header marks a file as ours ("dsc1"), so `--cache` never
# rewrites a database that belongs to something else.
_APP_ID = 0x64736331
# Paths per `IN (...)` lookup: far below SQLite's variable limit (32766), large enough that the
# per-statement cost vanishes (one query per file cost ~50 us, more than the lookup itself).
_BATCH = 500

# The Verdict fields the table, CSV and --summary show, in the order of Brief. A cached re-run that
# prints one of those formats reads only these columns, never the verdict's JSON.
BRIEF_FIELDS = ("status", "error", "signature", "confidence", "bucket", "title", "platform")
Brief = tuple[str, str | None, str | None, str | None, str, str, str | None]

_TABLES = (
    # Verdicts of transcript content: the source name is blanked and read-time notes left out, so a
    # compressed copy and a renamed copy share one row. An ordinary rowid table: a ~3 KB document
    # fits one 4 KB leaf page there, where a WITHOUT ROWID table spills it to overflow pages (reading
    # the documents back took 3x longer).
    """CREATE TABLE IF NOT EXISTS verdicts (
        digest TEXT NOT NULL, sigset TEXT NOT NULL, version TEXT NOT NULL, verdict TEXT NOT NULL,
        UNIQUE (digest, sigset, version))""",
    # The same verdicts' BRIEF_FIELDS, in small rows of their own: the pre-check joins files to this
    # table, and a join to the documents' pages cost 4x more (a page read per file).
    """CREATE TABLE IF NOT EXISTS briefs (
        digest TEXT NOT NULL, sigset TEXT NOT NULL, version TEXT NOT NULL,
        status TEXT NOT NULL, error TEXT, signature TEXT, confidence TEXT, bucket TEXT NOT NULL,
        title TEXT NOT NULL, platform TEXT,
        PRIMARY KEY (digest, sigset, version)) WITHOUT ROWID""",
    # The fast pre-check: a file whose stat stamp is unchanged still has this digest.
    """CREATE TABLE IF NOT EXISTS files (
        path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, digest TEXT NOT NULL, notes TEXT NOT NULL
        ) WITHOUT ROWID""",
)
_CACHE_TABLE_NAMES = ("verdicts", "briefs", "files")

# The history (issue 16): one row per triage run that named this file (--db or --cache), and one row
# per distinct dump content ever triaged (the digest is the identity, as in the cache: a copy, a
# renamed or a compressed file is the same dump and is never counted twice). Times are UTC ISO 8601
# text ('2026-12-04T16:55:28Z'), which sorts as it reads. first_* are when a run first triaged the
# dump and never change; last_* are the last run that changed its row (its verdict columns, under a
# new signature set, or its name): a run that finds nothing changed writes nothing there.
_HISTORY_TABLES = (
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, inputs INTEGER NOT NULL DEFAULT 0,
        version TEXT NOT NULL, sigset TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dumps (
        digest TEXT PRIMARY KEY, first_run INTEGER NOT NULL, last_run INTEGER NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, source TEXT NOT NULL, host TEXT, platform TEXT,
        signature TEXT, confidence TEXT, bucket TEXT NOT NULL, title TEXT NOT NULL, fix_status TEXT,
        panic_message TEXT) WITHOUT ROWID""",
)



@dataclass(frozen=True, slots=True)
class FileStamp:
    """What os.stat says about an input file; unchanged stamp ⇒ unchanged content (unless racy)."""

    key: bytes  # the absolute path, as bytes (undecodable names survive)
    size: int  # st_size
    mtime_ns: int  # st_mtime_ns
    ctime_ns: int  # st_ctime_ns (catches `touch -d` restoring an old mtime)
    ino: int  # st_ino (catches a file replaced by rename)
    racy: bool  # modified too recently to trust the stamp


@dataclass(frozen=True, slots=True)
class Known:
    """What the cache knows about a file whose stat stamp is unchanged."""

    digest: str  # sha256 of its content, as read last time
    notes: tuple[str, ...]  # the read notes it had ("decompressed gzip", ...)
    brief: Brief | None  # its verdict's table columns; None when no verdict under this signature set and version


def stamp_of(path: str, now_ns: int | None = None, cwd: str | None = None) -> FileStamp | None:
    """The stat stamp of a regular file (following symlinks), or None when it cannot be stat'ed.

    `cwd`, the current directory, saves a getcwd() per file when many are stamped in a row.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    now = time.time_ns() if now_ns is None else now_ns
    racy = max(st.st_mtime_ns, st.st_ctime_ns) >= now - RACY_NS
    if not _POSIX:
        path = os.path.abspath(path)
    elif path[:1] != "/":  # os.path.abspath, normpath(join(getcwd(), path)), without its Python layers
        path = os.path.normpath((os.getcwd() if cwd is None else cwd).rstrip("/") + "/" + path)
    else:
        path = os.path.normpath(path)
    key = path.encode(_FS_ENCODING, _FS_ERRORS)  # os.fsencode
    return FileStamp(key, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, racy)


_POSIX = os.name == "posix"
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class Cache:
    """Verdicts of transcript content already triaged, and the history of triage runs, in one SQLite
    file named by the user (`--db` or `--cache`).

    Writes go through SQLite's rollback journal on disk (`PATH-journal`, present only while a write
    is in progress): a run killed in the middle of a write leaves the journal behind, and the next
    open rolls the unfinished write back, so the file always opens. A file found corrupt anyway (a
    power loss, a disk error, a stray write) is renamed to `PATH.corrupt` with a warning and started
    afresh: the run goes on without its cache. Writes are queued and committed in batches (`flush`,
    also on `close`). `warn` receives those warnings (default: kept in `warnings`).
    """

    def __init__(self, path: str, sigset: str, version: str, *, readonly: bool = False,
                 warn: Callable[[str], None] | None = None) -> None:
        """Open (creating unless `readonly`) the cache at `path` for one signature-set and dumpscope version;
        `readonly` opens an existing dumpscope file as `connect_readonly` does (InputError otherwise)."""
        self.path = path
        self.sigset = sigset  # signature_set().version: verdicts of another set are never reused
        self.version = version  # dumpscope.__version__: a new triage engine may give other verdicts
        self.readonly = readonly
        self.warnings: list[str] = []
        self.generation = 0  # files started afresh after finding this one corrupt (recover)
        self._warn = warn if warn is not None else self.warnings.append
        self._pending_verdicts: list[tuple[str, str, str, str]] = []
        self._pending_briefs: list[tuple[str | None, ...]] = []
        self._pending_files: list[tuple[bytes, int, int, int, int, str, str]] = []
        try:
            self._db = self._open()
        except sqlite3.Error as exc:
            raise InputError(f"cache {path}: {_reason(exc)}") from None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (autocommit; history.py runs its own transactions on it)."""
        return self._db

    def _open(self) -> sqlite3.Connection:
        if self.readonly:
            return connect_readonly(self.path)
        _check_path(self.path)
        try:
            return self._open_rw()
        except sqlite3.DatabaseError as exc:
            if not (_corrupt(exc) and _ours(self.path)):
                raise
            self._move_aside(exc)
        return self._open_rw()

    def _open_rw(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            # issue 18: the rollback journal on disk, not in memory (a kill mid-write used to corrupt the
            # file). Not WAL: workers open the file read-only, which WAL allows only when its -shm file
            # can be created, and WAL leaves two files beside PATH for good.
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA temp_store=MEMORY")  # temporary b-trees never become files of their own
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and app_id != _APP_ID:
                raise _NotOurs("not a dumpscope cache (refusing to modify it)")
            # Damage inside the tables shows when a lookup or a write reaches it (they start the file
            # afresh then): a quick_check here would cost ~50 ms on every run of a 10,000-file cache.
            _migrate(db, db.execute("PRAGMA user_version").fetchone()[0])
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self, exc: sqlite3.Error) -> None:
        aside = self.path + ".corrupt"
        try:
            os.replace(self.path, aside)
        except OSError as err:
            raise InputError(f"cache {self.path}: {_reason(exc)}; cannot move it aside ({err.strerror})") from None
        with contextlib.suppress(OSError):
            os.unlink(self.path + "-journal")  # a journal of the old file must not be replayed into the new one
        self._warn(f"cache {self.path} was corrupt ({exc}); moved it to {aside} and started a new one")

    def recover(self, exc: sqlite3.Error) -> bool:
        """After `exc` from a statement on `db`: when it says the file is corrupt, move the file aside,
        start a new one (`generation` counts them) and return True; False for any other error."""
        if not _corrupt(exc):
            return False
        if self.readonly:
            return True
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._move_aside(exc)
        try:
            self._db = self._open_rw()
        except sqlite3.Error as again:
            raise InputError(f"cache {self.path}: {_reason(again)}") from None
        self.generation += 1
        return True

    # --- lookups ---------------------------------------------------------------------------

    def lookup(self, stamp: FileStamp) -> Known | None:
        """What the cache knows about one file whose stamp is unchanged (None: unknown, changed or racy)."""
        return self.lookup_many([stamp])[0]

    def lookup_many(self, stamps: Sequence[FileStamp]) -> list[Known | None]:
        """`lookup` for many files at once, in their order: a query per 500 paths, not one per file."""
        try:
            return self._lookup_many(stamps)
        except sqlite3.Error as exc:
            self._read_failed(exc)
        return [None] * len(stamps)

    def _lookup_many(self, stamps: Sequence[FileStamp]) -> list[Known | None]:
        out: list[Known | None] = [None] * len(stamps)
        where: dict[bytes, list[int]] = {}  # a path named twice is looked up once
        for i, st in enumerate(stamps):
            if not st.racy:
                where.setdefault(st.key, []).append(i)
        rows = _select_in(
            self._db,
            "SELECT f.path, f.size, f.mtime_ns, f.ctime_ns, f.ino, f.digest, f.notes, v.status, v.error, "
            "v.signature, v.confidence, v.bucket, v.title, v.platform FROM files f LEFT JOIN briefs v "
            "ON v.digest = f.digest AND v.sigset = ? AND v.version = ? WHERE f.path IN ({})",
            (self.sigset, self.version), list(where))
        for row in rows:
            notes = () if row[6] == "[]" else tuple(json.loads(row[6]))
            known = Known(row[5], notes, None if row[7] is None else row[7:])
            for i in where[row[0]]:
                st = stamps[i]
                if (row[1], row[2], row[3], row[4]) == (st.size, st.mtime_ns, st.ctime_ns, st.ino):
                    out[i] = known
        return out

    def get_json(self, digest: str) -> str | None:
        """The stored verdict JSON of this content under the current signature set and version."""
        try:
            row = self._db.execute(
                "SELECT verdict FROM verdicts WHERE digest=? AND sigset=? AND version=?",
                (digest, self.sigset, self.version),
            ).fetchone()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return None
        return None if row is None else str(row[0])

    def get_json_many(self, digests: Iterable[str]) -> dict[str, str]:
        """`get_json` for many contents at once: digest -> verdict JSON, for those that have one."""
        try:
            return dict(_select_in(self._db, "SELECT digest, verdict FROM verdicts WHERE sigset = ? AND version = ? "
                                   "AND digest IN ({})", (self.sigset, self.version), list(dict.fromkeys(digests))))
        except sqlite3.Error as exc:
            self._read_failed(exc)  # the rows asked for are triaged afresh
            return {}

    def _read_failed(self, exc: sqlite3.Error) -> None:
        # A lookup that fails on a corrupt file is a miss (the file is started afresh); any other
        # failure is the file's problem, reported as such.
        if not self.recover(exc):
            raise InputError(f"cache {self.path}: {_reason(exc)}") from None

    # --- writes ----------------------------------------------------------------------------

    def put_json(self, digest: str, doc: str, brief: Brief) -> None:
        """Queue the verdict of this content: its JSON (as made by `content_json`) and table columns (`brief_of`)."""
        self._pending_verdicts.append((digest, self.sigset, self.version, doc))
        self._pending_briefs.append((digest, self.sigset, self.version, *brief))
        if len(self._pending_verdicts) >= 2000:
            self.flush()

    def put(self, digest: str, verdict: Verdict, notes: Sequence[str] = ()) -> None:
        """Queue a fresh verdict of this content; `notes` are the input's read notes it starts with."""
        self.put_json(digest, content_json(verdict, notes), brief_of(verdict))

    def put_file(self, stamp: FileStamp, digest: str, notes: Sequence[str]) -> None:
        """Queue the stamp → digest pre-check row of a file (racy stamps are not recorded)."""
        if stamp.racy:
            return
        self._pending_files.append((stamp.key, stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.ino,
                                    digest, json.dumps(list(notes))))
        if len(self._pending_files) >= 2000:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows in one transaction."""
        if self.readonly or not (self._pending_verdicts or self._pending_files):
            return
        try:
            try:
                self._write_pending()
            except sqlite3.Error as exc:
                if not self.recover(exc):  # corrupt: write the batch into the new file
                    raise
                self._write_pending()
        except sqlite3.Error as exc:
            raise InputError(f"cache {self.path}: {_reason(exc)}") from None
        finally:
            self._pending_verdicts.clear()
            self._pending_briefs.clear()
            self._pending_files.clear()

    def _write_pending(self) -> None:
        with write_transaction(self._db) as db:
            db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?)", self._pending_verdicts)
            db.executemany("INSERT OR REPLACE INTO briefs VALUES (?,?,?,?,?,?,?,?,?,?)", self._pending_briefs)
            db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", self._pending_files)

    def close(self) -> None:
        """Flush and close the database."""
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the stored forms ---------------------------------------------------------------------------
# render is imported inside the functions that need it: a cached re-run printing JSON never does.


def content_json(verdict: Verdict, notes: Sequence[str] = ()) -> str:
    """The cache form of a fresh verdict: source blanked, the input's leading read notes removed.

    It is the verdict's JSON Lines row (the same encoder), which is what lets `json_line` splice a
    stored row into output without decoding it.
    """
    from dataclasses import replace

    from dumpscope.render import to_json_line, verdict_to_json

    n = len(notes)
    own = verdict.notes[n:] if n and verdict.notes[:n] == tuple(notes) else verdict.notes
    return to_json_line(verdict_to_json(replace(verdict, source="", notes=own)))


def restore(doc: str, source: str, notes: Sequence[str] = ()) -> Verdict:
    """A verdict from its cache form, named `source`, with the input's read notes put back in front."""
    fields = json.loads(doc)
    fields["source"] = source
    if notes:
        fields["notes"] = list(notes) + fields["notes"]
    return verdict_from_json(fields)


def verdict_from_json(doc: dict[str, Any]) -> Verdict:
    """The inverse of render.verdict_to_json: `verdict_from_json(verdict_to_json(v)) == v` for every Verdict."""
    if doc.get("schema") != VERDICT_SCHEMA:
        raise ValueError(f"not a {VERDICT_SCHEMA} object (schema={doc.get('schema')!r})")
    fix = doc["fix"]
    return Verdict(
        source=doc["source"],
        status=doc["status"],
        error=doc["error"],
        panic_message=doc["panic_message"],
        platform=doc["platform"],
        host=doc["host"],
        signature=doc["signature"],
        confidence=None if doc["confidence"] is None else Confidence(doc["confidence"]),
        bucket=doc["bucket"],
        title=doc["title"],
        bugs=tuple(doc["bugs"]),
        evidence=tuple([Evidence(e["clause"], tuple(e["lines"]), e["holds"], e["detail"]) for e in doc["evidence"]]),
        fix=None if fix is None else Fix(tuple(fix["references"]), FixStatus(fix["status"]), fix["detail"]),
        events=tuple([Event(e["text"], tuple(e["lines"]), e["inferred"]) for e in doc["events"]]),
        hints=tuple([Hint(h["command"], h["settles"]) for h in doc["hints"]]),
        notes=tuple(doc["notes"]),
        panic_thread=doc["panic_thread"],
        replay=doc["replay"],
        stack=tuple([ShownFrame(f["line"], f["text"], f["plumbing"]) for f in doc["stack"]]),
        key_frames=tuple(doc["key_frames"]),
        unchecked=tuple(doc["unchecked"]),
        conclusion=doc["conclusion"],
        trap=None if doc["trap"] is None else ShownTrap(
            doc["trap"]["line"], doc["trap"]["end"], tuple((k, v) for k, v in doc["trap"]["fields"])),
        stack_owner=doc["stack_owner"],
    )


# In the cache form the only "source" key is the top-level one, blank: keys are sorted, nested
# objects (evidence, fix) have neither "source" nor "notes", and inside a JSON string every '"' is
# escaped, so these markers can only be the keys themselves.
_SOURCE = '"source":""'
_NOTES = '"notes":['
# What json.dumps does to a str with ensure_ascii (to_json_line's setting), without its Python layers.
_quote = encode_basestring_ascii


def json_line(doc: str, source: str, notes: Sequence[str] = ()) -> str:
    """The JSON Lines row (no newline) of a stored verdict named `source` with read notes `notes`.

    Equal to `to_json_line(verdict_to_json(restore(doc, source, notes)))`, but made by splicing the
    name and notes into the stored text (~3 us instead of a decode and an encode, ~80 us); a
    document not of the expected shape takes the slow way.
    """
    head, found, tail = doc.partition(_SOURCE)
    if not found or _SOURCE in tail or (notes and head.count(_NOTES) != 1):
        from dumpscope.render import to_json_line, verdict_to_json

        return to_json_line(verdict_to_json(restore(doc, source, notes)))
    if notes:
        # "notes" sorts before "source": the list to extend is in head
        listed = ",".join(map(_quote, notes))
        at = head.index(_NOTES) + len(_NOTES)
        head = head[:at] + listed + ("" if head[at] == "]" else ",") + head[at:]
    return head + '"source":' + _quote(source) + tail


def brief_of(v: Verdict) -> Brief:
    """The table columns of a verdict (BRIEF_FIELDS), as the cache stores them beside its JSON."""
    return (v.status, v.error, v.signature, None if v.confidence is None else v.confidence.value, v.bucket,
            v.title, v.platform)


def brief_verdict(source: str, brief: Brief) -> Verdict:
    """A Verdict holding only the fields in BRIEF_FIELDS (and `source`): enough for the table, the CSV
    and --summary, which read nothing else, and ~30x cheaper than decoding the stored JSON."""
    status, error, signature, confidence, bucket, title, platform = brief
    return Verdict(source, status, error, None, platform, None, signature,
                   None if confidence is None else Confidence(confidence), bucket, title)


def newest_json(db: sqlite3.Connection, digests: Iterable[str]) -> dict[str, str]:
    """Digest -> the stored verdict JSON of that content most recently written under any signature
    set and dumpscope version, for those that have one; `db` is a `connect_readonly` connection."""
    # INSERT OR REPLACE gives a rewritten row a new rowid: in rowid order the newest comes last.
    return dict(_select_in(db, "SELECT digest, verdict FROM verdicts WHERE digest IN ({}) ORDER BY rowid", (),
                           list(dict.fromkeys(digests))))


def _select_in(db: sqlite3.Connection, sql: str, params: tuple[Any, ...], keys: Sequence[Any]) -> Iterator[Any]:
    # The rows of `sql`, whose "IN ({})" takes `keys`, asked _BATCH keys at a time (SQLite's limit on
    # variables), one batch after the other: a key's rows all come from one batch.
    for start in range(0, len(keys), _BATCH):
        part = keys[start:start + _BATCH]
        yield from db.execute(sql.format(",".join("?" * len(part))), (*params, *part)).fetchall()


def connect_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection to an existing dumpscope database (history, report); InputError when
    the file is missing, is not a dumpscope database, or was made by a newer dumpscope."""
    try:
        _check_path(path)
        if not os.path.exists(path):
            raise sqlite3.OperationalError("no such file")
        db = sqlite3.connect("file:" + _uri_path(path) + "?mode=ro", uri=True, timeout=30)
        try:
            db.execute("PRAGMA query_only=1")
            if db.execute("PRAGMA application_id").fetchone()[0] != _APP_ID:
                raise _NotOurs("not a dumpscope database")
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > CACHE_SCHEMA:
                raise _NotOurs(f"made by a newer dumpscope (schema {found}, this one reads {CACHE_SCHEMA})")
        except BaseException:
            db.close()
            raise
    except sqlite3.Error as exc:
        raise InputError(f"{path}: {_reason(exc)}") from None
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back if anything escapes, even an
    interrupt: the cache, the history and the migration all write this way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _migrate(db: sqlite3.Connection, found: int) -> None:
    # Bring a file of schema `found` to CACHE_SCHEMA in one transaction. The history is kept through
    # every step; the cache's own tables are dropped and made again when their layout changed.
    if found == CACHE_SCHEMA:
        return
    if found > CACHE_SCHEMA:
        raise _NotOurs(f"made by a newer dumpscope (schema {found}, this one reads {CACHE_SCHEMA}); "
                       "upgrade dumpscope or name another file")
    with write_transaction(db):
        if found < 2:  # before schema 2 the verdicts' table had another layout
            for table in _CACHE_TABLE_NAMES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
        for sql in _TABLES + _HISTORY_TABLES:  # 2 -> 3: the history tables join the cache's
            db.execute(sql)
        db.execute(f"PRAGMA application_id={_APP_ID}")
        db.execute(f"PRAGMA user_version={CACHE_SCHEMA}")


class _NotOurs(sqlite3.DatabaseError):
    """A database this dumpscope must not touch (another application's, or a newer schema)."""


def _check_path(path: str) -> None:
    # The file must be a regular file or not exist yet: SQLite would open /dev/null or a FIFO and fail
    # later in ways that read like bugs.
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise sqlite3.OperationalError(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise sqlite3.OperationalError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise sqlite3.OperationalError("not a regular file (name a file for the database)")


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _ours(path: str) -> bool:
    # Only a file whose SQLite header carries our application_id (offset 68, big-endian) is moved
    # aside when corrupt; anything else that fails to open is someone else's, and left alone.
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError:
        return False
    return head[:16] == _SQLITE_MAGIC and int.from_bytes(head[68:72], "big") == _APP_ID


def _corrupt(exc: sqlite3.Error) -> bool:
    if isinstance(exc, _NotOurs):
        return False
    msg = str(exc)
    return "malformed" in msg or "file is not a database" in msg or "disk image" in msg


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


def _reason(exc: sqlite3.Error) -> str:
    msg = str(exc) or type(exc).__name__
    if "file is not a database" in msg or "malformed" in msg:
        return f"{msg} (not a dumpscope cache, or corrupt: delete it to start afresh)"
    return msg
