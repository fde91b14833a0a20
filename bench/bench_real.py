"""How dumpscope does on real published transcripts nobody here wrote (issue 13).

Every real transcript: ../shared/corpus/NNN-*.txt (when present) and the fixtures collected for issue 13
(fixtures/transcripts/{fma,trap,console,mdb,userland,recursion,wrapped}-*.txt). Each has a hand-written
.expect in fixtures/transcripts/ (read off the transcript before the program ran on it). Three shares:

  classified   the verdict agrees with what the source says: every triage key of the .expect holds
               (SIGNATURE, NOT_SIGNATURE, TITLE, NOT_TITLE, CRASH_FUNCTION, VERDICT_NOTE); an honest
               unknown bucket counts when that is what the .expect asks for
  titles       of the transcripts whose stack shows the function that crashed (CRASH_FUNCTION), the
               share whose own title (the bucket's) names it
  frame lines  of the lines a loose, grammar-independent detector takes for frames
               (tests/test_corpus_frames.py), the share parsed as a frame at that line

    python3 bench/bench_real.py            # the three shares and every miss
    python3 bench/bench_real.py --json     # one JSON document
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import read_expect  # noqa: E402
from dumpscope.bucket import bucket  # noqa: E402
from dumpscope.parse import parse_transcript  # noqa: E402
from dumpscope.triage import triage_text  # noqa: E402
from test_corpus_frames import _frame_lines  # noqa: E402

TRANSCRIPTS = ROOT / "fixtures" / "transcripts"
# ../shared/corpus beside the checkout (/work/main), or beside the folder of worktrees (/work/wt/NAME)
CORPUS = next((c for c in (ROOT.parent / "shared" / "corpus", ROOT.parent.parent / "shared" / "corpus")
               if c.is_dir()), ROOT.parent / "shared" / "corpus")
COLLECTED = ("fma-", "trap-", "console-", "mdb-", "userland-", "recursion-", "wrapped-")
_NUMBERED = re.compile(r"^\d{3}-")


def real_transcripts() -> list[tuple[Path, Path]]:
    """(transcript, its .expect) of every real transcript: the shared corpus, then issue 13's."""
    out = []
    if CORPUS.is_dir():
        for path in sorted(CORPUS.glob("[0-9]*.txt")):
            expect = TRANSCRIPTS / (_NUMBERED.sub("", path.stem) + ".expect")
            if expect.is_file():
                out.append((path, expect))
    for path in sorted(TRANSCRIPTS.glob("*.txt")):
        if path.name.startswith(COLLECTED) and path.with_suffix(".expect").is_file():
            out.append((path, path.with_suffix(".expect")))
    return out


def _classified(text: str, name: str, expect_path: Path) -> list[str]:
    # the triage keys of the .expect that do not hold (empty: classified as the source says)
    exp = read_expect(expect_path)
    v = triage_text(text, name)
    misses = []
    want = exp.get("SIGNATURE")
    if want is not None and (v.signature or "none") != want:
        misses.append(f"signature {v.signature} != {want}")
    misses += [f"signature {v.signature} must not be {w}" for w in exp.all("NOT_SIGNATURE") if v.signature == w]
    misses += [f"title {v.title!r} lacks {w!r}" for w in exp.all("TITLE") if w not in v.title]
    misses += [f"title {v.title!r} has {w!r}" for w in exp.all("NOT_TITLE") if w in v.title]
    misses += [f"no note {w!r}" for w in exp.all("VERDICT_NOTE") if not any(w in n for n in v.notes)]
    return misses


def measure() -> dict[str, object]:
    """The three shares over every real transcript, with the misses that make them."""
    total = classified = 0
    titled = titled_ok = 0
    frame_lines = frame_ok = 0
    misses: list[str] = []
    for path, expect_path in real_transcripts():
        text = path.read_text(encoding="utf-8", errors="replace")
        total += 1
        bad = _classified(text, path.name, expect_path)
        if not bad:
            classified += 1
        misses += [f"{path.name}: {m}" for m in bad]
        dump = parse_transcript(text, path.name)
        crash = read_expect(expect_path).all("CRASH_FUNCTION")
        if crash:
            titled += 1
            own = bucket(dump, text).title
            if all(c in own for c in crash):
                titled_ok += 1
            else:
                misses.append(f"{path.name}: title {own!r} does not name {crash}")
        parsed = {f.line for s in dump.stacks for f in s.frames} | {f.line for t in dump.threads for f in t.frames}
        detected = _frame_lines(text)
        frame_lines += len(detected)
        frame_ok += sum(1 for n in detected if n in parsed)
        misses += [f"{path.name}: frame line {n} not parsed" for n in detected if n not in parsed]
    return {
        "transcripts": total,
        "classified": [classified, total],
        "titles": [titled_ok, titled],
        "frame_lines": [frame_ok, frame_lines],
        "misses": misses,
    }


def _pct(pair: object) -> str:
    ok, n = pair  # type: ignore[misc]
    return f"{ok}/{n} = {100.0 * ok / n:.1f}%" if n else "n/a"


def main(argv: list[str]) -> int:
    result = measure()
    if "--json" in argv:
        print(json.dumps(result, sort_keys=True))
        return 0
    print(f"real transcripts: {result['transcripts']}")
    print(f"classified as the source says: {_pct(result['classified'])}   (target >= 95%)")
    print(f"titles naming the crashing function: {_pct(result['titles'])}   (target >= 90%)")
    print(f"frame lines parsed as frames: {_pct(result['frame_lines'])}   (target 100%)")
    for miss in result["misses"]:  # type: ignore[attr-defined]
        print(f"  miss: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
