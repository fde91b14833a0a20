"""dumpscope report (issue 16): one self-contained HTML file, checked in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _triage_samples import assertion, other, positive

from dumpscope.cli import main

# A transcript that puts markup and script in front of the report: the panic message and the host.
HOSTILE_MESSAGE = ("BAD TRAP: type=e (#pf Page fault) <script>document.title='pwned'</script>"
                   "<img src=x onerror=\"document.title='pwned'\"> occurred in module \"zfs\" due to a NULL "
                   "pointer dereference")
FIXED_BUILD = "joyent_20200601T000000Z"  # after OS-6684 (2019-07-18): a 12476 panic here is a regression


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ex:
        main(args)
    out, err = capsys.readouterr()
    return int(ex.value.code or 0), out, err


@pytest.fixture
def fleet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A history of two nightly runs over a fleet's crash directory; returns the database.

    By hand: run 1 sees the 12476 panic on two hosts (2018 build), the zfs NULL dereference on two
    hosts (2015 build) and a hostile transcript (a zfs trap in another function: its own bucket); run 2
    adds the 12476 panic on a build with the fix (regressed), the zfs crash again on a third host, and
    a new assertion in vn_rele. So 4 rows: illumos-12476 regressed (3 dumps), the zfs bucket recurring
    (3), the vn_rele bucket new (1), the hostile bucket recurring (1).
    """
    d = tmp_path / "crash"
    d.mkdir()
    db = tmp_path / "crashes.db"
    (d / "h1.txt").write_text(positive(host="h1"))
    (d / "h2.txt").write_text(positive(host="h2", cpu="ffffff03eb145000"))
    (d / "cn7.txt").write_text(other(host="cn7"))
    (d / "cn8.txt").write_text(other(host="cn8", addr="ffffff0d4b7e9b50"))
    hostile = other(host="<b>evil</b>").replace(
        'BAD TRAP: type=e (#pf Page fault) rp=ffffff00f8e5e6a0 addr=18 occurred in module "zfs" due to a NULL '
        'pointer dereference', HOSTILE_MESSAGE).replace("dbuf_rele_and_unlock+0x1a", "dnode_rele+0x1a")
    (d / "evil.txt").write_text(hostile)
    assert _cli(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)[0] == 0
    (d / "h3.txt").write_text(positive(host="h3").replace("joyent_20180216T202957Z", FIXED_BUILD))
    (d / "cn9.txt").write_text(other(host="cn9", addr="ffffff0d4b7eac60"))
    (d / "cn10.txt").write_text(assertion(host="cn10"))
    assert _cli(["triage", "-f", "csv", "--db", str(db), str(d)], capsys)[0] == 0
    return db


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "headless_shell"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine: install the Debian 'chromium' package (.ci/run does)")


def _browse(page: str, tmp: Path, *args: str) -> tuple[str, str]:
    # Headless Chromium with no network side-traffic and a profile of its own; console messages
    # (script errors, CSP refusals) go to stderr as "CONSOLE" log lines.
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args, page]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def test_report_opens_in_chromium_with_rows_chart_and_no_script_errors(fleet: Path, tmp_path: Path,
                                                                       capsys) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs the report extra: pip install 'dumpscope[report]'")
    report = tmp_path / "report.html"
    rc, out, err = _cli(["report", "--db", str(fleet), "-o", str(report)], capsys)
    assert (rc, out, err) == (0, "", "")
    page = report.as_uri()

    dom, log = _browse(page + "#sort=dumps-asc", tmp_path, "--dump-dom")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []  # no script error, no refused load (the CSP would log one)
    assert 'data-ready="1"' in dom.split(">", 2)[1]  # the report's script ran to its end
    assert len(re.findall(r'<tr class="bucket"', dom)) == 4
    # sorted by the page's fragment (#sort=dumps-asc): fewest dumps first
    counts = [int(c) for c in re.findall(r'<td class="num" data-value="(\d+)">\d+</td><td class="num"', dom)]
    assert counts == [1, 1, 3, 3]
    statuses = re.findall(r'class="status status-(\w+)"', dom)
    assert sorted(statuses) == ["new", "recurring", "recurring", "regressed"]
    assert re.search(r'<figure id="chart-figure"><svg[^>]*>', dom)
    for box, n in (("dumps", 8), ("buckets", 4), ("new", 1), ("regressed", 1)):
        assert re.search(rf'id="summary-{box}"><b>{n}</b>', dom), box
    # the transcript's markup is text in the page, never an element or a script
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "<title>dumpscope crash report" in dom and "pwned</title>" not in dom
    assert not re.search(r"<img\b", dom) and "<b>evil</b>" not in dom and "&lt;b&gt;evil&lt;/b&gt;" in dom
    assert 'href="https://www.illumos.org/issues/12476"' in dom

    shot = tmp_path / "report.png"
    _browse(page, tmp_path, "--hide-scrollbars", "--window-size=1400,1500", f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_report_is_self_contained(fleet: Path, tmp_path: Path, capsys) -> None:
    rc, html, _ = _cli(["report", "--db", str(fleet)], capsys)  # to stdout
    assert rc == 0 and html.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in html  # the page may load nothing, from anywhere
    # nothing to fetch: no linked file, no source, no import; url() only for the SVG's own #ids
    assert not re.search(r"<(link|iframe|object|embed)\b|\bsrc=\"|@import|url\((?!#)|xlink:href=\"(?!#)", html, re.I)
    assert re.findall(r"<script\b[^>]*>", html) == ["<script>"]  # one inline script, allowed by its hash
    assert not re.search(r"@font-face|<img\b", html)


def test_without_matplotlib_the_report_has_tables_and_says_how_to_get_charts(
        fleet: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    rc, html, _ = _cli(["report", "--db", str(fleet)], capsys)
    assert rc == 0
    assert "<svg" not in html
    assert "pip install &#x27;dumpscope[report]&#x27;" in html
    assert '<table id="chart-table">' in html and html.count('<tr class="bucket"') == 4


def test_report_of_a_missing_database_is_an_error(tmp_path: Path, capsys) -> None:
    rc, out, err = _cli(["report", "--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "r.html")], capsys)
    assert (rc, out) == (1, "") and "none.db" in err
    assert os.listdir(tmp_path) == []


def _dumps(builds: list[str | None]) -> list:
    from dumpscope.history import DumpRecord

    return [DumpRecord(f"d{i:05d}", 1, 1, "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", f"x{i}", "h", b,
                       "illumos-12476", "likely", "9bcae4dcf7", "t", None, None) for i, b in enumerate(builds)]


def test_the_chart_keeps_few_bars_however_many_builds() -> None:
    from dumpscope.history import history_rows
    from dumpscope.report import CHART_BARS, chart_series

    # 40 SmartOS builds over 5 months: one bar a month
    builds: list[str | None] = [f"joyent_2020{m:02d}{d:02d}T000000Z" for m in range(1, 6) for d in range(1, 9)]
    axis, xs, series = chart_series(history_rows(_dumps(builds), 1))
    assert (axis, xs) == ("build", ["built 2020-01", "built 2020-02", "built 2020-03", "built 2020-04",
                                    "built 2020-05"])
    assert series == [("illumos-12476", [8, 8, 8, 8, 8])]
    # 300 builds of another naming over 30 releases: the newest keep their bars, the rest are one,
    # and dumps with no build stay last
    builds = [f"omnios-r1510{n:02d}-{k}" for n in range(30) for k in range(10)] + [None] * 3
    axis, xs, series = chart_series(history_rows(_dumps(builds), 1))
    assert len(xs) == CHART_BARS and xs[0] == f"{300 - (CHART_BARS - 2)} older builds"
    assert xs[-1] == "(no build shown)" and xs[-2] == "omnios-r151029-9"
    assert sum(series[0][1]) == 303 and series[0][1][-1] == 3
