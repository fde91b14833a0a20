"""Finds the grammars/ folder, composes the per-format grammars, loads their LALR table, runs it.

Lark builds the LALR table from the grammar; building it costs about 70 ms and importing Lark about
40 ms more, on every process that parses. So the table, with the line terminals, is kept beside the
grammars as data (grammars/transcript.table.json, written by `python -m dumpscope.grammar`), stamped
with the SHA-256 of the grammar text it was built from, and TableParser runs it without importing
Lark -- the way Lark's own standalone and cache modes reuse a table. A table whose stamp does not
match the grammar is not used: the table is then built with Lark in memory (a test keeps the file
current). Lark.parse over the same grammar stays the reference the tests compare against.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dumpscope.lexer import RULE_TOKENS, LineLexer, Tok

if TYPE_CHECKING:
    from lark import Lark

__all__ = [
    "FORMAT_GRAMMARS",
    "TABLE_FILE",
    "TableParser",
    "build_table",
    "grammar_dir",
    "grammar_digest",
    "grammar_text",
    "lark_lexer_class",
    "line_lexer",
    "load_table",
    "read_table",
    "table_json",
    "table_parser",
    "transcript_parser",
    "write_table",
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

TABLE_FILE = "transcript.table.json"
_TABLE_FORMAT = "dumpscope.lalr/1"


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


def grammar_digest() -> str:
    """SHA-256 of the composed transcript grammar: the stamp a saved table must carry to be used."""
    return hashlib.sha256(grammar_text().encode("utf-8")).hexdigest()


@lru_cache(maxsize=None)
def transcript_parser(transformer: Any = None) -> Lark:
    """Lark's LALR parser of whole transcripts, built once per process (and per transformer).

    It builds the table build_table() saves, and Lark.parse with it is the reference TableParser is
    tested against. The lexer is LineLexer behind Lark's custom-lexer interface. With a transformer,
    Lark applies it while parsing and no tree is built.
    """
    from lark import Lark

    return Lark(grammar_text(), parser="lalr", lexer=lark_lexer_class(), transformer=transformer,
                maybe_placeholders=False)


@lru_cache(maxsize=None)
def lark_lexer_class() -> type:
    """LineLexer as a lark.lexer.Lexer, for Lark(..., lexer=...): Lark imported only when asked for."""
    from lark import Token
    from lark.lexer import Lexer

    class LarkLineLexer(Lexer):
        """Lark's custom-lexer interface over LineLexer: its tokens as lark Tokens."""

        def __init__(self, lexer_conf: Any) -> None:
            self.lexer = LineLexer(_terminal_specs(lexer_conf.terminals))

        def lex(self, data: Any) -> Iterator[Token]:  # type: ignore[override]  # a custom lexer gets the input
            for kind, payload in self.lexer.toks(data):
                tok = Token(kind, "")
                tok.value = payload
                yield tok

    return LarkLineLexer


def _terminal_specs(terminals: Iterable[Any]) -> list[list[Any]]:
    # [name, regex, priority] of Lark's terminal definitions (lists, as JSON gives them back)
    return [[str(t.name), str(t.pattern.to_regexp()), int(t.priority)] for t in terminals]


def build_table() -> dict[str, Any]:
    """Build, with Lark, the data TableParser and LineLexer run on: the LALR table and the terminals.

    Rules are numbered; a state maps each symbol to the state a shift goes to (a number >= 0) or to
    the rule a reduce applies (-1 - its number).
    """
    from lark import __version__ as lark_version
    from lark.parsers.lalr_analysis import Shift

    lark = transcript_parser()
    start = lark.options.start[0]
    table = lark.parser.parser._parse_table
    # A reduce needs only the rule's name, its length and whether it splices (a rule splices when one
    # of its children is an inlined rule, a `_name` or a list rule Lark generates for `x*`: that
    # child's items join this rule's children). Rules alike in these are one entry, numbered in
    # sorted order, so the file does not depend on the order Lark happened to meet them in.
    def reduction(rule: Any) -> tuple[str, int, bool]:
        splices = any(sym.name.startswith("_") for sym in rule.expansion if not sym.is_term)
        return str(rule.origin.name), len(rule.expansion), splices

    rules = sorted({reduction(arg) for actions in table.states.values()
                    for action, arg in actions.values() if action is not Shift})
    numbers = {rule: i for i, rule in enumerate(rules)}
    rows = {state: {str(symbol): int(arg) if action is Shift else -1 - numbers[reduction(arg)]
                    for symbol, (action, arg) in actions.items()}
            for state, actions in table.states.items()}
    # States are renumbered in the order a walk from the start state meets them, symbols in sorted
    # order: Lark's own numbers vary from run to run with string hashing.
    begin = table.start_states[start]
    order = {begin: 0}
    queue = [begin]
    for state in queue:
        for symbol in sorted(rows[state]):
            target = rows[state][symbol]
            if target >= 0 and target not in order:
                order[target] = len(order)
                queue.append(target)
    states = {str(order[state]): {symbol: order[act] if act >= 0 else act
                                  for symbol, act in sorted(rows[state].items())}
              for state in queue}
    return {
        "format": _TABLE_FORMAT,
        "grammar_sha256": grammar_digest(),
        "built_by": f"lark {lark_version}",
        "start_state": 0,
        "end_state": order[table.end_states[start]],
        "rules": [list(rule) for rule in rules],
        "states": states,
        "terminals": _terminal_specs(lark.lexer_conf.terminals),
    }


@lru_cache(maxsize=None)
def load_table() -> dict[str, Any]:
    """The table of build_table(): read from grammars/transcript.table.json when its stamp matches the
    grammar as it is now, else built with Lark (in memory; nothing is written)."""
    return read_table(grammar_dir() / TABLE_FILE, grammar_digest()) or build_table()


def read_table(path: Path, digest: str) -> dict[str, Any] | None:
    """The saved table at path if it was built from the grammar with this digest, else None."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or unreadable: the grammar is the source of truth
    if not isinstance(table, dict) or table.get("format") != _TABLE_FORMAT or table.get("grammar_sha256") != digest:
        return None
    return table


def write_table(path: Path | None = None) -> Path:
    """Write build_table() as JSON (by default into grammars/); returns the path written."""
    path = path or grammar_dir() / TABLE_FILE
    path.write_text(table_json(build_table()), encoding="utf-8")
    return path


def table_json(table: dict[str, Any]) -> str:
    """The table as the file holds it: JSON with one line per rule, state and terminal, so that a
    grammar change shows as a readable diff."""
    def block(items: Iterable[str], opening: str, closing: str) -> str:
        return opening + "\n" + ",\n".join(f"  {item}" for item in items) + "\n " + closing

    dumps = json.dumps
    head = [f" {dumps(key)}: {dumps(table[key])}" for key in ("format", "grammar_sha256", "built_by",
                                                              "start_state", "end_state")]
    body = [
        ' "rules": ' + block((dumps(rule) for rule in table["rules"]), "[", "]"),
        ' "states": ' + block((f"{dumps(k)}: {dumps(v)}" for k, v in table["states"].items()), "{", "}"),
        ' "terminals": ' + block((dumps(t) for t in table["terminals"]), "[", "]"),
    ]
    return "{\n" + ",\n".join(head + body) + "\n}\n"


_END = (Tok("$END", None),)
_RULE_VALUE = 2  # in a state's row, next to True (shift) and False (reduce): a rule token's goto


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

    def __init__(self, table: dict[str, Any], transformer: Any, rule_tokens: dict[str, str] | None = None) -> None:
        """rule_tokens: rule name -> the terminal it starts with, for the rules the lexer may hand over
        whole (a token whose type is the rule's name and whose value is the rule's value)."""
        self._start: int = table["start_state"]
        self._end: int = table["end_state"]
        reductions: list[tuple[int, str, Callable[[list[Any]], Any], bool]] = []
        for name, size, splices in table["rules"]:
            method = _Spliced if name.startswith("_") else getattr(transformer, name, None)
            if method is None:
                raise TypeError(f"{type(transformer).__name__} has no method for rule {name!r}")
            reductions.append((size, name, method, splices))
        # per state: symbol -> (True, next state) for a shift, (False, reduction) for a reduce (and
        # (_RULE_VALUE, next state) for a rule token, below)
        self._states: dict[int, dict[str, tuple[int, Any]]] = {
            int(state): {symbol: (True, act) if act >= 0 else (False, reductions[-1 - act])
                         for symbol, act in row.items()}
            for state, row in table["states"].items()
        }
        for rule, first in (rule_tokens or {}).items():
            # Where the rule's first terminal would be shifted, its token goes where a reduce of the
            # rule would go (the goto), pushing its value; where that terminal makes the parser
            # reduce first, so does the token. (A rule token is only sound for a rule whose first
            # terminal starts nothing else and whose rest the parser always shifts: the lexer's
            # business, checked by tests/test_grammar.py against the table.)
            for row in self._states.values():
                action = row.get(first)
                if action is None:
                    continue
                goto = row.get(rule)
                if action[0]:
                    if goto is None:
                        raise ValueError(f"{first} is shifted where {rule} cannot start")
                    row[rule] = (_RULE_VALUE, goto[1])
                elif goto is None:
                    row[rule] = action
                else:
                    raise ValueError(f"{first} reduces where {rule} can start")

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
                    raise RuntimeError(f"grammar is not total: unexpected {kind} token in state {state_stack[-1]}")
                shift, arg = action
                if shift:
                    state_stack.append(arg)
                    values.append(tok if shift is True else tok[1])  # a rule token: its value
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
        raise RuntimeError("grammar is not total: the tokens ended before the start rule was complete")


@lru_cache(maxsize=None)
def line_lexer() -> LineLexer:
    """The line lexer of whole transcripts (feeds TableParser), built once per process."""
    return LineLexer(load_table()["terminals"])


@lru_cache(maxsize=None)
def table_parser(transformer: Any) -> TableParser:
    """The TableParser of whole transcripts for a transformer, built once per process; it takes the
    rule tokens line_lexer() hands over when asked to (LineLexer.toks)."""
    return TableParser(load_table(), transformer, RULE_TOKENS)


def _main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dumpscope.grammar",
                                 description="Rebuild the LALR table of the grammars with Lark and write it "
                                             "(run it after changing a .lark file).")
    ap.add_argument("path", nargs="?", type=Path, help=f"where to write it [default: grammars/{TABLE_FILE}]")
    print(f"wrote {write_table(ap.parse_args(argv).path)}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
