"""The HTML crash report of a history database: one self-contained file (`dumpscope report`)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import Any

from dumpscope.history import STATUS_ORDER, BucketHistory, example_verdicts, history_rows, iso, read_dumps
from dumpscope.render import build_order_key, build_stamp, escape, event_text, lines_label, when_text
from dumpscope.signatures import BucketNote
from dumpscope.verdict import Confidence, Verdict

__all__ = ["CHART_BUCKETS", "build_report", "chart_series", "render_chart_svg"]

# How many signatures or buckets (the largest) the chart shows, and how many builds or weeks (the
# newest; the older ones are one bar): a fleet runs a handful of builds, but a chart of thousands of
# bars is unreadable and costs minutes to draw.
CHART_BUCKETS = 6
CHART_BARS = 24
# Bug references as the signature files write them, and where each is read on the web. A link is an
# <a href>, followed only when clicked: the report itself loads nothing.
_BUG_LINKS = (
    (re.compile(r"illumos (\d+)"), "https://www.illumos.org/issues/{0}"),
    (re.compile(r"SmartOS (OS-\d+)"), "https://smartos.org/bugview/{0}"),
    (re.compile(r"illumos-joyent#(\d+)"), "https://github.com/TritonDataCenter/illumos-joyent/issues/{0}"),
    (re.compile(r"smartos-live#(\d+)"), "https://github.com/TritonDataCenter/smartos-live/issues/{0}"),
    (re.compile(r"illumos-omnios#(\d+)"), "https://github.com/omniosorg/illumos-omnios/issues/{0}"),
    (re.compile(r"propolis#(\d+)"), "https://github.com/oxidecomputer/propolis/issues/{0}"),
)
_INSTALL_HINT = "pip install 'dumpscope[report]'"


def _e(text: object) -> str:
    # Every value from the history or a transcript: control characters shown as \xNN, then HTML-escaped
    # (quotes too, so a value is safe inside an attribute).
    return html.escape(escape(None if text is None else str(text)), quote=True)


def _data(name: str) -> str:
    return resources.files("dumpscope").joinpath("data", name).read_text(encoding="utf-8")


def build_report(path: str, *, now: datetime | None = None, quiet_days: int | None = None,
                 notes: Sequence[BucketNote] = ()) -> str:
    """The report of the history database at `path`, as one HTML document.

    A summary (dumps, signatures and buckets, new, regressed), a chart of crashes per build (or per
    week, when most dumps show no build) for the largest rows, drawn with matplotlib when it is
    installed, and the table of every signature and bucket with its newest dump's verdict. `notes`,
    the site's bucket notes, give ticket links and owners (and regressions past a `fixed` build).
    Raises InputError for a file that holds no history.
    """
    from dumpscope.history import DEFAULT_QUIET_DAYS

    moment = now or datetime.now(UTC)
    dumps, latest = read_dumps(path)
    rows = history_rows(dumps, latest, now=moment, quiet_days=quiet_days or DEFAULT_QUIET_DAYS, notes=notes)
    script = _data("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    title, chart = _chart_section(rows)
    fields = {
        "script_hash": f"sha256-{digest}",
        "script": script,
        "db_name": _e(path),
        "meta": f"history <code>{_e(path)}</code>, made {_e(iso(moment))} by dumpscope; every time is UTC",
        "summary": _summary(rows),
        "chart_title": _e(title),
        "chart": chart,
        "rows": "\n".join(_row(r, v, notes) for r, v in zip(rows, example_verdicts(path, rows), strict=True)),
    }
    return Template(_data("report.html")).substitute(fields)


def _summary(rows: Sequence[BucketHistory]) -> str:
    hosts = {h for r in rows for h in r.hosts}
    counts = {s: sum(r.status is s for r in rows) for s in STATUS_ORDER}
    boxes = [
        ("dumps", sum(r.count for r in rows), "dumps"),
        ("buckets", len(rows), "signatures and buckets"),
        ("new", counts[STATUS_ORDER[1]], "new"),
        ("regressed", counts[STATUS_ORDER[0]], "regressed"),
        ("recurring", counts[STATUS_ORDER[2]], "recurring"),
        ("quiet", counts[STATUS_ORDER[3]], "quiet"),
        ("hosts", len(hosts), "hosts"),
    ]
    return "".join(f'<div class="{cls}" id="summary-{cls}"><b>{n}</b>{label}</div>' for cls, n, label in boxes)


# --- the chart ----------------------------------------------------------------------------------------


def chart_series(rows: Sequence[BucketHistory]) -> tuple[str, list[str], list[tuple[str, list[int]]]]:
    """What the chart draws: its axis ('build' or 'week'), the x labels in order, and per charted row
    (the CHART_BUCKETS largest) its label and its dumps per x label. Per build when most of those dumps
    show a platform build; else per ISO week of first sight."""
    top = sorted(rows, key=lambda r: (-r.count, r.group, r.key))[:CHART_BUCKETS]
    members = [d for r in top for d in r.dumps]
    by_build = sum(d.platform is not None for d in members) * 2 >= len(members)
    if by_build:
        # more builds than bars, all of them SmartOS builds (joyent_20180216T202957Z): one bar a month
        # of build dates (joyent 2018-02), or a year, before lumping the oldest together
        builds = {d.platform for d in members if d.platform}
        stamps = {b: build_stamp(b) for b in builds}
        stamped = all(stamps.values())
        months = {s[:6] for s in stamps.values() if s} if stamped else set()
        cut = 0 if len(builds) <= CHART_BARS or not stamped else (6 if len(months) <= CHART_BARS else 4)

        def where(d: Any) -> str:
            if not d.platform:
                return "(no build shown)"
            if not cut:
                return str(d.platform)
            stamp = stamps[d.platform] or ""
            return f"built {stamp[:4]}-{stamp[4:6]}" if cut == 6 else f"built {stamp[:4]}"
        xs = sorted({where(d) for d in members}, key=lambda b: (b == "(no build shown)", build_order_key(b)))
    else:
        def where(d: Any) -> str:
            year, week, _ = datetime.fromisoformat(d.first_seen.replace("Z", "+00:00")).isocalendar()
            return f"{year}-W{week:02d}"
        xs = sorted({where(d) for d in members})
    older = ""
    if len(xs) > CHART_BARS:
        # the newest builds (or weeks) keep their own bars, the no-build bar stays last, and the
        # rest become one bar in front
        tail = xs[-1:] if xs[-1] == "(no build shown)" else []
        dated = xs[:len(xs) - len(tail)]
        kept = dated[len(dated) - (CHART_BARS - 1 - len(tail)):]
        older = f"{len(dated) - len(kept)} older {'builds' if by_build else 'weeks'}"
        xs = [older, *kept, *tail]
    series = []
    for r in top:
        counts = dict.fromkeys(xs, 0)
        for d in r.dumps:
            x = where(d)
            counts[x if x in counts else older] += 1
        series.append((r.key if r.group == "signature" else f"bucket {r.key}", [counts[x] for x in xs]))
    return ("build" if by_build else "week"), xs, series


def render_chart_svg(axis: str, xs: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """A stacked bar chart of dumps per build (or week), one colour per signature or bucket, as an inline
    SVG element. Needs matplotlib (ImportError without it). Text is drawn as paths (no font is
    referenced) and read literally (no mathtext), and the SVG carries no date, so a report of the same
    history is the same file."""
    import io

    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context({"svg.fonttype": "path", "text.parse_math": False, "svg.hashsalt": "dumpscope",
                                "font.size": 9}):
        fig = Figure(figsize=(10, 4.2), layout="constrained")
        ax = fig.add_subplot()
        bottom = [0] * len(xs)
        positions = list(range(len(xs)))
        for label, counts in series:
            ax.bar(positions, counts, bottom=bottom, label=_short(label, 40))
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_xticks(positions, [_short(x, 28) for x in xs], rotation=30, ha="right")
        ax.set_ylabel("dumps")
        ax.set_xlabel("platform build" if axis == "build" else "week first seen (ISO)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # dumps are counted in whole numbers
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # beside, not over, the bars
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # inline: without the XML declaration and DOCTYPE


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def _chart_section(rows: Sequence[BucketHistory]) -> tuple[str, str]:
    if not rows:
        return "Crashes over time", '<p class="note">No dumps in the history yet.</p>'
    axis, xs, series = chart_series(rows)
    title = f"Dumps per {'platform build' if axis == 'build' else 'week'}, largest signatures and buckets"
    try:
        svg = render_chart_svg(axis, xs, series)
    except ImportError:
        return title, (f'<p class="note" id="no-chart">Charts need matplotlib: <code>{_e(_INSTALL_HINT)}</code>. '
                       "The same counts as a table:</p>" + _chart_table(xs, series))
    return title, f'<figure id="chart-figure">{svg}</figure>'


def _chart_table(xs: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    head = "".join(f"<th>{_e(x)}</th>" for x in xs)
    body = "".join(f"<tr><td>{_e(label)}</td>" + "".join(f'<td class="num">{c}</td>' for c in counts) + "</tr>"
                   for label, counts in series)
    return f'<table id="chart-table"><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>'


# --- the table ----------------------------------------------------------------------------------------


def _row(r: BucketHistory, v: Verdict | None, notes: Sequence[BucketNote]) -> str:
    order = [c.value for c in Confidence]
    conf_rank = len(order) - order.index(r.confidence) if r.confidence in order else 0
    builds = _e(r.first_build) if r.first_build == r.last_build else f"{_e(r.first_build)} &ndash; {_e(r.last_build)}"
    fix = ", ".join(f"{_e(status)} {n}" for status, n in r.fix) or "&ndash;"
    key = _e(r.key) if r.group == "signature" else f"bucket <code>{_e(r.key)}</code>"
    cells = [
        f'<td data-value="{len(STATUS_ORDER) - STATUS_ORDER.index(r.status)}">'
        f'<span class="status status-{r.status.value}">{r.status.value}</span></td>',
        f"<td>{key}</td>",
        f"<td><details><summary>{_e(r.title)}</summary>{_verdict_html(r, v)}</details></td>",
        f'<td data-value="{conf_rank}">{_e(r.confidence) or "&ndash;"}</td>',
        f'<td class="num" data-value="{r.count}">{r.count}</td>',
        f'<td class="num" data-value="{len(r.hosts)}" title="{_e(" ".join(r.hosts))}">{len(r.hosts)}</td>',
        f'<td data-value="{_e(r.first_seen)}">{_e(when_text(r.first_seen))}</td>',
        f'<td data-value="{_e(r.last_seen)}">{_e(when_text(r.last_seen))}</td>',
        f"<td>{builds if r.first_build else '&ndash;'}</td>",
        f"<td>{fix}</td>",
        f"<td>{_links(r, v, [n for n in notes if n.key == r.key or n.key in r.buckets])}</td>",
    ]
    return f'<tr class="bucket" id="row-{_e(r.group)}-{_e(r.key)}">' + "".join(cells) + "</tr>"


def _links(r: BucketHistory, v: Verdict | None, notes: Sequence[BucketNote]) -> str:
    # the signature's bug references and the site's tickets as links, and the newest dump's ticket
    # body (Markdown) to paste
    bugs: tuple[str, ...] = v.bugs if v is not None else ()
    if not bugs and r.signature:
        from dumpscope.signatures import signature_set

        sig = signature_set().get(r.signature)
        bugs = sig.bugs if sig is not None else ()
    out = []
    for bug in bugs:
        for pattern, url in _BUG_LINKS:
            m = pattern.search(bug)
            if m:
                out.append(f'<a href="{_e(url.format(m.group(1)))}" rel="noreferrer">{_e(bug)}</a>')
                break
        else:
            out.append(_e(bug))
    for n in notes:
        what = [f'<a href="{_e(n.ticket)}" rel="noreferrer">ticket</a>' if n.ticket else "",
                f"owner {_e(n.owner)}" if n.owner else "", f"fixed in {_e(n.fixed)}" if n.fixed else "",
                _e(n.note)]
        out.append("site note: " + "; ".join(w for w in what if w))
    if v is not None:
        from dumpscope.ticket import render_markdown

        out.append(f"<details><summary>ticket body</summary><pre>{_e(render_markdown(v))}</pre></details>")
    return "<br>".join(out) or "&ndash;"


def _verdict_html(r: BucketHistory, v: Verdict | None) -> str:
    # The newest dump's verdict, as `triage` explains it: what, where, the events and the evidence.
    if v is None:
        return (f'<p class="meta">Newest dump: <code>{_e(r.example)}</code>. Its verdict is no longer in the '
                "database's cache (run triage --db on it again to see the evidence).</p>")
    items: list[tuple[str, str]] = [("newest dump", f"<code>{_e(v.source)}</code>")]
    if v.panic_message:
        items.append(("panic message", f"<pre>{_e(v.panic_message)}</pre>"))
    items.append(("host and build", f"{_e(v.host or '?')} &middot; {_e(v.platform or '?')}"))
    if v.panic_thread:
        items.append(("panic thread", _e(v.panic_thread)))
    if v.signature:
        conf = v.confidence.value if v.confidence else "none"
        items.append(("signature", f"{_e(v.signature)} ({_e(conf)})"))
    if v.replay:
        items.append(("replay", _e(v.replay)))
    if v.events:
        steps = "".join(f"<li>{_e(event_text(step))}</li>" for step in v.events)
        items.append(("sequence of events", f"<ol>{steps}</ol>"))
    if v.evidence:
        lis = []
        for ev in v.evidence:
            mark = '<span class="holds">+</span>' if ev.holds else '<span class="contradicts">&minus;</span>'
            detail = f": <code>{_e(ev.detail)}</code>" if ev.detail else ""
            where = f'<span class="meta">({_e(lines_label(ev.lines))})</span>'
            lis.append(f"<li>{mark} {_e(ev.clause)} {where}{detail}</li>")
        items.append(("evidence", f"<ul>{''.join(lis)}</ul>"))
    if v.stack:
        lines = "\n".join(f"{f.line:>6} | {escape(f.text)}" for f in v.stack)
        items.append(("panic stack (transcript lines)", f"<pre>{html.escape(lines)}</pre>"))
    if v.fix is not None:
        refs = "".join(f"<li>{_e(ref)}</li>" for ref in v.fix.references)
        items.append(("fix", f"{_e(v.fix.status.value)}: {_e(v.fix.detail)}<ul>{refs}</ul>"))
    if v.hints:
        cmds = "".join(f"<li><code>{_e(h.command)}</code> {_e(h.settles)}</li>" for h in v.hints)
        items.append(("mdb commands to run next", f"<ul>{cmds}</ul>"))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{val}</dd>" for k, val in items)
    return f'<dl class="verdict">{body}</dl>'
