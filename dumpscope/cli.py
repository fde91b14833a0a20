"""The command line: a thin typer layer over the library, and the single error boundary."""

# No `from __future__ import annotations` here: typer reads every command's annotations on every
# start, and as strings each costs it an eval (about 3.5 ms of a cold start, bench/bench_start.py).
import contextlib
import io
import os
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Optional, TextIO

import typer

# typer 0.26+ carries its own copy of click (pyproject pins 0.26-0.28); its exceptions are the ones raised
from typer import _click as click

from dumpscope.errors import DumpscopeError, InputError, OutputError, SchedulerLost

if TYPE_CHECKING:
    from typer._click import _termui_impl as typer_progress

    from dumpscope.bulk import Runner
    from dumpscope.cache import Cache
    from dumpscope.dump import Dump
    from dumpscope.history import Recorder
    from dumpscope.signatures import BucketNote

__all__ = ["app", "main"]

# Exit codes (README "Exit codes"): 0 every input triaged or parsed, 1 some input could not be read
# or held nothing usable, 2 usage error, 3 internal error (a bug: rerun with --debug).
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# triage --new-only: some inputs are new or regressed crashes (README "Exit codes")
EXIT_NEW = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended

# bulk.DEFAULT_TIMEOUT, repeated so that --help does not import the bulk runner (tests check they agree)
DEFAULT_TIMEOUT = 120.0

app = typer.Typer(
    name="dumpscope",
    help="Triage illumos/SmartOS kernel crash dumps from mdb transcripts.\n\n"
    "Example: mdb -e '::status; $C; ::stacks -c cyclic_remove_here' 0 | dumpscope triage",
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False


class OneFormat(StrEnum):
    text = "text"
    json = "json"


PathArg = Annotated[
    Optional[str],
    typer.Argument(help="Transcript file, or '-' for stdin (the default when stdin is not a terminal).",
                   show_default=False),
]
FormatOpt = Annotated[OneFormat, typer.Option("--format", "-f", help="Output format.")]


def _show_version(value: bool) -> None:
    if value:
        from dumpscope import __version__

        sys.stdout.write(f"dumpscope {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on internal errors.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print dumpscope's version and exit.",
                                          callback=_show_version, is_eager=True)] = False,
) -> None:
    global _debug
    _debug = debug


SignaturesOpt = Annotated[
    list[str] | None,
    typer.Option("--signatures", metavar="DIR", show_default=False,
                 help="A site's signature directory (repeatable), after those in $DUMPSCOPE_SIGNATURES; "
                 "a site signature with a bundled id replaces it."),
]


def _err(message: str) -> None:
    from dumpscope.render import escape

    _say(f"dumpscope: error: {escape(message)}\n")


def _say(text: str) -> None:
    # A message on stderr. A closed or full stderr loses the message, never the output: the run goes
    # on, and the exit code is the one the run earns.
    stream = sys.stderr
    if stream is None or isinstance(stream, _Muted):
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        sys.stderr = _Muted(stream)


def _warn(message: str) -> None:
    from dumpscope.render import escape

    _say(f"dumpscope: warning: {escape(message)}\n")


def _stdin_path(path: str | None) -> str:
    """'-' when no path was given and stdin is piped; a usage error when stdin is a terminal."""
    if path is not None:
        return path
    if sys.stdin is None or sys.stdin.isatty():
        raise click.exceptions.UsageError("no input: give a transcript path, '-' for stdin, or pipe mdb output in")
    return "-"


def _read_one(path: str):  # type: ignore[no-untyped-def]
    from dumpscope.sources import read_source

    src = read_source(path, digest=False)  # the digest is the triage cache's key; one input needs none
    if src.error:
        raise InputError(f"{src.name}: {src.error}")
    return src


@app.command("parse")
def parse_cmd(path: PathArg = None, fmt: FormatOpt = OneFormat.text) -> int:
    """show what the parser understood of one transcript.

    Prints the ::status fields, the panic stack, the threads and every section with its line
    numbers; --format json gives the versioned `dumpscope.parse/2` document.

    Example: mdb -e '::status; $C' 0 | dumpscope parse --format json
    """
    from dumpscope.parse import parse_transcript
    from dumpscope.render import iter_dump_json, render_dump_text

    src = _read_one(_stdin_path(path))
    dump = parse_transcript(src.text, src.name)
    from dumpscope.triage import NO_MDB_OUTPUT, nothing_usable

    if nothing_usable(dump, src.text):  # the same test triage makes: parse and triage agree on errors
        raise InputError(f"{src.name}: {NO_MDB_OUTPUT}")
    if src.notes:
        dump = _with_notes(dump, src.notes)
    if fmt is OneFormat.json:
        sys.stdout.writelines(iter_dump_json(dump, src.name))
    else:
        sys.stdout.write(render_dump_text(dump, src.name))
    return EXIT_OK


def _with_notes(dump: "Dump", notes: tuple[str, ...]) -> "Dump":
    from dataclasses import replace

    return replace(dump, notes=tuple(notes) + dump.notes)


class Format(StrEnum):
    text = "text"
    json = "json"
    table = "table"
    csv = "csv"
    markdown = "markdown"


# history.DEFAULT_QUIET_DAYS, written here because importing history loads sqlite3 for every command;
# tests/test_history.py checks that the two agree
QUIET_DAYS = 30
QuietDaysOpt = Annotated[int, typer.Option(
    "--quiet-days", min=1, metavar="N", help="A signature or bucket with no new dump for N days is quiet.")]

DbOpt = Annotated[
    Optional[str],
    typer.Option("--db", metavar="PATH", envvar="DUMPSCOPE_DB",
                 help="The history database (the same SQLite file as --cache, which it also is): every "
                 "triaged input is recorded once, with when it was seen, host, build, signature and bucket.",
                 show_default=False),
]


PathsArg = Annotated[
    list[str] | None,
    typer.Argument(help="Transcript files, directories (walked recursively) and '-' for stdin "
                   "(the default when stdin is not a terminal); gzip/bzip2/xz are read transparently.",
                   metavar="PATH", show_default=False),
]


@app.command("triage")
def triage_cmd(
    ctx: typer.Context,
    paths: PathsArg = None,
    fmt: Annotated[Format | None, typer.Option(
        "--format", "-f", help="Output format [default: text for one file, table for several].",
        show_default=False)] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=0, help="Worker processes [default: 0, every CPU]; 1 runs in-process.",
        show_default=False)] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="SECONDS", min=0, help="Time one input may take to read and triage; past it, "
        "the input is an error row 'timed out after N s' and the run goes on. 0: no limit.")] = DEFAULT_TIMEOUT,
    summary: Annotated[bool, typer.Option(
        "--summary", help="Print counts per signature and bucket (with first/last build and an example) "
        "instead of one row per input.")] = False,
    cache: Annotated[str | None, typer.Option(
        "--cache", metavar="PATH", help="SQLite cache file: unchanged inputs are not triaged again. "
        "Only PATH is written.", show_default=False)] = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Quote the transcript lines behind each piece of evidence (text format).")] = False,
    db: DbOpt = None,
    new_only: Annotated[bool, typer.Option(
        "--new-only", help="With --db: print only the inputs new to the history whose signature or bucket "
        "is new, or that matched a known bug on a build that has its fix; exit 4 when there are any.")] = False,
    include: Annotated[list[str] | None, typer.Option(
        "--include", metavar="GLOB", help="In directories, exactly the files matching GLOB (repeatable; "
        "matched against the path below the directory and the base name) are inputs.",
        show_default=False)] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", metavar="GLOB", help="In directories, files matching GLOB are not inputs (repeatable).",
        show_default=False)] = None,
    signatures: SignaturesOpt = None,
    mdb: Annotated[str | None, typer.Option(
        "--mdb", metavar="PATH", help="The mdb to run on dumps [default: mdb on the PATH].",
        show_default=False)] = None,
    savecore: Annotated[str | None, typer.Option(
        "--savecore", metavar="PATH", help="The savecore that expands vmdump.N [default: savecore on the PATH].",
        show_default=False)] = None,
    work: Annotated[str | None, typer.Option(
        "--work", metavar="DIR", help="Where savecore expands compressed dumps and transcripts are saved "
        "[default: ~/.cache/dumpscope/work]; nothing is ever written beside a dump.", show_default=False)] = None,
    save_transcripts: Annotated[str | None, typer.Option(
        "--save-transcripts", metavar="DIR", help="Where what mdb printed for each dump is saved "
        "[default: WORK/transcripts].", show_default=False)] = None,
    mdb_timeout: Annotated[float, typer.Option(
        "--mdb-timeout", metavar="SECONDS", min=1, help="Time limit of each savecore or mdb run.")] = 3600.0,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="ADDRESS", envvar="DASK_SCHEDULER_ADDRESS",
        help="Triage on a Dask cluster: its scheduler (tcp://host:8786), or local:N to start N worker "
        "processes here. HOST:PATH inputs are read by the worker on HOST. Needs pip install 'dumpscope[dask]'.",
        show_default=False)] = None,
) -> int:
    """classify crash dumps and transcripts, with evidence.

    Says what crashed, how sure it is and why, for one dump or transcript or many. Matches each
    transcript against the known signatures (illumos 12476 and others) and gives
    every crash a stable bucket. Bad inputs become error rows; every input is reported exactly once,
    in order.

    A crash directory (/var/crash/volatile) is read as savecore leaves it: one row per dump N,
    analysed by running mdb on it (savecore -f first for a compressed vmdump.N, into --work).

    Example: dumpscope triage /var/crash/volatile --cache ~/.cache/dumpscope.db

    Example: mdb -e '::status; $C; ::stacks -c cyclic_remove_here' 0 | dumpscope triage

    Nightly: dumpscope triage /var/crash --db crashes.db --new-only

    Fleet: dumpscope triage --scheduler tcp://sched:8786 cn1:/var/crash/volatile cn2:/var/crash/volatile

    \b
    Exit codes:
      0  every input was triaged (known signature or unknown bucket)
      1  some inputs could not be read or parsed, or took too long (their rows are still printed),
         or the Dask scheduler was lost (the rows finished before are printed)
      2  usage error
      3  internal error (rerun with --debug)
      4  --new-only: some inputs are new or regressed crashes (they are what is printed)
      130  interrupted (Ctrl-C); the rows finished by then are printed
    """
    from dumpscope.analyse import Options, default_work
    from dumpscope.bulk import triage_rows
    from dumpscope.crashdir import select, skip_summary
    from dumpscope.mdb import Tools
    from dumpscope.signatures import site_dirs

    given = list(paths) if paths else [_stdin_path(None)]
    if db and cache and os.path.abspath(db) != os.path.abspath(cache):
        raise click.exceptions.UsageError("--db and --cache name the same file; give one of them")
    cache = db or cache
    if new_only and not cache:
        raise click.exceptions.UsageError("--new-only needs the history: add --db PATH")
    if fmt is Format.markdown and (summary or len(given) != 1 or _is_dir(given[0])):
        raise click.exceptions.UsageError("--format markdown writes the ticket of one transcript")
    if explain and fmt not in (None, Format.text, Format.markdown):
        raise click.exceptions.UsageError("--explain works with the text format only")
    if explain and summary:
        raise click.exceptions.UsageError("--explain cannot be combined with --summary")
    if fmt is None:
        fmt = Format.text if explain or (len(given) == 1 and not _is_dir(given[0])) else Format.table
        if summary:
            fmt = Format.table

    quote = explain or fmt is Format.markdown  # both quote transcript lines, read again after triage
    stdin_bytes: bytes | None = None
    stdin = None
    if quote and "-" in given:
        from dumpscope.sources import DEFAULT_MAX_BYTES

        stdin_bytes = sys.stdin.buffer.read(DEFAULT_MAX_BYTES + 1)
        stdin = io.BytesIO(stdin_bytes)

    for tool, where in (("--mdb", mdb), ("--savecore", savecore)):
        if where is not None and not (os.path.isfile(where) and os.access(where, os.X_OK)):
            raise click.exceptions.BadParameter(f"{where} is not an executable file", param_hint=tool)
    work_dir = os.path.abspath(work or default_work())
    tools = Tools.find(mdb and os.path.abspath(mdb), savecore and os.path.abspath(savecore), work_dir,
                       save_transcripts and os.path.abspath(save_transcripts), mdb_timeout)
    options = Options(site_dirs(signatures or ()), tools)
    options.signatures()  # a bad site file is one clear error before any work
    if scheduler and jobs is not None:
        from typer._click.core import ParameterSource

        if ctx.get_parameter_source("scheduler") is not ParameterSource.ENVIRONMENT:
            raise click.exceptions.UsageError("--jobs and --scheduler exclude each other")
        scheduler = None  # an explicit --jobs outranks DASK_SCHEDULER_ADDRESS from the environment
    # stdin is read here whatever the scheduler, so a run of stdin alone needs no cluster
    runner = _dask_runner(scheduler, options) if scheduler and any(p != "-" for p in given) else None
    try:
        chosen = (runner.select if runner is not None else select)(given, include or (), exclude or ())
        store = _open_cache(cache, options) if cache else None
    except BaseException:
        if runner is not None:
            runner.close()
        raise
    recorder = _recorder(store, options.signatures().notes) if store is not None else None
    bar = _Progress() if sys.stderr is not None and sys.stderr.isatty() else None
    failed = alerts = 0
    collected = []
    # Table, CSV and --summary read only a few fields of each verdict: cached rows give just those,
    # without fetching or decoding the stored JSON. JSON output splices the stored rows through.
    brief = summary or fmt in (Format.table, Format.csv)
    rows = triage_rows(given, jobs=jobs, cache=store, stdin=stdin, progress=bar, docs=not brief, compact=True,
                       options=options, selection=chosen, timeout=timeout, runner=runner)
    write = sys.stdout.write
    interrupted = False
    lost: SchedulerLost | None = None
    try:
        first = True
        for row in rows:
            if row.status != "ok":
                failed += 1
                if bar:
                    bar.clear()
                _err(f"{row.source}: {row.error}")
            seen = recorder.see(row) if recorder is not None else None
            if new_only:
                if seen is None or not seen.alert:
                    continue
                alerts += 1
            if brief:
                collected.append(row.table_verdict())
            elif fmt is Format.json:
                write(row.json_line() + "\n")
            elif fmt is Format.markdown:
                from dumpscope.ticket import render_markdown

                v = row.verdict()
                write(render_markdown(v, _transcript_lines(v.source, stdin_bytes, chosen.dumps, tools)))
            else:
                from dumpscope.render import render_verdict_text

                v = row.verdict()
                lines = _transcript_lines(v.source, stdin_bytes, chosen.dumps, tools) if explain else None
                write(("" if first else "\n") + render_verdict_text(v, lines, color=explain and _color()))
            first = False
    except KeyboardInterrupt:
        interrupted = True  # the rows finished so far are still printed below
    except SchedulerLost as exc:
        lost = exc  # likewise, then the error
    finally:
        rows.close()  # on a broken pipe or Ctrl-C: cancel the queued work now, not at exit
        if bar:
            bar.clear()
        try:
            if recorder is not None:
                recorder.finish()
        finally:
            if store is not None:
                store.close()
            if runner is not None:
                runner.close()
    if chosen.skipped:
        _say(f"dumpscope: {skip_summary(chosen.skipped)}\n")
    if new_only and not collected:
        pass  # nothing new: no output at all (a cron job mails whatever is printed)
    elif summary:
        _write_summary(collected, fmt)
    elif fmt is Format.table:
        from dumpscope.render import render_table

        write(render_table(collected))
    elif fmt is Format.csv:
        from dumpscope.render import render_csv

        write(render_csv(collected))
    if interrupted:
        raise KeyboardInterrupt
    if lost is not None:
        raise lost
    if alerts:
        return EXIT_NEW  # before EXIT_INPUT: one unreadable file must not hide a new crash from a cron job
    return EXIT_INPUT if failed else EXIT_OK


def _dask_runner(address: str, options: Any) -> "Runner":
    # Dask is imported here only: without the extra, every other run works as before.
    try:
        from dumpscope.cluster import DaskRunner
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in ("distributed", "dask"):
            raise
        raise click.exceptions.UsageError(
            "--scheduler needs Dask's distributed package: pip install 'dumpscope[dask]'") from None
    try:
        return DaskRunner(address, options=options, quiet=True)
    except ValueError as exc:
        raise click.exceptions.UsageError(f"--scheduler {address}: {exc}") from None


def _color() -> bool:
    # highlight only for a person at a terminal: not in a pipe, and not when NO_COLOR is set
    # (no-color.org: present and not empty)
    return not os.environ.get("NO_COLOR") and sys.stdout is not None and sys.stdout.isatty()


def _is_dir(path: str) -> bool:
    return path != "-" and os.path.isdir(path)


def _recorder(store: "Cache", notes: Sequence["BucketNote"]) -> "Recorder":
    from dumpscope.history import Recorder

    return Recorder(store, notes=notes)


def _site_notes(signatures: list[str] | None) -> tuple["BucketNote", ...]:
    # the bucket notes of the site signature directories (--signatures, $DUMPSCOPE_SIGNATURES)
    from dumpscope.signatures import signature_set, site_dirs

    return signature_set(site_dirs(signatures or ())).notes


def _open_cache(path: str, options):  # type: ignore[no-untyped-def]
    from dumpscope import __version__
    from dumpscope.cache import Cache

    # keyed by the whole signature set, site files included: adding one re-triages what it could change
    return Cache(path, options.signatures().version, __version__, warn=_warn)


def _transcript_lines(source: str, stdin_bytes: bytes | None, dumps, tools) -> list[str] | None:  # type: ignore[no-untyped-def]
    # --explain quotes transcript lines: read the input again (stdin was kept in memory); a dump's
    # lines are those of the transcript mdb printed, as saved.
    from dumpscope.lexer import split_lines
    from dumpscope.sources import STDIN_NAME, read_source

    if source in dumps:
        from dumpscope.analyse import transcript_path

        src = read_source(transcript_path(dumps[source], tools), digest=False)
    elif source == STDIN_NAME:
        if stdin_bytes is None:
            return None
        src = read_source("-", stdin=io.BytesIO(stdin_bytes), digest=False)
    else:
        src = read_source(source, digest=False)
    return split_lines(src.text) if src.text is not None else None


def _write_summary(verdicts, fmt: Format) -> None:  # type: ignore[no-untyped-def]
    from dumpscope.render import render_summary, summary_rows, to_json_line

    if fmt is Format.json:
        for row in summary_rows(verdicts):
            sys.stdout.write(to_json_line({"schema": "dumpscope.summary/1", **row}) + "\n")
    elif fmt is Format.csv:
        from dumpscope.render import render_summary_csv

        sys.stdout.write(render_summary_csv(verdicts))
    else:
        sys.stdout.write(render_summary(verdicts))


class HistoryFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def _need_db(db: str | None) -> str:
    if not db:
        raise click.exceptions.UsageError("no database: give --db PATH (or set DUMPSCOPE_DB)")
    return db


@app.command("history")
def history_cmd(
    db: DbOpt = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DATE", help="Only dumps first seen at or after DATE: 2026-12-01, "
        "2026-12-01T06:00 (UTC unless an offset is given), or a span back from now: 7d, 2w.",
        show_default=False)] = None,
    fmt: Annotated[HistoryFormat, typer.Option("--format", "-f", help="Output format.")] = HistoryFormat.text,
    quiet_days: QuietDaysOpt = QUIET_DAYS,
    signatures: SignaturesOpt = None,
) -> int:
    """list crash history per signature and bucket, with new and regressed crashes.

    One row per signature (or bucket, for crashes no signature names) over every `triage --db` run:
    status, dumps (each counted once, by content), hosts, first and last seen, first and last build.
    Status: regressed (a known bug matched on a build that has its fix, or a dump on a build newer
    than the one a site note says fixed it), new (first seen in the latest run), recurring, quiet
    (no new dump for --quiet-days).

    Example: dumpscope history --db crashes.db --since 7d --format json | jq 'select(.status=="new")'
    """
    from dumpscope.history import history_rows, history_to_json, parse_since, read_dumps
    from dumpscope.render import render_history, render_history_csv, to_json_line

    path = _need_db(db)
    dumps, latest = read_dumps(path)
    rows = history_rows(dumps, latest, since=parse_since(since) if since else None, quiet_days=quiet_days,
                        notes=_site_notes(signatures))
    if fmt is HistoryFormat.json:
        sys.stdout.writelines(to_json_line(history_to_json(r)) + "\n" for r in rows)
    elif fmt is HistoryFormat.csv:
        sys.stdout.write(render_history_csv(rows))
    else:
        sys.stdout.write(render_history(rows))
    return EXIT_OK


@app.command("report")
def report_cmd(
    db: DbOpt = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", metavar="FILE", help="Where to write the HTML report ('-': standard output).")] = "-",
    quiet_days: QuietDaysOpt = QUIET_DAYS,
    signatures: SignaturesOpt = None,
) -> int:
    """write an HTML report of the crash history.

    One self-contained file that loads nothing from the network: a summary (dumps, buckets, new,
    regressed), a chart of dumps per build (or per week) for the largest buckets, and a table of
    every signature and bucket, sortable by count and last seen, each with its newest dump's
    verdict and evidence. The chart needs matplotlib: pip install 'dumpscope[report]'.

    Example: dumpscope report --db crashes.db -o report.html
    """
    from dumpscope.report import build_report

    text = build_report(_need_db(db), quiet_days=quiet_days, notes=_site_notes(signatures))
    if output == "-":
        sys.stdout.write(text)
    else:
        _write_file(output, text)
    return EXIT_OK


def _write_file(path: str, text: str) -> None:
    # Written beside its place and renamed over it: a browser or a web server never sees half a report.
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dumpscope-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


@app.command("replay")
def replay_cmd(path: PathArg = None, fmt: FormatOpt = OneFormat.text) -> int:
    """replay a dump's 12476 diagnosis in the reference cyclic model.

    Builds the race from the dump's own values (cyc_cpu, cyclic index and id, handler, remover
    thread) and runs it on the cyclic subsystem before and after the illumos 12476 fix. The
    diagnosis is confirmed when the buggy run ends as the dump does and the fixed run does not panic.

    Example: mdb -e '::status; $C; ::stacks -c cyclic_remove_here | ::findstack -v' 0 | dumpscope replay

    \b
    Exit codes:
      0  the replay ran (see 'confirmed' in the output)
      1  the input could not be read, or shows no illumos-12476 panic stack to replay
      2  usage error
    """
    from dumpscope.match import match
    from dumpscope.parse import parse_transcript
    from dumpscope.render import to_json_line
    from dumpscope.replay import render_replay_text, replay, replay_to_json
    from dumpscope.signatures import signature_set
    from dumpscope.triage import scenario_12476

    src = _read_one(_stdin_path(path))
    dump = parse_transcript(src.text, src.name)
    sig = signature_set().get("illumos-12476")
    m = match(dump, sig) if sig is not None else None
    if m is None or not m.stack_matched:
        raise InputError(f"{src.name}: no illumos-12476 panic stack (cyclic_reprogram_cyclic from a bhyve "
                         "callout under cyclic_softint) to replay; try 'dumpscope triage'")
    result = replay(scenario_12476(m, dump))
    if fmt is OneFormat.json:
        sys.stdout.write(to_json_line({"schema": "dumpscope.replay/1", "source": src.name,
                                       **replay_to_json(result)}) + "\n")
    else:
        sys.stdout.write(f"source: {src.name}\n" + render_replay_text(result))
    return EXIT_OK


@app.command("explore")
def explore_cmd(
    fixed: Annotated[bool, typer.Option("--fixed", help="Explore the behaviour after the 12476 fix.")] = False,
    pending: Annotated[int, typer.Option("--pending", min=1, max=3,
                                         help="Firings of the callout cyclic: 2 lets it re-fire after the "
                                              "re-arm (the cyclic_remove_pend case).")] = 1,
    fmt: FormatOpt = OneFormat.text,
) -> int:
    """enumerate every interleaving of the cyclic race.

    Runs the bhyve callout handler and the remover through every schedule the real code allows and
    counts those that end ok, in a panic, or in a hang; prints the shortest panicking schedule.

    Example: dumpscope explore --pending 2 --format json | jq .panic
    """
    from dumpscope.explore import explore, exploration_to_json, render_exploration_text
    from dumpscope.render import to_json_line

    result = explore(fixed=fixed, pending=pending)
    if fmt is OneFormat.json:
        sys.stdout.write(to_json_line({"schema": "dumpscope.explore/1", **exploration_to_json(result)}) + "\n")
    else:
        sys.stdout.write(render_exploration_text(result))
    return EXIT_OK


signatures_app = typer.Typer(
    name="signatures",
    no_args_is_help=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(signatures_app)


@signatures_app.callback(invoke_without_command=True)
def signatures_cmd(ctx: typer.Context, fmt: FormatOpt = OneFormat.text, signatures: SignaturesOpt = None) -> int:
    """list the known crash signatures, or check a site's signature directory (signatures check).

    Lists the bundled signatures and a site's (--signatures, $DUMPSCOPE_SIGNATURES); a site
    signature says which file it came from.

    --format json gives one `dumpscope.signature/1` object per signature: its bug references, fix
    references, the fixture transcripts that hit it and the near misses that must not.

    Example: dumpscope signatures --format json | jq -r '[.id, (.fixes | join("; "))] | @tsv'

    Example: dumpscope signatures check /etc/dumpscope/signatures --against /var/crash/transcripts
    """
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    from dumpscope.render import escape, signature_to_json, to_json_line
    from dumpscope.signatures import signature_set, site_dirs

    sigs = signature_set(site_dirs(signatures or ()))
    for sig in sigs:
        if fmt is OneFormat.json:
            sys.stdout.write(to_json_line(signature_to_json(sig, sigs.version)) + "\n")
        else:
            where = f"  (site: {escape(sig.path)})" if sig.site else ""
            sys.stdout.write(f"{sig.id:<28} {escape(sig.title)}  [{', '.join(sig.bugs)}]{where}\n")
    return EXIT_OK


@signatures_app.command("check")
def signatures_check_cmd(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="The site's signature directory.")],
    against: Annotated[str | None, typer.Option(
        "--against", metavar="DIR", help="Transcripts to check the signatures on (X.expect beside X.txt may "
        "say SIGNATURE: id or NOT_SIGNATURE: id).", show_default=False)] = None,
) -> int:
    """lint a signature directory: schema, unsafe regexes, duplicate ids, hits, overlaps, near misses.

    Prints one 'file:line: severity: message' line per finding and a count; exits 1 on any error,
    so a site can run it in its own CI.

    Example: dumpscope signatures check site-signatures/ --against site-transcripts/

    \b
    Exit codes:
      0  no errors (warnings and notes may be printed)
      1  at least one error
      2  usage error
    """
    from dumpscope.render import escape
    from dumpscope.sigcheck import Severity, check_signatures

    findings = check_signatures(directory, against)
    for f in findings:
        sys.stdout.write(escape(f.text()) + "\n")
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    sys.stdout.write(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}\n")
    return EXIT_INPUT if errors else EXIT_OK


class _Progress:
    """The bulk run's progress(done, total) callback as a typer progress bar on stderr, with the rate
    and the time left; made only when stderr is a terminal (the bar hides itself otherwise too)."""

    def __init__(self) -> None:
        self._bar: "typer_progress.ProgressBar[str] | None" = None
        self._done = 0
        self._start = 0.0
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if self._bar is None:
            self._bar = typer.progressbar(length=total, file=sys.stderr, hidden=not sys.stderr.isatty(),
                                          show_pos=True, show_eta=True, item_show_func=lambda rate: rate)
            self._start = now
        elif done != total and now - self._last < 0.1:
            return  # redrawn at most ten times a second
        self._last = now
        rate = done / (now - self._start) if now > self._start else 0.0
        self._bar.current_item = f"{rate:,.0f}/s"  # what item_show_func shows after the position and ETA
        self._bar.update(done - self._done)
        self._done = done

    def clear(self) -> None:
        """Erase the bar's line (before an error message or the output); the next update redraws it."""
        if self._bar is not None and not self._bar.hidden:
            sys.stderr.write("\r\x1b[K\x1b[?25h")  # the line erased, the cursor shown again
            sys.stderr.flush()


class _Output:
    """sys.stdout while a command runs: a write that fails for any reason but a closed pipe (a full
    disk, an I/O error) raises OutputError, the one-line "cannot write output" error (exit 1)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Muted:
    """sys.stderr once writing to it failed: takes everything, writes nothing (nor fails at exit)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _fill_closed_fds() -> None:
    # A standard descriptor the shell closed (`>&-`) would be handed to the next file opened (the
    # cache, a pipe to the workers), and whatever writes to it then would land there: fill it with
    # /dev/null first. Python itself left sys.stdout (or stdin, stderr) None.
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _silence_stdout() -> None:
    # The reader went away: whatever is still buffered goes nowhere, quietly, at exit too.
    null = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(null, sys.stdout.fileno())
    os.close(null)


def _invoke(argv: list[str] | None) -> Any:
    # The command itself, through click's public Context API rather than its main(): main() would
    # take a closed pipe (exit 1) and Ctrl-C (exit 130, silently) for itself before they reach
    # the boundary below.
    cmd = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else list(argv)
    with cmd.make_context("dumpscope", args) as ctx:
        return cmd.invoke(ctx)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI: the one place where errors become messages and exit codes.

    With no argv it is the process's entry point (the console script, `python -m dumpscope`).
    A closed output pipe (`| head`) ends the run quietly with exit 0, whatever the format; a full
    disk or a closed stdout is an output error (exit 1); Ctrl-C prints `dumpscope: interrupted` and
    exits 130; a closed or full stderr loses only the messages.
    """
    _fill_closed_fds()
    real_stdout = sys.stdout
    real_stderr = sys.stderr
    encoding_errors = None
    if isinstance(real_stdout, io.TextIOWrapper):
        # Anything the output encoding cannot show (a non-ASCII name under LANG=C) is escaped, not fatal.
        encoding_errors = real_stdout.errors
        with contextlib.suppress(Exception):
            real_stdout.reconfigure(errors="backslashreplace")
    if real_stdout is not None:
        sys.stdout = _Output(real_stdout)  # sys.stdout's job, in a wrapper
    try:
        if real_stdout is None:
            raise OutputError("standard output is closed")
        rc = _invoke(argv)
    except typer.Exit as e:
        rc = e.exit_code
    except (click.exceptions.UsageError, click.exceptions.NoArgsIsHelpError) as e:
        _show(e)
        rc = EXIT_USAGE
    except click.exceptions.ClickException as e:
        _show(e)
        rc = e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _say("dumpscope: interrupted\n")
        rc = EXIT_INTERRUPTED
    except DumpscopeError as e:
        _err(str(e))
        rc = EXIT_INPUT
    except BrokenPipeError:
        # the reader went away (| head): not an error of ours, in any format
        _silence_stdout()
        rc = EXIT_OK
    except Exception as e:  # the boundary: a bug must not print a traceback unless asked
        if _debug:
            raise
        _err(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)")
        rc = EXIT_INTERNAL
    finally:
        if real_stdout is not None:
            sys.stdout = real_stdout
    if real_stdout is not None:
        try:
            _Output(real_stdout).flush()
        except BrokenPipeError:
            _silence_stdout()
            rc = EXIT_OK
        except OutputError as e:
            _err(str(e))
            _silence_stdout()
            rc = EXIT_INPUT
        if encoding_errors is not None:
            with contextlib.suppress(Exception):
                real_stdout.reconfigure(errors=encoding_errors)  # type: ignore[union-attr]
    if isinstance(sys.stderr, _Muted):
        # stderr failed: what it still buffers must not fail again at exit (Python would exit 120)
        sys.stderr = real_stderr if real_stderr is None else open(os.devnull, "w")  # noqa: SIM115
    sys.exit(rc if isinstance(rc, int) else EXIT_OK)


def _show(e: click.exceptions.ClickException) -> None:
    # click prints usage errors itself; to a stderr that fails, it must not fail the run
    try:
        e.show()
    except (OSError, ValueError, AttributeError):
        pass
