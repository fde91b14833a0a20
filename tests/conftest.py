"""Collects the golden fixtures: each transcript beside a hand-written .expect of KEY: value lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TRANSCRIPTS = FIXTURES / "transcripts"
ERRORS = FIXTURES / "errors"
CORPUS = ROOT.parent / "shared" / "corpus"

# Every key an .expect file may use (fixtures/README.md); an unknown key fails the test run.
PARSE_KEYS = {
    "SOURCE", "PANIC_MESSAGE", "PANIC_MESSAGE_LINE", "PLATFORM", "HOST", "PANIC_STACK", "FRAME",
    "THREADS", "THREAD", "PANIC_THREAD", "NOTE", "FRAMES_TOTAL", "STATUS_FIELD", "TRAPS", "TRAP", "FMA_FIELD",
}
TRIAGE_KEYS = {
    "SIGNATURE", "CONFIDENCE", "TITLE", "BUCKET_SAME_AS", "FIX", "HINT", "EVIDENCE_LINE", "NOT_SIGNATURE",
    "NOT_TITLE", "CRASH_FUNCTION", "VERDICT_NOTE", "BUCKET_DIFFERENT_FROM",
    "NOT_HINT", "EVENT", "NOT_EVENT", "TEXT", "NOT_TEXT",
}
ERROR_KEYS = {"EXIT", "ERROR"}
KNOWN_KEYS = PARSE_KEYS | TRIAGE_KEYS | ERROR_KEYS


@dataclass(frozen=True)
class Expect:
    """The parsed .expect file: an ordered list of (key, value) pairs."""

    path: Path
    items: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        values = self.all(key)
        return values[0] if values else None

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]


def read_expect(path: Path) -> Expect:
    """Strict reader: '#' comments and blank lines skipped; every other line is KEY: value with a known key."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in KNOWN_KEYS:
            raise ValueError(f"{path}:{n}: unknown or malformed expectation line: {line!r}")
        items.append((key, value.strip()))
    return Expect(path, tuple(items))


def transcript_fixtures() -> list[Path]:
    """Every fixtures/transcripts/*.txt that has an .expect beside it."""
    return sorted(p for p in TRANSCRIPTS.glob("*.txt") if p.with_suffix(".expect").exists())


def error_fixtures() -> list[Path]:
    return sorted(p for p in ERRORS.glob("err.*.txt") if p.with_suffix(".expect").exists())


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from dumpscope.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def make_signature_raise(monkeypatch: pytest.MonkeyPatch, sig_id: str) -> None:
    """Make matching the signature `sig_id` raise RuntimeError('boom'), wherever triage matches (a bug
    in one rule, which must not stop the others)."""
    import dumpscope.triage as triage_mod

    real = triage_mod.match

    def flaky(dump, sig):  # type: ignore[no-untyped-def]
        if sig.id == sig_id:
            raise RuntimeError("boom")
        return real(dump, sig)

    monkeypatch.setattr(triage_mod, "match", flaky)
