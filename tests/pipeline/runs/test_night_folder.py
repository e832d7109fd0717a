"""A night's folder: a run's outputs kept in its own run folder (hard links that survive a later run
replacing the work files), published through one atomic ``current`` link, older plain outputs moved aside,
one run of a night at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone

import pytest

from pipeline.io import write_text
from pipeline.runs import PUBLISHED, NightFolder, NightLocked, run_name


def _write_outputs(folder: NightFolder, text: str) -> list:
    write_text(folder.work / "stamps.h5", f"store {text}")
    write_text(folder.work / "report" / "index.html", f"report {text}")
    return [folder.work / "stamps.h5", folder.work / "report"]


def test_runs_are_kept_apart_and_published_through_current(tmp_path):
    night = NightFolder(tmp_path / "2026-03-02")
    (night.root).mkdir()
    (night.root / "scored.parquet").write_text("an older layout's catalog")  # moved aside, never lost
    first = night.new_run(run_name("0123456789abcdef", datetime(2026, 3, 2, 9, tzinfo=timezone.utc)))
    assert first.name == "20260302T090000Z-01234567"
    kept = night.keep(first, _write_outputs(night, "one"))
    assert kept == [first / "stamps.h5", first / "report"]
    night.publish(first)
    assert night.current_run() == first.resolve()
    assert (night.root / "stamps.h5").read_text() == "store one"
    assert (night.root / "report" / "index.html").read_text() == "report one"
    assert all((night.root / name).is_symlink() for name in PUBLISHED)
    (before,) = night.runs.glob("before-*")
    assert (before / "scored.parquet").read_text() == "an older layout's catalog"

    second = night.new_run(first.name)  # the same name again: a suffix, never the same folder
    assert second.name == first.name + "-2"
    night.keep(second, _write_outputs(night, "two"))  # replaces the work files by renames
    assert (first / "stamps.h5").read_text() == "store one"  # the first run keeps its bytes
    assert (night.root / "stamps.h5").read_text() == "store one"  # not published: still the first
    night.publish(second)
    assert (night.root / "stamps.h5").read_text() == "store two"
    assert os.readlink(night.current) == os.path.join("runs", second.name)


def test_one_run_of_a_night_at_a_time(tmp_path):
    night = NightFolder(tmp_path / "n")
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from pipeline.runs import NightFolder, NightLocked
        try:
            with NightFolder(Path({str(night.root)!r})).lock("other"):
                print("got it")
        except NightLocked as err:
            print("locked:", err)
        """
    )
    with night.lock("night 2026-03-02 run abc"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.startswith("locked:") and "night 2026-03-02 run abc" in out, out
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "got it"
    with pytest.raises(NightLocked), night.lock(), NightFolder(night.root).lock():
        pass  # a second open file description of the same lock in one process is refused too
