"""Run dumpscope's CLI with a triage that never ends on inputs holding the word SLOW (test helper).

The stall is a catastrophic regular expression run by the C regex engine, as the hangs of issue 18
were: it holds the interpreter lock and returns to Python only when a signal handler raises. Usage:
python tests/_slow_cli.py triage ARGS... (run from the checkout's root).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dumpscope.triage as triage_mod  # noqa: E402
from dumpscope.cli import main  # noqa: E402

_real = triage_mod.triage_text


def _triage_text(text: str, source: str, *args: Any, **kw: Any) -> Any:
    if "SLOW" in text:
        re.match(r"(a+)+$", "a" * 64 + "!")  # 2**64 steps
    return _real(text, source, *args, **kw)


triage_mod.triage_text = _triage_text  # type: ignore[assignment]

if __name__ == "__main__":
    main(sys.argv[1:])
