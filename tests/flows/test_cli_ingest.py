"""The ``stampflow`` command line for ingest/cutout: exit codes, printed counts, and a SIGKILL mid-ingest."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from flows.cli import main
from pipeline.store import open_store
from tests.conftest import REPO, ZTF_TRIPLETS, write_fits


def test_help_lists_and_explains_commands():
    env = {**os.environ, "COLUMNS": "200"}
    top = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert (
        top.returncode == 0 and "ingest FITS stamp files or folders" in top.stdout and "cutout" in top.stdout
    )
    sub = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert "pad smaller ones with masked pixels" in sub.stdout and "--header-keys" in sub.stdout


def test_ingest_prints_counts_and_exit_codes(tmp_path, capsys):
    shutil.copy(ZTF_TRIPLETS / "472263571115090000.fits.gz", tmp_path)
    shutil.copy(ZTF_TRIPLETS / "396522680015040001.fits.gz", tmp_path)  # 41x63: rejected by default
    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  =   garbage")
    out = tmp_path / "run" / "stamps.h5"
    assert main(["ingest", str(tmp_path), "--out", str(out), "--stamp-size", "63"]) == 0
    printed = capsys.readouterr().out
    assert "inputs=3 ingested=1 rejected=2" in printed
    assert len(pd.read_csv(out.with_name("rejects.csv"))) == 2
    # nothing ingestable: exit 1, rejects still written
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.fits").write_text("nope")
    assert main(["ingest", str(only_bad), "--out", str(tmp_path / "none" / "stamps.h5")]) == 1
    assert not (tmp_path / "none" / "stamps.h5").exists()
    assert len(pd.read_csv(tmp_path / "none" / "rejects.csv")) == 1
    # output cannot be written (its folder is a file): exit 3
    (tmp_path / "afile").write_text("")
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "472263571115090000.fits.gz"),
                "--out",
                str(tmp_path / "afile" / "s.h5"),
            ]
        )
        == 3
    )


def test_cutout_command(tmp_path, capsys):
    fits_path = tmp_path / "img.fits"
    write_fits(fits_path, np.arange(900, dtype=np.float32).reshape(30, 30))
    pd.DataFrame({"id": ["a", "b"], "x": [5, 100], "y": [5, 5]}).to_csv(tmp_path / "c.csv", index=False)
    code = main(
        [
            "cutout",
            str(fits_path),
            str(tmp_path / "c.csv"),
            "--size",
            "7",
            "--x-col",
            "x",
            "--y-col",
            "y",
            "--out",
            str(tmp_path / "s.h5"),
        ]
    )
    assert code == 0 and "inputs=2 ingested=1 rejected=1" in capsys.readouterr().out


def test_sigkill_mid_ingest_never_leaves_a_half_store(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    first = write_fits(
        folder / "s00000.fits", np.random.default_rng(0).normal(size=(3, 48, 48)).astype(np.float32)
    )
    data = first.read_bytes()
    for i in range(1, 4000):
        (folder / f"s{i:05d}.fits").write_bytes(data)
    out = tmp_path / "run" / "stamps.h5"
    code = (
        "from pipeline.ingest import FitsSource, ingest_source; "
        f"ingest_source(FitsSource(inputs=[{str(folder)!r}]), {str(out)!r}, compression='gzip', chunk_rows=16)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    partial = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        partial = next(out.parent.glob(".stamps.h5.partial-*"), None) if out.parent.exists() else None
        if partial is not None:
            break
        time.sleep(0.005)
    assert partial is not None, "the ingest finished before it could be killed; make the input larger"
    time.sleep(0.2)  # let it write a few chunks
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the final name is absent (or, if the rename happened first, a valid store)
    if out.exists():
        with open_store(out) as store:
            assert store.n == 4000
    else:
        assert partial.exists()  # the half-written file stays under its hidden temporary name
    # a rerun completes, and clears the dead writer's partial file
    from pipeline.ingest import FitsSource, ingest_source

    report = ingest_source(FitsSource(inputs=[folder]), out)
    assert report.n_ingested == 4000
    assert not list(out.parent.glob(".stamps.h5.partial-*"))
    with open_store(out) as store:
        assert store.n == 4000


def test_ingest_labelled_triplets_counts_and_labels(tmp_path, capsys):
    from pipeline.simulate.transients import simulate_transients

    sim = tmp_path / "sim"
    labels = simulate_transients(6, sim, survey="hits", seed=3, workers=1)
    first = sorted(sim.glob("*.fits.gz"))[0]
    first.unlink()  # a label row without its file
    shutil.copy(sorted(sim.glob("*.fits.gz"))[0], sim / "unlabelled.fits.gz")  # a file without a label row
    out = tmp_path / "store" / "stamps.h5"
    assert main(["ingest-labelled", str(sim), "--out", str(out)]) == 0
    assert "inputs=7 ingested=5 rejected=2" in capsys.readouterr().out
    with open_store(out) as store:
        ids = store.catalog()["object_id"].tolist()
        truth = labels.set_index(labels["id"].astype(str))["real"]
        assert store.labels("real").tolist() == [int(truth[i]) for i in ids]
        assert store.channels[:3] == ["TEMPLATE", "SCIENCE", "DIFFERENCE"]
    reasons = sorted(pd.read_csv(out.with_name("rejects.csv"))["reason"])
    assert reasons == ["no_label", "unreadable"]
