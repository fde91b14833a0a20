"""Test helpers: build Dump objects by hand from frame lines copied out of a transcript.

Only frame lines are read here ('[FP ]func+off(args)' or console 'FP module:func+off ()'); every other
Dump field is written out explicitly in the tests, with line numbers counted by hand in the source.
"""

from __future__ import annotations

import re

from dumpscope.dump import Frame, SectionKind, Stack, Status, Thread

__all__ = ["frames", "stack", "status", "thread"]

_FRAME = re.compile(
    r"^\s*(?:(?P<fp>[0-9a-f]{8,16})\s+)?(?:(?P<mod>[\w.]+)[`:])?(?P<fn>~?[\w.]+)"
    r"(?:\+(?P<off>0x[0-9a-f]+|[0-9a-f]+))?\s*(?:\((?P<args>[^)]*)\))?\s*$"
)


def frames(text: str, first_line: int, console: bool = False) -> tuple[Frame, ...]:
    """Frames from consecutive transcript lines; first_line is the line number of the first one."""
    out = []
    for i, raw in enumerate(text.strip("\n").splitlines()):
        if not raw.strip() or raw.strip().startswith("["):
            continue
        m = _FRAME.match(raw)
        assert m, f"not a frame line: {raw!r}"
        off = m.group("off")
        offset = None
        if off is not None:
            # console offsets are bare hex; mdb offsets are 0x-prefixed hex or a small decimal
            offset = int(off, 16) if console or off.startswith("0x") else int(off, 10)
        args_text = m.group("args")
        args = None
        if args_text is not None:
            args = tuple(int(a, 16) for a in args_text.split(",") if a.strip())
            if console:
                args = ()
        out.append(Frame(
            line=first_line + i,
            function=m.group("fn"),
            module=m.group("mod"),
            offset=offset,
            args=args,
            fp=int(m.group("fp"), 16) if m.group("fp") else None,
        ))
    return tuple(out)


def stack(text: str, first_line: int, command: str | None = "$C", console: bool = False) -> Stack:
    """A standalone stack from frame lines."""
    fr = frames(text, first_line, console)
    return Stack(line=fr[0].line, frames=fr, command=command, console=console)


def thread(text: str, header_line: int, address: int | None, kind: SectionKind = SectionKind.FINDSTACK,
           description: str | None = None, **kw: object) -> Thread:
    """A thread whose frames start on the line after its header."""
    return Thread(line=header_line, kind=kind, address=address, frames=frames(text, header_line + 1),
                  description=description, **kw)  # type: ignore[arg-type]


def status(line: int, *, host: str | None = None, version: str | None = None,
           panic_message: str | None = None, message_line: int | None = None,
           target: str = "crash dump") -> Status:
    """A ::status block starting at `line`."""
    lines: tuple[tuple[str, int], ...] = ()
    if panic_message is not None and message_line is not None:
        lines = (("panic_message", message_line),)
    return Status(line=line, target=target, host=host, version=version, panic_message=panic_message, lines=lines)
