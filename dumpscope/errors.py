"""Errors the library raises; the CLI is the only place that turns them into messages and exit codes."""

from __future__ import annotations

__all__ = [
    "DumpscopeError",
    "InputError",
    "ModelInvariantError",
    "OutputError",
    "SchedulerLost",
    "SignatureFileError",
    "TranscriptSyntaxError",
]


class DumpscopeError(Exception):
    """Base class of every error dumpscope raises on purpose."""


class InputError(DumpscopeError):
    """An input could not be read or holds nothing usable (missing, binary, empty, undecodable)."""


class OutputError(DumpscopeError):
    """The output could not be written (a full disk, a closed standard output); not a closed pipe."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write output: {reason}")


class TranscriptSyntaxError(DumpscopeError):
    """A snippet given to a single-section grammar does not have that section's shape."""

    def __init__(self, message: str, line: int, column: int = 1, context: str = "") -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.column = column
        self.context = context


class SignatureFileError(DumpscopeError):
    """A signature data file is malformed; names the file and line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class ModelInvariantError(DumpscopeError):
    """The cyclic reference model broke one of its invariants; names the object and the field."""

    def __init__(self, obj: str, fieldname: str, message: str) -> None:
        super().__init__(f"{obj}.{fieldname}: {message}")
        self.obj = obj
        self.field = fieldname


class SchedulerLost(DumpscopeError):
    """The Dask scheduler of a `triage --scheduler` run went away; the rows finished before were given out."""
