"""Signature files are bounded data (issue 18): size, patterns per file, nesting, and the regex rules.

A refusal is the project's own SignatureFileError naming the file, never RecursionError, and comes
before the patterns are compiled: the tests count compilations (work), never time.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import dumpscope.signatures as sigmod
from dumpscope.errors import SignatureFileError
from dumpscope.signatures import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    MAX_PATTERNS_PER_FILE,
    check_regex,
    load_irrelevant_frames,
    load_signatures,
)

_HEAD = """\
id = "{id}"
title = "t"
bugs = ["illumos 1"]

[crash]
message = '^boom'
"""
_FRAME = '[[crash.frames]]\nfunction = "f{n}"\n'


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pattern the loader compiles; a loader that compiles more than 1,000 is stopped (it is
    compiling what it should have refused)."""
    seen: list[str] = []
    real = sigmod.compile_pattern

    def counting(pattern: str) -> re.Pattern[str]:
        seen.append(pattern)
        if len(seen) > 1000:
            raise AssertionError("compiled over 1,000 patterns of a file it should refuse")
        return real(pattern)

    monkeypatch.setattr(sigmod, "compile_pattern", counting)
    return seen


def test_100000_frame_patterns_are_refused_before_any_is_compiled(tmp_path: Path, compiled: list[str]) -> None:
    path = tmp_path / "huge.toml"
    path.write_text(_HEAD.format(id="huge") + "".join(_FRAME.format(n=i) for i in range(100_000)))
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert exc.value.path == str(path) and "larger than 64 KiB" in str(exc.value)
    assert compiled == []


def test_too_many_patterns_in_a_small_file_are_refused_before_any_is_compiled(
        tmp_path: Path, compiled: list[str]) -> None:
    path = tmp_path / "many.toml"
    frames = ",".join(f'{{function="f{i}"}}' for i in range(MAX_PATTERNS_PER_FILE + 50))
    path.write_text(_HEAD.format(id="many") + f"frames = [{frames}]\n")
    assert path.stat().st_size < MAX_FILE_BYTES
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert f"{MAX_PATTERNS_PER_FILE + 51} patterns, more than the limit of {MAX_PATTERNS_PER_FILE}" in str(exc.value)
    assert compiled == []


def test_a_file_at_the_pattern_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    frames = ",".join(f'{{function="f{i}"}}' for i in range(MAX_PATTERNS_PER_FILE - 1))
    path.write_text(_HEAD.format(id="full") + f"frames = [{frames}]\n")
    assert [s.id for s in load_signatures([path])] == ["full"]


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 50, 5_000, 30_000])
def test_deep_nesting_is_the_projects_own_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(_HEAD.format(id="deep") + 'frames = [{function="f"}]\n' + "[x]\ny = " + "[" * depth + "]" * depth + "\n")
    assert path.stat().st_size < MAX_FILE_BYTES
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert str(exc.value) == f"{path}: nested deeper than {MAX_NESTING} levels"


def test_deep_inline_tables_too(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(_HEAD.format(id="deep") + 'frames = [{function="f"}]\n' + "[x]\ny = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n")
    with pytest.raises(SignatureFileError, match="nested deeper than"):
        load_signatures([path])


def test_shipped_files_are_well_inside_the_limits() -> None:
    root = Path(sigmod.__file__).parent / "data" / "signatures"
    for p in root.glob("*.toml"):
        data = p.read_bytes()
        assert len(data) < MAX_FILE_BYTES // 4
        doc = tomllib.loads(data.decode())
        assert sigmod._count_patterns(doc) < MAX_PATTERNS_PER_FILE // 4
        assert sigmod._depth(doc) < MAX_NESTING


def test_a_huge_irrelevant_frames_list_is_refused() -> None:
    with pytest.raises(SignatureFileError, match="larger than"):
        load_irrelevant_frames("vpanic\n" * 20_000)


# -- the regex rule for adjacent unbounded repeats ------------------------------------------------------


@pytest.mark.parametrize("pattern", [
    r"[^x]*[^y]*[^z]*!",  # the issue's: over 60 s on a 1 KiB subject
    r"\d+\w*", r"a*b?a*", r"(a*)(a*)", r"a*(?:b|a*)", r"(?i)A*a*", r".*\s*x", r"\w+(?:_)?\w+",
])
def test_adjacent_unbounded_repeats_sharing_a_character_are_refused(pattern: str) -> None:
    assert check_regex(pattern) == ("two unbounded repeats side by side can take the same characters "
                                    "(polynomial backtracking); make their character sets disjoint")


@pytest.mark.parametrize("pattern", [
    r"\s*\S+", r"[0-9a-f]+\s+\w+", r"^\s*(\w+)\s*=", r".*foo", r"a+b+a+", r"x*+x*", r"[a-f]*[g-z]*",
    r"cyclic_(?:reprogram|remove)\w*", r"\d{1,16}\d*",
])
def test_disjoint_or_separated_repeats_pass(pattern: str) -> None:
    assert check_regex(pattern) is None


# -- possessive repeats, atomic groups, alternations and optional parts inside repeats --------------


@pytest.mark.parametrize("pattern", [
    r"[^x]*[^y]*+!", r"[^x]*[^y]++!",  # the possessive one cannot give back, but the one before it can
    r"[^x]*(?>[^y]*)!", r"(?>[^x]*[^y]*)!",  # an atomic group backtracks inside while it matches
    r"(?:\([^()]*+\))*[^)]*!",  # a repeat of possessive parts is still a repeat, with its characters
])
def test_possessive_and_atomic_parts_still_count_as_adjacent_repeats(pattern: str) -> None:
    assert check_regex(pattern) == ("two unbounded repeats side by side can take the same characters "
                                    "(polynomial backtracking); make their character sets disjoint")


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(?:\([^()]*\))*", "nested quantifier"),  # the inner repeat can give back
    (r"(?:a|ab)*", "alternation inside a repeat"), (r"(?:ab|a.)*", "alternation inside a repeat"),
    (r"(?:(?i:ab|AB) )*", "alternation inside a repeat"),  # two strings, one text under IGNORECASE
    (r"(?:a?a)*X", "an optional part inside a repeat"),  # exponential: over a second on 36 a's
    (r"(?:ab??)+X", "an optional part inside a repeat"),
])
def test_ambiguous_repeat_bodies_are_refused(pattern: str, why: str) -> None:
    assert (check_regex(pattern) or "").startswith(why), check_regex(pattern)


@pytest.mark.parametrize("pattern", [
    r"(?:::[\w.$]++)*+\(",  # each iteration matches in one way: the inner repeat never gives back
    r"\([^()]*+(?:\([^()]*+\)[^()]*+)*+\)",  # an argument list with one level of parentheses
    r"(?:(?:unsigned|signed|long|short) )*[A-Za-z_]\w*",  # none of the strings begins another
    r"(?:a?+a)*X",  # the optional part is possessive
])
def test_repeat_bodies_that_match_in_one_way_pass(pattern: str) -> None:
    assert check_regex(pattern) is None


def test_the_rule_refuses_the_shape_in_a_signature_file_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cube.toml"
    path.write_text(_HEAD.replace("'^boom'", "'[^x]*[^y]*[^z]*!'").format(id="cube") + _FRAME.format(n=0))
    with pytest.raises(SignatureFileError) as exc:
        load_signatures([path])
    assert exc.value.line == 6 and "side by side" in str(exc.value)
