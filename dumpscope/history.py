"""The crash history in the `--db` file: each triage run recorded, one row per signature or bucket with its status."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from dumpscope.cache import Cache, restore, write_transaction
from dumpscope.errors import InputError
from dumpscope.render import build_stamp
from dumpscope.verdict import Confidence, FixStatus, Verdict

if TYPE_CHECKING:
    from dumpscope.bulk import Row
    from dumpscope.signatures import BucketNote

__all__ = [
    "DEFAULT_QUIET_DAYS",
    "HISTORY_SCHEMA",
    "BucketHistory",
    "DumpRecord",
    "STATUS_ORDER",
    "Recorder",
    "Sighting",
    "Status",
    "built_after",
    "example_verdicts",
    "group_of",
    "history_rows",
    "history_to_json",
    "iso",
    "parse_since",
    "read_dumps",
    "regressed",
]

HISTORY_SCHEMA = "dumpscope.history/1"
# A bucket with no new dump for this many days is `quiet` (history --quiet-days).
DEFAULT_QUIET_DAYS = 30
# Pending history rows are written in batches of this many (one transaction each).
_BATCH = 2000


class Status(StrEnum):
    """Where a signature or bucket stands in the history. The names are part of the JSON contract."""

    NEW = "new"  # its first dump was first seen in the latest run
    REGRESSED = "regressed"  # a known signature on a build with its fix, or past a site note's fixed build
    RECURRING = "recurring"  # seen before the latest run, and within the quiet period
    QUIET = "quiet"  # no new dump for the quiet period


# The order rows are listed in: what needs a person first.
STATUS_ORDER = (Status.REGRESSED, Status.NEW, Status.RECURRING, Status.QUIET)


def iso(moment: datetime) -> str:
    """A UTC time as the history stores it: ISO 8601 to the second, with a Z ('2026-12-04T16:55:28Z')."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_NUMBER = re.compile(r"\d{1,18}")  # bounded: never int() of an unbounded run of digits from a transcript


def built_after(build: str, fixed: str) -> bool:
    """Whether platform build `build` is newer than `fixed` (a site note's fixed build). SmartOS builds
    compare by their timestamp; others by their numbers when their names agree up to the first digit
    (omnios-r151046 < omnios-r151048). False when the two cannot be compared."""
    a, b = build_stamp(build), build_stamp(fixed)
    if a and b:
        return a > b
    if a or b or re.match(r"\D*", build).group() != re.match(r"\D*", fixed).group():  # type: ignore[union-attr]
        return False
    numbers = [tuple(map(int, _NUMBER.findall(x)[:8])) for x in (build, fixed)]
    return bool(numbers[0] and numbers[1]) and numbers[0] > numbers[1]


def regressed(fix_status: str | None, platform: str | None, notes: Iterable[BucketNote]) -> bool:
    """Whether a dump is a regression: its known signature matched on a build that has the fix, or its
    build is newer than the one a site note on its signature or bucket says fixed it."""
    if fix_status == FixStatus.HAS_FIX.value:
        return True
    return bool(platform) and any(n.fixed and built_after(str(platform), n.fixed) for n in notes)


def _notes_on(notes: Sequence[BucketNote], signature: str | None, bucket: str) -> list[BucketNote]:
    return [n for n in notes if n.key in (signature, bucket)]


def group_of(signature: str | None, bucket: str) -> tuple[str, str]:
    """The history row a dump counts in: its signature when one matched, else its bucket."""
    return ("signature", signature) if signature else ("bucket", bucket)


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the history says about one input of the run being recorded."""

    new_dump: bool  # its content was never triaged with this database before this run
    new_bucket: bool  # its signature or bucket was first seen in this run
    regressed: bool  # it matched a known signature on a build that has the fix

    @property
    def alert(self) -> bool:
        """What `triage --new-only` prints: a dump new to the history whose bucket is new, or that regressed."""
        return self.new_dump and (self.new_bucket or self.regressed)


class Recorder:
    """Records one triage run in the history of a `--db` file: `see` each input, then `finish`.

    Content identity, as in the cache: a dump (its SHA-256) is counted once however often, under
    however many names, it is seen. A later run writes its row again only when what the row says
    changed (a new signature set classifies it otherwise, or it was renamed), so a nightly run over
    the same crash directory writes nothing but its own row in `runs`.
    """

    def __init__(self, cache: Cache, now: datetime | None = None, notes: Sequence[BucketNote] = ()) -> None:
        """Start a run in `cache`'s file at `now` (default: the current time); `notes` are the site's bucket
        notes (a `fixed` build in one makes a dump on a newer build a regression)."""
        self._cache = cache
        self._notes = tuple(n for n in notes if n.fixed)
        self._now = iso(now or datetime.now(UTC))
        self._this_run: dict[str, Sighting] = {}
        # pending rows: (digest, source, host, platform, signature, confidence, bucket, title, fix, message);
        # a dump already in the history only needs its last-seen and verdict columns (host, fix, message None)
        self._inserts: list[tuple[Any, ...]] = []
        self._updates: list[tuple[Any, ...]] = []
        self.inputs = 0
        self._start()

    def _start(self) -> None:
        # what the history knows already; a file found corrupt is started afresh. The run's own row
        # is written with the run's first batch of dumps (a nightly run that finds nothing new writes
        # one transaction: its row, at the end).
        self.run_id: int | None = None
        for attempt in (1, 2):
            db = self._cache.db
            try:
                # digest -> (source, platform, signature, confidence, bucket, title), as `see` compares them
                self._known: dict[str, tuple[Any, ...]] = {r[0]: r[1:] for r in db.execute(
                    "SELECT digest, source, platform, signature, confidence, bucket, title FROM dumps")}
                break
            except sqlite3.Error as exc:
                if attempt == 2 or not self._cache.recover(exc):
                    raise InputError(f"history {self._cache.path}: {exc}") from None
        self._generation = self._cache.generation
        # signatures and buckets seen before this run
        self._groups = {group_of(cols[2], cols[4]) for cols in self._known.values()}
        self._fresh_groups: set[tuple[str, str]] = set()  # ... and those first seen in it

    def see(self, row: Row) -> Sighting | None:
        """Record one input of the run (a `bulk.Row`); None for an input that was not triaged (an error row)."""
        self.inputs += 1
        if row.status != "ok" or not row.digest:
            return None
        digest = row.digest
        again = self._this_run.get(digest)
        if again is not None:  # a copy of a dump already seen in this run
            return again
        _, _, signature, conf, bucket, title, platform = row.brief()
        cols = (row.source, platform, signature, conf, bucket, title)
        known = self._known.get(digest)
        if known is not None:
            if known != cols:
                self._updates.append((digest, row.source, None, platform, signature, conf, bucket, title, None, None))
            seen = Sighting(False, False, False)
        else:
            group = group_of(signature, bucket)
            host, fix, message = self._details(row)
            self._inserts.append((digest, row.source, host, platform, signature, conf, bucket, title, fix, message))
            new_bucket = group not in self._groups or group in self._fresh_groups
            self._known[digest] = cols
            if new_bucket:
                self._fresh_groups.add(group)
            seen = Sighting(True, new_bucket, regressed(fix, platform, _notes_on(self._notes, signature, bucket)))
        self._this_run[digest] = seen
        if len(self._inserts) + len(self._updates) >= _BATCH:
            self._write()
        return seen

    def _details(self, row: Row) -> tuple[str | None, str | None, str | None]:
        # host, fix status and panic message: not among the columns a cached row carries, so taken
        # from the verdict or its stored form (a dump new to the history was usually triaged just now)
        doc = row.document()
        if doc is None:
            try:
                v = row.verdict()
            except ValueError:  # a cached row read without its document
                doc = self._cache.get_json(row.digest)
                if doc is None:
                    return None, None, None
                v = restore(doc, row.source)
            return v.host, v.fix.status.value if v.fix else None, v.panic_message
        d = json.loads(doc)
        fix = d.get("fix")
        return d.get("host"), fix.get("status") if isinstance(fix, dict) else None, d.get("panic_message")

    def _write(self, final: bool = False) -> None:
        try:
            for attempt in (1, 2):
                if self._cache.generation != self._generation:
                    # the file was found corrupt and started afresh since this run began: the run and
                    # every dump it saw go into the new file
                    self._inserts.extend(self._updates)
                    self._updates.clear()
                    self._start()
                try:
                    self._write_pending(final)
                    break
                except sqlite3.Error as exc:
                    if attempt == 2 or not self._cache.recover(exc):
                        raise InputError(f"history {self._cache.path}: {exc}") from None
        finally:
            self._inserts.clear()
            self._updates.clear()

    def _write_pending(self, final: bool) -> None:
        db = self._cache.db
        now = self._now
        if not (self._inserts or self._updates or final):
            return
        with write_transaction(db):
            run = self.run_id
            if run is None:
                run = int(db.execute("INSERT INTO runs (started, version, sigset) VALUES (?, ?, ?)",
                                     (now, self._cache.version, self._cache.sigset)).lastrowid or 0)
            db.executemany("INSERT OR IGNORE INTO dumps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           [(r[0], run, run, now, now, *r[1:]) for r in self._inserts])
            db.executemany("UPDATE dumps SET last_run=?, last_seen=?, source=?, platform=?, signature=?, "
                           "confidence=?, bucket=?, title=? WHERE digest=?",
                           [(run, now, r[1], *r[3:8], r[0]) for r in self._updates])
            if final:
                db.execute("UPDATE runs SET finished=?, inputs=? WHERE id=?",
                           (iso(datetime.now(UTC)), self.inputs, run))
        self.run_id = run

    def finish(self) -> None:
        """Write what is pending and close the run (its end time and number of inputs)."""
        self._write(final=True)


# --- reading the history ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """One dump in the history (a row of the `dumps` table)."""

    digest: str  # SHA-256 of its content: its identity
    first_run: int
    last_run: int
    first_seen: str  # ISO 8601 UTC: when a run first saw it
    last_seen: str  # ISO 8601 UTC: the last run that saw it
    source: str  # its name in the last run that saw it
    host: str | None
    platform: str | None
    signature: str | None
    confidence: str | None
    bucket: str
    title: str
    fix_status: str | None  # FixStatus value, or None when the signature names no fix
    panic_message: str | None


@dataclass(frozen=True, slots=True)
class BucketHistory:
    """One row of `dumpscope history`: a signature (or an unknown crash's bucket) across every run."""

    group: str  # 'signature' | 'bucket'
    key: str  # the signature id or the bucket id
    title: str
    signature: str | None
    confidence: str | None  # the strongest confidence any of its dumps had
    count: int  # distinct dumps (content identity), within --since
    hosts: tuple[str, ...]
    first_seen: str  # when its first dump was first seen
    last_seen: str  # when its newest dump was first seen
    first_build: str | None
    last_build: str | None
    status: Status
    regressions: int  # dumps on a build that has the signature's fix
    fix: tuple[tuple[str, int], ...]  # (fix status, dumps) for the dumps whose signature names a fix
    buckets: tuple[str, ...]  # the bucket ids its dumps fell in
    example: str  # the name of its newest dump
    dumps: tuple[DumpRecord, ...]  # its dumps, oldest first


def read_dumps(path: str) -> tuple[list[DumpRecord], int]:
    """Every dump in the history of the database at `path`, and the id of its latest run (0: none).

    Opens the file read-only; a file that is missing, not ours, or holds no history yet is an InputError.
    """
    from dumpscope.cache import connect_readonly

    db = connect_readonly(path)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "dumps" not in tables:
            raise InputError(f"{path}: no history in this database yet (run: dumpscope triage --db {path} DIR)")
        latest = db.execute("SELECT max(id) FROM runs").fetchone()[0] or 0
        rows = [DumpRecord(*r) for r in db.execute(
            "SELECT digest, first_run, last_run, first_seen, last_seen, source, host, platform, signature, "
            "confidence, bucket, title, fix_status, panic_message FROM dumps ORDER BY first_seen, digest")]
    except sqlite3.Error as exc:
        raise InputError(f"{path}: {exc}") from None
    finally:
        db.close()
    return rows, latest


_RELATIVE = re.compile(r"(\d{1,5})([dw])")


def parse_since(text: str, now: datetime | None = None) -> str:
    """A --since value as the history's ISO 8601 UTC text: a date (2026-12-01), a date and time
    (2026-12-01T06:00, UTC unless an offset is given), or a span back from now (7d, 2w)."""
    m = _RELATIVE.fullmatch(text.strip())
    if m:
        days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
        return iso((now or datetime.now(UTC)) - timedelta(days=days))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text!r}: not a date (2026-12-01), a time (2026-12-01T06:00) "
                         "or a span (7d, 2w)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment)


def history_rows(dumps: Sequence[DumpRecord], latest_run: int, *, since: str | None = None,
                 quiet_days: int = DEFAULT_QUIET_DAYS, now: datetime | None = None,
                 notes: Sequence[BucketNote] = ()) -> list[BucketHistory]:
    """One row per signature or bucket, the ones needing a person first (regressed, new, recurring,
    quiet), then by count.

    A row's status is decided on the whole history; `since` (ISO 8601 UTC) keeps only the dumps first
    seen at or after it, and only the rows that still have one. `notes`: the site's bucket notes, whose
    `fixed` builds make later dumps regressions.
    """
    from dumpscope.render import build_order_key

    quiet_before = iso((now or datetime.now(UTC)) - timedelta(days=quiet_days))
    groups: dict[tuple[str, str], list[DumpRecord]] = {}
    for d in dumps:
        groups.setdefault(group_of(d.signature, d.bucket), []).append(d)
    out: list[BucketHistory] = []
    for (group, key), members in groups.items():
        members.sort(key=lambda d: (d.first_seen, d.first_run, d.digest))
        fixed_notes = [n for n in notes if n.fixed]
        back = {d.digest for d in members
                if regressed(d.fix_status, d.platform, _notes_on(fixed_notes, d.signature, d.bucket))}
        if back:
            status = Status.REGRESSED
        elif min(d.first_run for d in members) == latest_run:
            status = Status.NEW
        elif members[-1].first_seen < quiet_before:
            status = Status.QUIET
        else:
            status = Status.RECURRING
        shown = [d for d in members if since is None or d.first_seen >= since]
        if not shown:
            continue
        builds = sorted({d.platform for d in shown if d.platform}, key=build_order_key)
        fixes: dict[str, int] = {}
        for d in shown:
            if d.fix_status:
                fixes[d.fix_status] = fixes.get(d.fix_status, 0) + 1
        newest = shown[-1]
        out.append(BucketHistory(
            group=group, key=key, title=newest.title, signature=newest.signature,
            confidence=_strongest(d.confidence for d in shown), count=len(shown),
            hosts=tuple(sorted({d.host for d in shown if d.host})), first_seen=shown[0].first_seen,
            last_seen=newest.first_seen, first_build=builds[0] if builds else None,
            last_build=builds[-1] if builds else None, status=status,
            regressions=sum(d.digest in back for d in shown),
            fix=tuple(sorted(fixes.items())), buckets=tuple(sorted({d.bucket for d in shown})),
            example=newest.source, dumps=tuple(shown)))
    out.sort(key=lambda r: (STATUS_ORDER.index(r.status), -r.count, r.group, r.key))
    return out


def _strongest(confidences: Iterable[str | None]) -> str | None:
    order = [c.value for c in Confidence]  # strongest first
    found = [c for c in confidences if c in order]
    return min(found, key=order.index) if found else None


def history_to_json(row: BucketHistory) -> dict[str, Any]:
    """A history row as its `dumpscope.history/1` JSON object."""
    return {
        "schema": HISTORY_SCHEMA, "group": row.group, "key": row.key, "title": row.title,
        "signature": row.signature, "confidence": row.confidence, "status": row.status.value,
        "count": row.count, "hosts": list(row.hosts), "first_seen": row.first_seen, "last_seen": row.last_seen,
        "first_build": row.first_build, "last_build": row.last_build, "regressions": row.regressions,
        "fix": dict(row.fix), "buckets": list(row.buckets), "example": row.example,
    }


def example_verdicts(path: str, rows: Sequence[BucketHistory]) -> list[Verdict | None]:
    """The stored verdict of each row's newest dump (from the cache tables of the same file), or None
    where the cache holds none for its 20 newest dumps (or cannot be read back)."""
    from dumpscope.cache import connect_readonly, newest_json

    candidates = [row.dumps[::-1][:20] for row in rows]  # each row's 20 newest dumps, newest first
    db = connect_readonly(path)
    try:
        docs = newest_json(db, (d.digest for dumps in candidates for d in dumps))
    except sqlite3.Error:
        return [None] * len(rows)
    finally:
        db.close()
    return [_first_restored(dumps, docs) for dumps in candidates]


def _first_restored(dumps: Sequence[DumpRecord], docs: dict[str, str]) -> Verdict | None:
    # The verdict of the first of `dumps` whose stored document reads back.
    for d in dumps:
        doc = docs.get(d.digest)
        if doc is not None:
            try:
                return restore(doc, d.source)
            except (ValueError, KeyError, TypeError):  # a document of an older layout
                continue
    return None
