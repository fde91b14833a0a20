"""The bug report of one verdict in Markdown, ready to paste into an issue tracker (`triage --format markdown`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dumpscope.render import escape, event_text, lines_label
from dumpscope.verdict import Verdict

__all__ = ["render_markdown"]

# Markdown and HTML punctuation a tracker would act on inside a line; a backslash makes each literal
# (CommonMark §2.4). Line-start markup (#, -, +, 1.) cannot arise: every value follows a prefix.
_PUNCT = re.compile(r"([\\`*_\[\]<>|~&])")


def _md(text: str | None) -> str:
    # A transcript value in running text: control characters escaped, Markdown and HTML made literal.
    return _PUNCT.sub(r"\\\1", escape(text))


def _fence(body: str, info: str = "") -> str:
    # A fenced block no line of `body` can close: one backtick more than its longest run (CommonMark §4.5).
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def render_markdown(v: Verdict, lines: Sequence[str] | None = None) -> str:
    """A ticket body for one verdict: title, panic message, host and build, signature and confidence,
    the events, the evidence lines (quoted from `lines`, the transcript, with their numbers) in a fenced
    block, the fix status and references, and the mdb commands to run next.

    Everything from the transcript is escaped: control characters as `\\xNN`, Markdown and HTML
    punctuation with a backslash, and fenced text behind a fence it cannot close.
    """
    if v.status != "ok":
        out = [f"# dumpscope could not triage {_md(v.source)}", "", f"Error: {_md(v.error)}"]
        out.extend(f"- {_md(n)}" for n in v.notes)
        return "\n".join(out) + "\n"
    if v.signature:
        out = [f"# {_md(v.title)}"]
    else:
        out = [f"# Unknown crash: {_md(v.title)}"]
    out.append("")
    if v.panic_message:
        out += ["Panic message:", "", _fence(escape(v.panic_message)), ""]
    facts = [
        ("Host", _md(v.host) or "unknown"),
        ("Platform build", _md(v.platform) or "unknown"),
        ("Panic thread", _md(v.panic_thread) or "unknown"),
        ("Signature", (_md(v.signature) + (f" ({', '.join(_md(b) for b in v.bugs)})" if v.bugs else ""))
         if v.signature else "none (unknown crash)"),
        ("Confidence", v.confidence.value if v.confidence else "none"),
        ("Bucket", f"`{v.bucket}`" if v.bucket else "none"),
        ("Transcript", _md(v.source)),
    ]
    if v.replay:
        facts.append(("Replay", _md(v.replay)))
    out += ["| | |", "|---|---|"] + [f"| {k} | {val} |" for k, val in facts] + [""]
    if v.events:
        out += ["## What happened", ""]
        for i, step in enumerate(v.events, 1):
            where = f" ({lines_label(step.lines)})" if step.lines else ""
            out.append(f"{i}. {_md(event_text(step))}{where}")
        out.append("")
    if v.stack and not v.signature:
        # an unknown crash: its panic stack is what a reader of the ticket needs first
        frames = "\n".join(f"{f.line:>6} | {escape(f.text)}" for f in v.stack)
        key = f" (bucket key: {' <- '.join(_md(k) for k in v.key_frames)})" if v.key_frames else ""
        out += [f"## Panic stack{key}", "", _fence(frames, "text"), ""]
    if v.evidence:
        out += ["## Evidence", ""]
        quoted: list[str] = []
        for e in v.evidence:
            mark = "holds" if e.holds else "**contradicts**"
            detail = f": {_md(e.detail)}" if e.detail else ""
            out.append(f"- {_md(e.clause)} ({lines_label(e.lines)}, {mark}){detail}")
            if lines is not None:
                quoted.extend(f"{n:>6} | {escape(lines[n - 1])}" for n in e.lines if 1 <= n <= len(lines))
        out.append("")
        if quoted:
            ordered = list(dict.fromkeys(sorted(quoted, key=lambda q: int(q.split("|", 1)[0]))))
            out += ["Transcript lines:", "", _fence("\n".join(ordered), "text"), ""]
    if v.fix is not None:
        out += ["## Fix", "", f"Status: **{v.fix.status.value}**" + (f": {_md(v.fix.detail)}" if v.fix.detail else "")]
        out += [""] + [f"- {_md(r)}" for r in v.fix.references] + [""]
    out += ["## Next mdb commands", ""]
    if v.hints:
        for h in v.hints:  # each command in a block of its own, to copy; then what its output settles
            out += [_fence(escape(h.command))] + ([_md(h.settles)] if h.settles else []) + [""]
    else:  # triage leaves out commands whose output the transcript already holds (hints.py)
        out += ["None: the transcript already shows what this diagnosis rests on.", ""]
    if v.notes:
        out += ["## Notes", ""] + [f"- {_md(n)}" for n in v.notes] + [""]
    out.append("_Triaged by dumpscope._")
    return "\n".join(out) + "\n"
