"""An opt-in SQLite cache of verdicts, keyed by transcript content, signature set and dumpscope version."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from dumpscope.errors import InputError
from dumpscope.render import verdict_from_json, verdict_to_json
from dumpscope.verdict import Verdict

__all__ = ["CACHE_SCHEMA", "RACY_NS", "Cache", "FileStamp", "content_json", "restore", "stamp_of"]

# Bumped when the tables change shape; a cache file of another schema is rebuilt in place.
CACHE_SCHEMA = 1
# A file modified this recently may change again within the filesystem's timestamp granularity
# without its (size, mtime) changing (git's "racily clean" problem; FAT and some NFS servers keep
# 1-2 s), so its stamp is not trusted and its content is hashed again next run.
RACY_NS = 2_000_000_000
# The application_id in the SQLite header marks a file as ours ("dsc1"), so `--cache` never
# rewrites a database that belongs to something else.
_APP_ID = 0x64736331

_TABLES = (
    # Verdicts of transcript content: the source name is blanked and read-time notes left out, so a
    # compressed copy and a renamed copy share one row.
    """CREATE TABLE IF NOT EXISTS verdicts (
        digest TEXT NOT NULL, sigset TEXT NOT NULL, version TEXT NOT NULL, verdict TEXT NOT NULL,
        PRIMARY KEY (digest, sigset, version)) WITHOUT ROWID""",
    # The fast pre-check: a file whose stat stamp is unchanged still has this digest.
    """CREATE TABLE IF NOT EXISTS files (
        path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, digest TEXT NOT NULL, notes TEXT NOT NULL
        ) WITHOUT ROWID""",
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


def stamp_of(path: str, now_ns: int | None = None) -> FileStamp | None:
    """The stat stamp of a regular file (following symlinks), or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    now = time.time_ns() if now_ns is None else now_ns
    racy = max(st.st_mtime_ns, st.st_ctime_ns) >= now - RACY_NS
    return FileStamp(os.fsencode(os.path.abspath(path)), st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                     st.st_ino, racy)


class Cache:
    """Verdicts of transcript content already triaged, in one SQLite file named by the user.

    Only that file is ever written: the rollback journal is kept in memory (journal_mode=MEMORY), so
    no -journal, -wal or -shm file appears beside it. The price is that a crash in the middle of a
    write can corrupt the cache; it is only a cache, so such a file is reported and can be deleted.
    Writes are queued and committed in batches (`flush`, also on `close`).
    """

    def __init__(self, path: str, sigset: str, version: str, *, readonly: bool = False) -> None:
        """Open (creating unless `readonly`) the cache at `path` for one signature-set and dumpscope version."""
        self.path = path
        self.sigset = sigset  # signature_set().version: verdicts of another set are never reused
        self.version = version  # dumpscope.__version__: a new triage engine may give other verdicts
        self.readonly = readonly
        self._pending_verdicts: list[tuple[str, str, str, str]] = []
        self._pending_files: list[tuple[bytes, int, int, int, int, str, str]] = []
        try:
            self._db = self._open()
        except sqlite3.Error as exc:
            raise InputError(f"cache {path}: {_reason(exc)}") from None

    def _open(self) -> sqlite3.Connection:
        if self.readonly:
            uri = "file:" + _uri_path(self.path) + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
            db.execute("PRAGMA query_only=1")
            return db
        if os.path.isdir(self.path):
            raise sqlite3.OperationalError("is a directory")
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA synchronous=OFF")  # a cache: losing the last batch on power loss is fine
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables and app_id != _APP_ID:
            db.close()
            raise sqlite3.DatabaseError("not a dumpscope cache (refusing to modify it)")
        if db.execute("PRAGMA user_version").fetchone()[0] != CACHE_SCHEMA:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DROP TABLE IF EXISTS verdicts")
            db.execute("DROP TABLE IF EXISTS files")
            for sql in _TABLES:
                db.execute(sql)
            db.execute(f"PRAGMA application_id={_APP_ID}")
            db.execute(f"PRAGMA user_version={CACHE_SCHEMA}")
            db.execute("COMMIT")
        return db

    # --- lookups ---------------------------------------------------------------------------

    def lookup(self, stamp: FileStamp) -> tuple[str, tuple[str, ...], str | None] | None:
        """For a file whose stamp is unchanged: its digest, read notes and stored verdict JSON (None
        when that content has no verdict under this signature set and version). One query."""
        if stamp.racy:
            return None
        row = self._db.execute(
            "SELECT f.size, f.mtime_ns, f.ctime_ns, f.ino, f.digest, f.notes, v.verdict FROM files f "
            "LEFT JOIN verdicts v ON v.digest = f.digest AND v.sigset = ? AND v.version = ? WHERE f.path = ?",
            (self.sigset, self.version, stamp.key),
        ).fetchone()
        if row is None or tuple(row[:4]) != (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.ino):
            return None
        notes = () if row[5] == "[]" else tuple(json.loads(row[5]))
        return row[4], notes, None if row[6] is None else str(row[6])

    def get_json(self, digest: str) -> str | None:
        """The stored verdict JSON of this content under the current signature set and version."""
        row = self._db.execute(
            "SELECT verdict FROM verdicts WHERE digest=? AND sigset=? AND version=?",
            (digest, self.sigset, self.version),
        ).fetchone()
        return None if row is None else str(row[0])

    # --- writes ----------------------------------------------------------------------------

    def put_json(self, digest: str, doc: str) -> None:
        """Queue the verdict JSON of this content (as made by `content_json`)."""
        self._pending_verdicts.append((digest, self.sigset, self.version, doc))
        if len(self._pending_verdicts) >= 2000:
            self.flush()

    def put(self, digest: str, verdict: Verdict, notes: Sequence[str] = ()) -> None:
        """Queue a fresh verdict of this content; `notes` are the input's read notes it starts with."""
        self.put_json(digest, content_json(verdict, notes))

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
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?)", self._pending_verdicts)
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", self._pending_files)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise InputError(f"cache {self.path}: {_reason(exc)}") from None
        finally:
            self._pending_verdicts.clear()
            self._pending_files.clear()

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


def content_json(verdict: Verdict, notes: Sequence[str] = ()) -> str:
    """The cache form of a fresh verdict: source blanked, the input's leading read notes removed."""
    from dataclasses import replace

    n = len(notes)
    own = verdict.notes[n:] if n and verdict.notes[:n] == tuple(notes) else verdict.notes
    doc = verdict_to_json(replace(verdict, source="", notes=own))
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def restore(doc: str, source: str, notes: Sequence[str] = ()) -> Verdict:
    """A verdict from its cache form, named `source`, with the input's read notes put back in front."""
    fields = json.loads(doc)
    fields["source"] = source
    if notes:
        fields["notes"] = list(notes) + fields["notes"]
    return verdict_from_json(fields)


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


def _reason(exc: sqlite3.Error) -> str:
    msg = str(exc) or type(exc).__name__
    if "file is not a database" in msg or "malformed" in msg:
        return f"{msg} (not a dumpscope cache, or corrupt: delete it to start afresh)"
    return msg
