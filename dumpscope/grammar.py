"""Finds the grammars/ folder, composes the per-format grammars, and builds Lark's LALR parser of them.

Lark builds the LALR table from the grammar; that costs about 70 ms, on every process that parses.
So the parser Lark built is kept beside the grammars, saved by Lark itself (Lark.save, the
serialisation behind its own `cache=` option) in grammars/transcript.lark.cache, and loaded with
Lark.load. It is saved with the transformer (parse.py's), which Lark.load cannot be handed. The
file's first line stamps it with the SHA-256 of the grammar text, the Lark version and the
transformer's class; a file whose stamp does not match is not used (the parser is then built in
memory). Nothing is written at run time: `python -m dumpscope.grammar` writes the file after a
grammar change, and tests/test_grammar.py fails until it is run.
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lark import Lark

__all__ = [
    "CACHE_FILE",
    "FORMAT_GRAMMARS",
    "grammar_dir",
    "grammar_stamp",
    "grammar_text",
    "line_lexer",
    "transcript_parser",
    "write_cache",
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
    "fma",
    "trap",
    "typed",
    "transcript",
)

CACHE_FILE = "transcript.lark.cache"


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


def grammar_stamp(transformer: Any = None) -> bytes:
    """The first line a saved parser must carry to be used: the grammar's SHA-256, the Lark version and
    the transformer's class."""
    from lark import __version__ as lark_version

    digest = hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()
    cls = type(transformer)
    return f"dumpscope.lark/1 {digest} lark-{lark_version} {cls.__module__}.{cls.__qualname__}\n".encode()


_OPTIONS: dict[str, Any] = {"parser": "lalr", "maybe_placeholders": False}


def _build(transformer: Any = None) -> Lark:
    # Lark builds the LALR table from the grammar text (about 70 ms)
    from lark import Lark

    from dumpscope.lexer import LineLexer

    return Lark(grammar_text(), lexer=LineLexer, transformer=transformer, **_OPTIONS)


@lru_cache(maxsize=None)
def transcript_parser(transformer: Any = None) -> Lark:
    """Lark's LALR parser of whole transcripts, made once per process (and per transformer): loaded
    from the saved one when its stamp matches, else built from the grammar.

    The lexer is dumpscope.lexer.LineLexer, Lark's custom-lexer interface. With a transformer, Lark
    calls its rule methods as it reduces, and no tree is built.
    """
    from lark import Lark

    try:
        with (grammar_dir() / CACHE_FILE).open("rb") as f:
            if f.readline() == grammar_stamp(transformer):
                parser: Lark = Lark.load(f)
                return parser
    except FileNotFoundError:
        pass
    return _build(transformer)


@lru_cache(maxsize=None)
def line_lexer() -> Any:
    """The line lexer of the transcript grammar on its own (dumpscope.lexer.LineLexer), for tests and tools."""
    from dumpscope.lexer import LineLexer

    return LineLexer(transcript_parser().lexer_conf)


def write_cache(transformer: Any, path: Path | None = None) -> Path:
    """Save the parser Lark builds from the grammar with `transformer`, stamped (by default into
    grammars/); returns the path written."""
    path = path or grammar_dir() / CACHE_FILE
    with path.open("wb") as f:
        f.write(grammar_stamp(transformer))
        _build(transformer).save(f)
    return path


def _main(argv: list[str]) -> int:
    import argparse

    from dumpscope.parse import TRANSFORMER  # the tool saves the parser parse.py runs

    ap = argparse.ArgumentParser(prog="python -m dumpscope.grammar",
                                 description="Build Lark's parser of the grammars and save it beside them "
                                             "(run it after changing a .lark file).")
    ap.add_argument("path", nargs="?", type=Path, help=f"where to write it [default: grammars/{CACHE_FILE}]")
    print(f"wrote {write_cache(TRANSFORMER, ap.parse_args(argv).path)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
