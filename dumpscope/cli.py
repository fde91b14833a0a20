"""The command line: a thin typer layer over the library, and the single error boundary."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, NoReturn, Optional

import typer

try:  # typer >= 0.23 carries its own copy of click; its exceptions are the ones raised
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older typer uses click itself
    import click  # type: ignore[no-redef]

from dumpscope.errors import DumpscopeError, InputError

__all__ = ["app", "main"]

# Exit codes (README "Exit codes"): 0 every input triaged or parsed, 1 some input could not be read
# or held nothing usable, 2 usage error, 3 internal error (a bug: rerun with --debug).
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

app = typer.Typer(
    name="dumpscope",
    help="Triage illumos/SmartOS kernel crash dumps from mdb transcripts.\n\n"
    "Example: mdb -e '::status; $C; ::stacks -c cyclic_remove_here' 0 | dumpscope triage",
    add_completion=False,
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


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on internal errors.")] = False,
) -> None:
    global _debug
    _debug = debug


def _err(message: str) -> None:
    from dumpscope.render import escape

    sys.stderr.write(f"dumpscope: error: {escape(message)}\n")


def _stdin_path(path: str | None) -> str:
    """'-' when no path was given and stdin is piped; a usage error when stdin is a terminal."""
    if path is not None:
        return path
    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("no input: give a transcript path, '-' for stdin, or pipe mdb output in")
    return "-"


def _read_one(path: str):  # type: ignore[no-untyped-def]
    from dumpscope.sources import read_source

    src = read_source(path)
    if src.error:
        raise InputError(f"{src.name}: {src.error}")
    return src


@app.command("parse")
def parse_cmd(path: PathArg = None, fmt: FormatOpt = OneFormat.text) -> int:
    """show what the parser understood of one transcript.

    Prints the ::status fields, the panic stack, the threads and every section with its line
    numbers; --format json gives the versioned `dumpscope.parse/1` document.

    Example: mdb -e '::status; $C' 0 | dumpscope parse --format json
    """
    from dumpscope.parse import parse_transcript
    from dumpscope.render import dump_to_json, render_dump_text, to_json_line

    src = _read_one(_stdin_path(path))
    dump = parse_transcript(src.text, src.name)
    if dump.empty:
        raise InputError(f"{src.name}: no mdb output found (no ::status, stack, thread or panic message)")
    if src.notes:
        dump = _with_notes(dump, src.notes)
    if fmt is OneFormat.json:
        sys.stdout.write(to_json_line(dump_to_json(dump, src.name)) + "\n")
    else:
        sys.stdout.write(render_dump_text(dump, src.name))
    return EXIT_OK


def _with_notes(dump, notes):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(dump, notes=tuple(notes) + dump.notes)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI: the one place where errors become messages and exit codes."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except typer.Exit as e:
        rc = e.exit_code
    except (click.exceptions.UsageError, click.exceptions.NoArgsIsHelpError) as e:
        e.show()
        rc = EXIT_USAGE
    except click.exceptions.ClickException as e:
        e.show()
        rc = e.exit_code
    except typer.Abort:
        sys.stderr.write("dumpscope: interrupted\n")
        rc = 130
    except DumpscopeError as e:
        _err(str(e))
        rc = EXIT_INPUT
    except BrokenPipeError:
        # the reader went away (| head): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        rc = EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("dumpscope: interrupted\n")
        rc = 130
    except Exception as e:  # the boundary: a bug must not print a traceback unless asked
        if _debug:
            raise
        _err(f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)")
        rc = EXIT_INTERNAL
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(rc if isinstance(rc, int) else EXIT_OK)
