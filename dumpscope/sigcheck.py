"""Lint a site's signature directory: what a site runs in its own CI before its files reach a triage run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from dumpscope.errors import DumpscopeError, SignatureFileError
from dumpscope.signatures import (
    Signature,
    SignatureFile,
    SignatureSet,
    read_signature_file,
    signature_set,
    site_files,
    site_signature_set,
)

__all__ = ["Finding", "Severity", "check_signatures"]


class Severity(StrEnum):
    """How bad a finding is; any ERROR makes `dumpscope signatures check` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the lint found, located in a file (and line, when it has one)."""

    path: str
    line: int | None
    severity: Severity
    message: str

    def text(self) -> str:
        """'path:line: severity: message', as compilers print it."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity.value}: {self.message}"


def check_signatures(directory: str, against: str | None = None) -> list[Finding]:
    """Lint the signature files of `directory`, alone and as they join the bundled set.

    Each file is checked on its own (schema errors with file:line, unsafe regexes, bad dcmds and
    notes), then ids are checked for duplicates and for replacing a bundled signature, then the
    set as a triage run would load it. With `against`, a directory of transcripts (walked as
    `triage` walks it; an `X.expect` beside `X.txt` may say `SIGNATURE: id` or `NOT_SIGNATURE: id`):
    a site signature no transcript matches is an error, as is a near miss (`NOT_SIGNATURE`) that
    it matches or a transcript whose expected signature is not the verdict's; two signatures that
    both match one transcript (overlap, unless one is declared more_specific_than the other) and a
    site signature with no near-miss transcript are warnings.
    """
    findings: list[Finding] = []
    try:
        files = site_files(directory)
    except SignatureFileError as exc:
        return [Finding(exc.path, exc.line, Severity.ERROR, _message(exc))]
    if not files:
        findings.append(Finding(directory, None, Severity.WARNING, "no *.toml signature files"))
    mine: list[Signature] = []
    first: dict[str, Signature] = {}
    parsed: list[SignatureFile] = []  # each file parsed once, here; the set is built from them
    bundled = {s.id: s for s in signature_set()}
    for path, data in files:
        try:
            parsed.append(read_signature_file(path, data))
        except SignatureFileError as exc:
            findings.append(Finding(exc.path, exc.line, Severity.ERROR, _message(exc)))
            continue
        sig = parsed[-1].signature
        if sig is None:
            continue  # a file of [[notes]] only
        if sig.id in first:
            findings.append(Finding(path, _id_line(data), Severity.ERROR,
                                    f"duplicate id {sig.id!r} (also in {first[sig.id].path})"))
            continue
        first[sig.id] = sig
        mine.append(sig)
        if sig.id in bundled:
            findings.append(Finding(path, _id_line(data), Severity.NOTE,
                                    f"replaces the bundled signature {sig.id} ({bundled[sig.id].path})"))
    if any(f.severity is Severity.ERROR for f in findings):
        return findings
    try:
        sigs = site_signature_set(parsed)
    except SignatureFileError as exc:
        return findings + [Finding(exc.path, exc.line, Severity.ERROR, _message(exc))]
    if against is not None:
        findings.extend(_against(sigs, [s.id for s in mine], against))
    return findings


def _against(sigs: SignatureSet, mine: Sequence[str], against: str) -> list[Finding]:
    from dumpscope.crashdir import select
    from dumpscope.parse import parse_transcript
    from dumpscope.sources import read_source
    from dumpscope.triage import best_match, match_all

    if not os.path.isdir(against):
        return [Finding(against, None, Severity.ERROR, "--against must be a directory of transcripts")]
    out: list[Finding] = []
    matched: dict[str, list[str]] = {i: [] for i in mine}
    near: dict[str, list[str]] = {i: [] for i in mine}
    chosen = select([against])
    for name in chosen.inputs:
        if name in chosen.dumps:
            continue  # dumps need mdb; a lint reads transcripts
        src = read_source(name, digest=False)
        if src.text is None:
            continue
        try:
            dump = parse_transcript(src.text, name)
        except DumpscopeError:
            continue
        hits, raised = match_all(dump, sigs)  # matched and ranked as triage does
        out.extend(Finding(name, None, Severity.ERROR, why) for why in raised)
        best, others = best_match(hits)
        standing = [m.signature.id for m in ([best] if best else []) + list(others)]
        for i in standing:
            if i in matched:
                matched[i].append(name)
        if len(standing) > 1 and any(i in matched for i in standing):
            out.append(Finding(name, None, Severity.WARNING,
                               f"overlap: {' and '.join(standing)} all match this transcript "
                               "(declare more_specific_than, or narrow one)"))
        verdict = best.signature.id if best else None
        expect = _expectations(name)
        for i in expect.get("NOT_SIGNATURE", []):
            if i in near:
                near[i].append(name)
            if verdict == i:
                out.append(Finding(name, None, Severity.ERROR, f"near miss of {i} is matched by it"))
        for i in expect.get("SIGNATURE", []):
            if (verdict or "none") != i:
                out.append(Finding(name, None, Severity.ERROR,
                                   f"expected signature {i}, the verdict is {verdict or 'none'}"))
    for i in mine:
        sig = sigs.get(i)
        path = sig.path if sig is not None else i
        if not matched[i]:
            out.append(Finding(path, None, Severity.ERROR, f"{i}: no transcript in {against} matches it"))
        if not near[i]:
            out.append(Finding(path, None, Severity.WARNING,
                               f"{i}: no near-miss transcript (an .expect saying NOT_SIGNATURE: {i})"))
        else:
            out.append(Finding(path, None, Severity.NOTE, f"{i}: matches {len(matched[i])} transcript(s); "
                               f"{len(near[i])} near miss(es) checked"))
    return out


def _expectations(transcript: str) -> dict[str, list[str]]:
    # The fixture convention (fixtures/README.md): X.expect beside X.txt, KEY: value lines.
    stem, _ext = os.path.splitext(transcript)
    out: dict[str, list[str]] = {}
    try:
        with open(stem + ".expect", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("SIGNATURE", "NOT_SIGNATURE") and not line.lstrip().startswith("#"):
                    out.setdefault(key.strip(), []).append(value.strip())
    except (OSError, UnicodeDecodeError):
        pass
    return out


def _id_line(data: bytes) -> int | None:
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if line.strip().startswith("id") and "=" in line:
            return n
    return None


def _message(exc: SignatureFileError) -> str:
    # SignatureFileError's text starts with its own 'path:line: '; the finding prints that itself
    text = str(exc)
    where = f"{exc.path}:{exc.line}: " if exc.line else f"{exc.path}: "
    return text.removeprefix(where)
