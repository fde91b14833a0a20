"""The command table itself: every command has help and a README example; replay/explore/signatures work."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, TRANSCRIPTS
from dumpscope.cli import app, main

COMMANDS = sorted([c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
                  + [g.name or g.typer_instance.info.name for g in app.registered_groups])  # type: ignore[misc, union-attr]
README = (ROOT / "README.md").read_text()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_the_commands() -> None:
    assert COMMANDS == ["explore", "history", "parse", "replay", "report", "signatures", "triage"]


@pytest.mark.parametrize("name", COMMANDS + ["signatures check"])
def test_each_command_has_help_and_a_readme_example(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*name.split(), "--help"], capsys)
    assert code == 0
    assert "Example:" in out
    # dcmd style: a short lowercase description line
    first = next(line for line in out.splitlines()[1:] if line.strip())
    assert first.strip()[0].islower()
    assert re.search(rf"dumpscope {name}\b", README), f"README has no example of `dumpscope {name}`"


def test_replay_json_confirms_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["replay", str(TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt"), "--format", "json"],
                       capsys)
    doc = json.loads(out)
    assert code == 0 and doc["confirmed"] is True
    assert doc["buggy"]["outcome"] == "panic"
    assert doc["buggy"]["panic_message"] == "attempt to reprogram non-existent cyclic"
    assert doc["fixed"]["outcome"] == "ok" and doc["fixed"]["panic_message"] is None
    assert any("cyclic_remove_xcall" in step for step in doc["buggy"]["schedule"])


def test_replay_of_a_dump_without_a_remover_does_not_confirm(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["replay", str(TRANSCRIPTS / "seed-12476-vatpit-status-and-dollar-c.txt"), "-f", "json"],
                       capsys)
    doc = json.loads(out)
    assert code == 0 and doc["confirmed"] is False


def test_replay_of_another_panic_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["replay", str(TRANSCRIPTS / "smartos-live-574-fss-badtrap-mdb-e-wrapped.txt")], capsys)
    assert code == 1 and out == "" and "no illumos-12476 panic stack" in err


@pytest.mark.parametrize("fixed,panic", [(False, 12), (True, 0)])
def test_explore_json(fixed: bool, panic: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["explore", "--format", "json"] + (["--fixed"] if fixed else []), capsys)
    doc = json.loads(out)
    assert code == 0
    assert {"schedules", "ok", "panic", "hang", "shortest_panic"} <= set(doc)
    assert doc["panic"] == panic and doc["hang"] == 0
    assert bool(doc["shortest_panic"]) is (panic > 0)


def test_signatures_lists_12476(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["signatures", "--format", "json"], capsys)
    ids = [json.loads(line)["id"] for line in out.splitlines()]
    assert code == 0 and "illumos-12476" in ids and len(ids) == len(set(ids))


def test_readme_quick_start_names_a_real_fixture() -> None:
    for path in re.findall(r"dumpscope \w+ (fixtures/\S+\.txt)", README):
        assert (ROOT / path).is_file(), path


_SEED_WITH_REMOVER = str(TRANSCRIPTS / "seed-12476-vhpet-with-remover.txt")


@pytest.mark.parametrize(("args", "code"), [
    ([_SEED_WITH_REMOVER, "--format", "json"], 0), ([_SEED_WITH_REMOVER], 0), (["/nonexistent/x.txt"], 1),
])
def test_parse_leaves_the_cyclic_collector_as_it_found_it(args: list[str], code: int,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # parse turns the collector off while it builds and prints the model; an in-process caller gets
    # it back on, whether the command succeeded or failed
    import gc

    assert gc.isenabled()
    assert run(["parse", *args], capsys)[0] == code
    assert gc.isenabled()
