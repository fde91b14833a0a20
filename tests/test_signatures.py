"""The signature set itself: schema, safety of its regexes, and a hit and a near-miss for every signature."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import TRANSCRIPTS, read_expect, read_text
from dumpscope.errors import SignatureFileError
from dumpscope.signatures import (
    MAX_PATTERN_LENGTH,
    CrashSpec,
    FramePattern,
    check_regex,
    literal_names,
    load_irrelevant_frames,
    load_signatures,
    signature_set,
)

SIG_DIR = Path(__file__).resolve().parent.parent / "dumpscope" / "data" / "signatures"

MINIMAL = """\
id = "{id}"
title = "a test signature"
bugs = ["test 1"]

[crash]
message = '^boom'

[[crash.frames]]
function = "foo"
"""


def _write(tmp_path: Path, sig_id: str, text: str) -> Path:
    p = tmp_path / f"{sig_id}.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _expects() -> list[tuple[Path, dict[str, list[str]]]]:
    out = []
    for exp in sorted(TRANSCRIPTS.glob("*.expect")):
        e = read_expect(exp)
        keys: dict[str, list[str]] = {}
        for k, v in e.items:
            keys.setdefault(k, []).append(v)
        out.append((exp.with_suffix(".txt"), keys))
    return out


# --- the shipped set -----------------------------------------------------------------------------------

def test_shipped_set_loads_with_unique_ids() -> None:
    sigs = signature_set()
    ids = [s.id for s in sigs]
    assert len(ids) == len(set(ids)) == len(list(SIG_DIR.glob("*.toml")))
    assert "illumos-12476" in ids


def test_12476_facts() -> None:
    s = signature_set().get("illumos-12476")
    assert s is not None
    assert s.bugs == ("illumos 12476", "SmartOS OS-6684")
    assert s.fix is not None
    commits = {line.commit: line.date.isoformat() for line in s.fix.lines}
    assert commits == {"cb2d1b02582006a823e154df6807c505b73b1cb6": "2020-04-25", "7cbfae1c5ff6": "2019-07-18"}
    assert [c.text for c in s.threads[0].require][:3] == [
        "cyclic_remove_here.arg0 == cpu", "cyclic_remove_here.arg1 == ndx", "sema_p.arg0 == cpu + 0xa0"]
    assert s.threads[0].require[2].rhs.offset == 0xA0


def test_version_is_a_hash_of_the_bytes(tmp_path: Path) -> None:
    a = _write(tmp_path, "t-one", MINIMAL.format(id="t-one"))
    v1 = load_signatures([a]).version
    assert load_signatures([a]).version == v1
    a.write_text(MINIMAL.format(id="t-one") + "\n# a comment changes the bytes\n", encoding="utf-8")
    assert load_signatures([a]).version != v1


def test_irrelevant_frames_load() -> None:
    pats = load_irrelevant_frames()
    for name in ("vpanic", "panicsys", "die", "trap", "cmntrap", "_cmntrap", "assfail", "assfail3", "mutex_panic"):
        assert any(p.fullmatch(name) for p in pats), name
    assert not any(p.fullmatch("cyclic_reprogram_cyclic") for p in pats)


def test_irrelevant_frames_bad_line_names_the_line() -> None:
    with pytest.raises(SignatureFileError) as ei:
        load_irrelevant_frames("vpanic\n# comment\n(a+)+\n", "x.txt")
    assert ei.value.line == 3 and ei.value.path == "x.txt"


# --- every signature has a fixture that hits it and a near-miss that must not -------------------------

def _triage(path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("dumpscope.parse")
    from dumpscope.triage import triage_text

    return triage_text(read_text(path), path.name)


@pytest.mark.parametrize("sig_id", [s.id for s in signature_set()])
def test_each_signature_is_hit_by_a_fixture(sig_id: str) -> None:
    hits = [p for p, keys in _expects() if sig_id in keys.get("SIGNATURE", [])]
    assert hits, f"no fixture expects SIGNATURE: {sig_id}"
    for p in hits:
        assert _triage(p).signature == sig_id, p.name


@pytest.mark.parametrize("sig_id", [s.id for s in signature_set()])
def test_each_signature_is_missed_by_a_near_miss(sig_id: str) -> None:
    misses = [p for p, keys in _expects() if sig_id in keys.get("NOT_SIGNATURE", [])]
    assert misses, f"no near-miss fixture has NOT_SIGNATURE: {sig_id}"
    pytest.importorskip("dumpscope.parse")
    from dumpscope.match import match
    from dumpscope.parse import parse_transcript

    sig = signature_set().get(sig_id)
    assert sig is not None
    for p in misses:
        assert match(parse_transcript(read_text(p), p.name), sig) is None, p.name


@pytest.mark.parametrize("sig_id", [s.id for s in signature_set()])
def test_declared_fixtures_and_near_misses_are_the_expect_files(sig_id: str) -> None:
    # `signatures --format json` reports a signature's fixtures and near misses from its TOML; they
    # must be exactly the transcripts whose .expect says SIGNATURE / NOT_SIGNATURE for it
    sig = signature_set().get(sig_id)
    assert sig is not None
    hits = sorted(p.stem for p, keys in _expects() if sig_id in keys.get("SIGNATURE", []))
    misses = sorted(p.stem for p, keys in _expects() if sig_id in keys.get("NOT_SIGNATURE", []))
    assert (sorted(sig.fixtures), sorted(sig.near_misses)) == (hits, misses)


def test_no_two_signatures_claim_one_fixture() -> None:
    pytest.importorskip("dumpscope.parse")
    from dumpscope.match import match
    from dumpscope.parse import parse_transcript

    sigs = signature_set()
    for p, _keys in _expects():
        dump = parse_transcript(read_text(p), p.name)
        claimed = {s.id for s in sigs if match(dump, s) is not None}
        beaten = {o for s in sigs if s.id in claimed for o in s.more_specific_than}
        assert len(claimed - beaten) <= 1, f"{p.name} is claimed by {sorted(claimed)}"


# --- bad files fail at load time with file and line ---------------------------------------------------

@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (lambda t: t.replace('title = "a test signature"', 'title = "x"\ncolour = "red"'), 3, "unknown key 'colour'"),
        (lambda t: t.replace('function = "foo"', 'function = "foo"\nargs = 2'), 10, "unknown key 'args'"),
        (lambda t: t.replace("message = '^boom'", "message = ''"), 6, "empty pattern"),
        (lambda t: t.replace("message = '^boom'", "message = '(a+)+$'"), 6, "nested quantifier"),
        (lambda t: t.replace("message = '^boom'", "message = '(.*)*x'"), 6, "nested quantifier"),
        (lambda t: t.replace("message = '^boom'", r"message = '(ab)\1'"), 6, "backreference"),
        (lambda t: t.replace("message = '^boom'", "message = '(a|ab)*c'"), 6, "alternation inside a repeat"),
        (lambda t: t.replace("message = '^boom'", "message = '(?<=x)y'"), 6, "lookahead/lookbehind"),
        (lambda t: t.replace("message = '^boom'", "message = '" + "a" * (MAX_PATTERN_LENGTH + 1) + "'"), 6, "longer than"),
        (lambda t: t.replace("message = '^boom'", "message = = 'boom'"), 6, "TOML syntax"),
        (lambda t: t.replace("message = '^boom'", "message = 'boom("), 9, "TOML syntax"),
        (lambda t: t.replace("message = '^boom'", "message = 'boom('"), 6, "invalid regular expression"),
        (lambda t: t.replace('bugs = ["test 1"]', "bugs = []"), 3, "must not be empty"),
        (lambda t: t + '\n[crash.bind]\ncpu = "bar.arg0"\n', 12, "no named frame pattern"),
        (lambda t: t.replace('id = "t-bad"', 'id = "t-other"'), 1, "file name stem"),
        (lambda t: 'events = ["{cpu.__class__}"]\n' + t, 1, "bare"),
        (lambda t: 'events = ["{cpu}"]\n' + t, 1, "not a bound name"),
    ],
)
def test_bad_file_fails_with_file_and_line(tmp_path: Path, edit, line: int, words: str) -> None:  # type: ignore[no-untyped-def]
    p = _write(tmp_path, "t-bad", edit(MINIMAL.format(id="t-bad")))
    with pytest.raises(SignatureFileError) as ei:
        load_signatures([p])
    assert ei.value.path == str(p)
    assert ei.value.line == line, str(ei.value)
    assert words in str(ei.value)
    assert str(ei.value).startswith(f"{p}:{line}: ")


def test_clause_names_must_be_bound(tmp_path: Path) -> None:
    text = MINIMAL.format(id="t-clause") + (
        '\n[[threads]]\nrole = "other"\n\n[[threads.frames]]\nfunction = "bar"\n\n'
        '[[threads.require]]\ncheck = "bar.arg0 == cpu + 0xa0"\n'
    )
    p = _write(tmp_path, "t-clause", text)
    with pytest.raises(SignatureFileError) as ei:
        load_signatures([p])
    assert ei.value.line == 18 and "'cpu' is not a bound name" in str(ei.value)


def test_duplicate_ids_and_unknown_more_specific(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    b = tmp_path / "b"
    b.mkdir()
    one = _write(a, "t-dup", MINIMAL.format(id="t-dup"))
    two = _write(b, "t-dup", MINIMAL.format(id="t-dup"))
    with pytest.raises(SignatureFileError, match="duplicate id"):
        load_signatures([one, two])
    three = _write(tmp_path, "t-spec", 'more_specific_than = ["nope"]\n' + MINIMAL.format(id="t-spec"))
    with pytest.raises(SignatureFileError) as ei:
        load_signatures([three])
    assert ei.value.line == 1 and "unknown signature 'nope'" in str(ei.value)


@pytest.mark.parametrize("pattern", ["(a+)+", "(a*)*b", "(.*)*", "(\\w+\\s?)+$", "(a|a)+", "(x+x+)+y", "(?:a{2,}){2,}"])
def test_super_linear_regexes_are_rejected(pattern: str) -> None:
    assert check_regex(pattern) is not None


@pytest.mark.parametrize("pattern", ["^attempt to reprogram non-existent cyclic", "v(hpet|atpit)_cleanup",
                                     "joyent_(?P<date>[0-9]{8})T[0-9]{6}Z", "^BAD TRAP: .* occurred", "[a-z_]+"])
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    assert check_regex(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("sema_p", {"sema_p"}),
        ("vhpet_handler|vatpit_callout_handler", {"vhpet_handler", "vatpit_callout_handler"}),
        ("vlapic_[a-z_]+", None),
        ("foo.bar", None),  # '.' is any character
        ("foo$", None),
        ("(?i)foo", None),
        ("foo|", None),  # the empty alternative matches ''
    ],
)
def test_literal_names_only_for_plain_names(pattern: str, names: set[str] | None) -> None:
    got = literal_names(re.compile(pattern))
    assert got == (None if names is None else frozenset(names))
    assert literal_names(re.compile(pattern, re.IGNORECASE)) is None
    if got is not None:  # exactly the strings the regex fullmatches
        for probe in [*got, "x", "", pattern, pattern.upper(), next(iter(got)) + "_"]:
            assert (probe in got) == bool(re.fullmatch(pattern, probe))


def test_derived_name_sets_of_the_shipped_signatures() -> None:
    sig = signature_set().get("illumos-12476")
    assert sig is not None
    assert sig.crash.frames[0].literals == frozenset({"cyclic_reprogram_cyclic"})
    assert sig.crash.frames[3].literals is None  # 'vlapic_[a-z_]+' needs the regex
    assert sig.crash.exclude_names == frozenset({"cyclic_reprogram_xcall"})
    pat = FramePattern("x", re.compile("x"))
    assert pat.literals == frozenset({"x"}) and pat == FramePattern("x", re.compile("x"))
    mixed = CrashSpec(None, False, (pat,), exclude=(re.compile("a"), re.compile("b[0-9]")))
    assert mixed.exclude_names is None
    assert CrashSpec(None, False, (pat,), exclude=(re.compile("a"), re.compile("b|c"))).exclude_names == {"a", "b", "c"}


def test_build_dates_read_as_strptime_reads_them() -> None:
    import datetime as dt
    import random

    from dumpscope.signatures import _build_date

    rng = random.Random(6684)
    texts = ["20190718", "20191301", "20190230", "20190010", "20190100", "20191132", "00000101", "99991231",
             "2019718", "201907181", "2019 718", "2019-07-18", "", "abcdefgh", "٢٠١٩٠٧١٨"]
    texts += ["".join(rng.choice("0123456789") for _ in range(8)) for _ in range(3000)]
    texts += [f"{rng.randrange(1900, 2100)}{rng.randrange(0, 14):02d}{rng.randrange(0, 33):02d}" for _ in range(3000)]
    for text in texts:
        try:
            want: dt.date | None = dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            want = None
        assert _build_date(text) == want, text


def test_the_bundled_data_passes_the_regex_safety_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # dumpscope's own signatures, plumbing frames and crash kinds are not checked on every start
    # (signature_set, load_irrelevant_frames, load_crash_kinds trust them): they are checked here,
    # loaded as a user's files are, and the loaders must see the same patterns.
    import dumpscope.signatures as sigs

    data = Path(sigs.__file__).parent / "data"
    own = sigs.load_signature_set()
    checked = sigs.load_signatures(sorted((data / "signatures").glob("*.toml")))
    assert [s.id for s in checked] == [s.id for s in own] and len(own) > 0
    frames = (data / "irrelevant_frames.txt").read_text(encoding="utf-8")
    assert [p.pattern for p in sigs.load_irrelevant_frames(frames)] == [p.pattern for p in sigs.load_irrelevant_frames()]
    kinds = (data / "crash_hints.toml").read_text(encoding="utf-8")
    assert sigs.load_crash_kinds(kinds) == sigs.load_crash_kinds()
    # and the trusted loaders do skip the check: a check that refuses everything does not stop them
    monkeypatch.setattr(sigs, "check_regex", lambda pattern, max_length=None: "refused")
    assert len(sigs.load_signature_set()) == len(own) and sigs.load_irrelevant_frames() and sigs.load_crash_kinds()
    with pytest.raises(SignatureFileError):
        sigs.load_signatures(sorted((data / "signatures").glob("*.toml")))


def test_12476_writes_each_hint_once_and_loads_its_hints_and_dcmds_whole() -> None:
    # the remover's search and follow-up are written once, under [[threads.hints]]; the loader lists
    # the search among the message-only hints too, and declares the follow-up as a dcmd (mdb.follow_ups)
    text = (SIG_DIR / "illumos-12476.toml").read_text()
    assert text.count("\"::stacks -c cyclic_remove_here | ::findstack -v\"") == 1
    assert text.count("\"{address}::findstack -v\"") == 1
    sig = load_signatures([SIG_DIR / "illumos-12476.toml"]).get("illumos-12476")
    assert sig is not None
    assert [h.command for h in sig.hints] == ["$C", "::stacks -c cyclic_remove_here | ::findstack -v"]
    assert sig.hints[1] == sig.threads[0].hints[0]
    assert sig.dcmds == ("::status", "$C", "::stacks -c cyclic_remove_here", "{address}::findstack -v")
