"""Finds the grammars/ folder, composes the per-format grammars, caches the Lark parser, runs its table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lark import Lark, Transformer
from lark.exceptions import ParseError
from lark.parsers.lalr_analysis import Shift

if TYPE_CHECKING:
    from dumpscope.lexer import LineLexer

__all__ = [
    "FORMAT_GRAMMARS",
    "TableParser",
    "Tok",
    "grammar_dir",
    "grammar_text",
    "line_lexer",
    "table_parser",
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


class Tok(NamedTuple):
    """A line token for TableParser: what lark.Token carries for the transformer, without its cost."""

    type: str  # the terminal name
    value: Any  # the lexer's payload: a LineTok, or a tuple of Frames / LineToks for a run


_END = (Tok("$END", None),)


class _Spliced(list[Any]):
    """The children of an inlined rule (a `_name` rule, or a list rule Lark generates for `x*`): spliced
    into the parent rule's children."""

    __slots__ = ()


class TableParser:
    """Runs the LALR table Lark built for the grammar, calling the transformer's rule methods directly.

    Lark's own parser loop (`Lark.parse`) gives the same result — tests/test_grammar.py checks it on
    every fixture — but spends most of its time per token on generality this grammar does not use:
    Token objects with positions, Tree objects for the generated list rules, child filters. Here a
    token is a Tok, an inlined rule is a plain list, and a reduce is one call of the rule's method.
    """

    def __init__(self, lark: Lark, transformer: Transformer[Any, Any]) -> None:
        start = lark.options.start[0]
        table = lark.parser.parser._parse_table  # built once by Lark; the runtime loop is ours
        self._start = table.start_states[start]
        self._end = table.end_states[start]
        # per state: symbol -> (True, next state) for a shift, (False, reduction) for a reduce
        self._states: dict[int, dict[str, tuple[bool, Any]]] = {}
        reductions: dict[Any, tuple[int, str, Callable[[list[Any]], Any], bool]] = {}
        for state, actions in table.states.items():
            row: dict[str, tuple[bool, Any]] = {}
            for symbol, (action, arg) in actions.items():
                symbol = str(symbol)  # lark.Token names compare in Python; plain str keys in C
                if action is Shift:
                    row[symbol] = (True, arg)
                    continue
                if arg not in reductions:
                    name = str(arg.origin.name)
                    method = _Spliced if name.startswith("_") else getattr(transformer, name, None)
                    if method is None:
                        raise TypeError(f"{type(transformer).__name__} has no method for rule {name!r}")
                    splices = any(sym.name.startswith("_") for sym in arg.expansion if not sym.is_term)
                    reductions[arg] = (len(arg.expansion), name, method, splices)
                row[symbol] = (False, reductions[arg])
            self._states[state] = row

    def parse(self, tokens: Iterable[Tok]) -> Any:
        """Parse the token stream; returns what the transformer's start rule returns."""
        states = self._states
        end_state = self._end
        end_tok = _END[0]
        state_stack = [self._start]
        values: list[Any] = []
        row = states[self._start]  # the actions of the state on top of the stack
        for tok in chain(tokens, _END):
            kind = tok[0]
            while True:
                action = row.get(kind)
                if action is None:
                    raise ParseError(f"unexpected {kind} token in state {state_stack[-1]}")
                shift, arg = action
                if shift:
                    state_stack.append(arg)
                    values.append(tok)
                    row = states[arg]
                    break
                size, name, method, splices = arg
                if size:
                    children = values[-size:]
                    del values[-size:]
                    del state_stack[-size:]
                else:
                    children = []
                if splices:
                    # a left-recursive list rule (x_star: x_star item) hands its growing list back
                    # as the first child: extend that list in place, or every item copies it (n^2)
                    first = children[0]
                    flat: list[Any] = first if type(first) is _Spliced else [first]
                    for child in children[1:]:
                        if type(child) is _Spliced:
                            flat.extend(child)
                        else:
                            flat.append(child)
                    children = flat
                state = states[state_stack[-1]][name][1]
                state_stack.append(state)
                values.append(children if method is _Spliced and type(children) is _Spliced else method(children))
                if tok is end_tok and state == end_state:
                    return values[-1]
                row = states[state]
        raise ParseError("token stream ended before the start rule was complete")


@lru_cache(maxsize=None)
def line_lexer() -> LineLexer:
    """The line lexer of whole transcripts (feeds TableParser), built once per process."""
    from dumpscope.lexer import LineLexer

    return LineLexer(transcript_parser().lexer_conf)


@lru_cache(maxsize=None)
def table_parser(transformer: Transformer[Any, Any]) -> TableParser:
    """The TableParser of whole transcripts for a transformer, built once per process."""
    return TableParser(transcript_parser(), transformer)
