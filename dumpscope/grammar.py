"""Finds the grammars/ folder, composes the per-format grammars, and caches the Lark parser."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from typing import Any

from lark import Lark, Transformer

__all__ = [
    "FORMAT_GRAMMARS",
    "grammar_dir",
    "grammar_text",
    "transcript_parser",
]

# One grammar per mdb output format. They are composed by concatenation rather than %import:
# Lark namespaces the terminals a grammar imports (stack__FRAME, findstack__FRAME), and one line
# lexer must hand every format the same FRAME token.
FORMAT_GRAMMARS = (
    "common",
    "status",
    "stack",
    "findstack",
    "stacks",
    "threadlist",
    "panicinfo",
    "cpuinfo",
    "console",
    "transcript",
)


def grammar_dir() -> Path:
    """The folder holding the .lark files: inside the installed package, or grammars/ of a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammars", here.parent / "grammars"):
        if (candidate / "transcript.lark").is_file():
            return candidate
    raise FileNotFoundError(f"grammars not found next to {here} (looked for grammars/transcript.lark)")


def grammar_text(names: tuple[str, ...] = FORMAT_GRAMMARS) -> str:
    """The composed grammar source of the named formats, in order."""
    folder = grammar_dir()
    return "\n".join((folder / f"{name}.lark").read_text(encoding="utf-8") for name in names)


@lru_cache(maxsize=None)
def transcript_parser(transformer: Transformer[Any, Any] | None = None) -> Lark:
    """The LALR parser of whole transcripts, built once per process (and per transformer).

    The lexer is dumpscope.lexer.LineLexer: it feeds one token per line (one per run of frame lines).
    With a transformer, Lark applies it while parsing and no tree is built.
    """
    from dumpscope.lexer import LineLexer  # the lexer compiles this grammar's terminals

    return Lark(grammar_text(), parser="lalr", lexer=LineLexer, transformer=transformer,
                maybe_placeholders=False)
