"""Whole-run failures of the ``stampflow`` commands: one ``error:`` line and the documented exit code, no
traceback without ``-v`` (the flow run still ends Failed in Prefect with the message), an input that cannot
be read is never called an output error, a file name that is not UTF-8 on the command line is a reject, and
a full disk (RLIMIT_FSIZE) is exit 3 with nothing left behind."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL

from flows.cli import main
from pipeline.store import open_store
from tests.conftest import DATA, REPO, ZTF_TRIPLETS

KAGGLE = DATA / "galaxy_zoo" / "kaggle_training_solutions_sample.csv"


def start_stampflow(*args: str, max_file_bytes: int | None = None) -> subprocess.Popen:
    """The real command in a subprocess, on the session's Prefect server; ``max_file_bytes``: the largest
    file it may write (RLIMIT_FSIZE, with SIGXFSZ ignored so that a write fails with EFBIG, as on a full
    disk)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit if max_file_bytes else None,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    """(exit code, stderr) of a started command."""
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def last_flow_run(flow_name: str, timeout: float = 30.0):
    """The latest run of the flow ``flow_name`` once it is final."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
            if runs and runs[0].state is not None and runs[0].state.is_final():
                return runs[0]
            time.sleep(0.3)
    raise AssertionError(f"no final run of {flow_name!r}")


def test_whole_run_errors_are_one_line_and_tracebacks_need_v(tmp_path):
    missing = tmp_path / "missing_columns.csv"
    pd.read_csv(KAGGLE).iloc[:, :10].to_csv(missing, index=False)
    (tmp_path / "images").mkdir()
    gz = ["ingest-galaxy-zoo", str(missing), str(tmp_path / "images"), "--format", "kaggle"]
    score = ["score", "--model", "/nonexist", "--store", "/nonexist", "--out", str(tmp_path / "x.parquet")]
    quiet_gz = start_stampflow(*gz, "-o", str(tmp_path / "gz" / "stamps.h5"))
    verbose_score = start_stampflow("-v", *score)

    code, err = finish(quiet_gz)
    assert code == 1, err
    assert "Traceback" not in err and "Kaggle answer column(s) missing" in error_lines(err)[0]
    assert len(error_lines(err)) == 1
    code, err = finish(verbose_score)
    assert code == 2 and error_lines(err) == ["error: no stamp store at /nonexist"], err
    assert "Traceback (most recent call last)" in err  # -v: the traceback is welcome
    # the flow run still ends Failed in Prefect, with the message
    run = last_flow_run("score")
    assert run.state.is_failed() and "no stamp store at /nonexist" in run.state.message


def test_an_input_that_cannot_be_read_is_not_an_output_error(tmp_path, capsys):
    folder = tmp_path / "triplets"
    folder.mkdir()
    shutil.copy(ZTF_TRIPLETS / "472263571115090000.fits.gz", folder)
    (folder / "labels.csv").mkdir()  # an OSError (IsADirectoryError) on an input
    out = tmp_path / "run" / "stamps.h5"
    assert main(["ingest-labelled", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "labels.csv" in error_lines(err)[0] and "cannot write" not in err
    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        (folder / "labels.csv").rmdir()
        (folder / "labels.csv").write_text("id,real\n472263571115090000,1\n")
        (folder / "labels.csv").chmod(0)
        assert main(["ingest-labelled", str(folder), "--out", str(out)]) == 1
        assert "cannot write" not in capsys.readouterr().err
    # an output folder that is a file: exit 3, naming the output and the problem
    (tmp_path / "afile").write_text("")
    good = str(ZTF_TRIPLETS / "472263571115090000.fits.gz")
    assert main(["ingest", good, "--out", str(tmp_path / "afile" / "s.h5")]) == 3
    assert f"error: cannot write {tmp_path / 'afile' / 's.h5'}: {tmp_path / 'afile'} is not a folder" in (
        capsys.readouterr().err
    )


def test_a_name_that_is_not_utf8_on_the_command_line_is_a_reject(tmp_path, capsys):
    bad = tmp_path / os.fsdecode(b"bad_\xff\xfe.fits.gz")
    good = tmp_path / "good.fits.gz"
    shutil.copy(ZTF_TRIPLETS / "472263571115090000.fits.gz", good)
    shutil.copy(good, bad)
    out = tmp_path / "run" / "stamps.h5"
    assert main(["ingest", str(bad), str(good), "--out", str(out)]) == 0
    assert "inputs=2 ingested=1 rejected=1 (reasons: bad_name=1)" in capsys.readouterr().out
    rejects = pd.read_csv(out.with_name("rejects.csv"))
    assert list(rejects["reason"]) == ["bad_name"] and rejects["source"][0].endswith(r"bad_\xff\xfe.fits.gz")
    with open_store(out) as store:
        assert list(store.catalog()["source"]) == [str(good)]


def test_disk_full_during_ingest_exits_3_and_leaves_nothing(tmp_path):
    out = tmp_path / "run" / "stamps.h5"
    # 97 triplets (~3.6 MB of stamps) into files of at most 200 kB
    proc = start_stampflow("ingest", str(ZTF_TRIPLETS), "--out", str(out), max_file_bytes=200_000)
    code, err = finish(proc)
    assert code == 3, err[-3000:]
    assert error_lines(err) == [f"error: cannot write {out}: File too large"]
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not out.exists() and not list(out.parent.glob(".stamps.h5.partial-*"))


def test_no_space_left_on_a_small_tmpfs_exits_3(tmp_path, capsys):
    """The same on a real full disk: a 1 MiB tmpfs (only where this runs as root and may mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount")
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("needs root and mount -t tmpfs")
    try:
        out = disk / "run" / "stamps.h5"
        assert main(["ingest", str(ZTF_TRIPLETS), "--out", str(out)]) == 3
        assert f"error: cannot write {out}: No space left on device" in capsys.readouterr().err
        assert not out.exists() and not list(out.parent.glob(".stamps.h5.partial-*"))
    finally:
        subprocess.run(["umount", str(disk)], check=True)


WRITE_CATALOG_AND_RECORDS = """
import numpy as np
from pipeline.alerts.broker import BrokerWriter, classification_records, utc_datetime
from pipeline.io import OutputError, ParquetTableWriter
folder = {folder!r}
n = 20_000
scored = {{"objectId": ["ZTF18aaaaaaa"] * n, "candid": np.arange(n), "p_real": np.full(n, 0.5),
          "p_bogus": np.full(n, 0.5)}}
for name, writer in (("catalog", lambda: ParquetTableWriter(folder + "/scored.parquet")),
                     ("records", lambda: BrokerWriter(folder))):
    try:
        with writer() as w:
            if name == "catalog":
                w.write({{"x": np.random.default_rng(0).random(200_000)}})
            else:
                w.write(classification_records(scored, ["real", "bogus"], "m", "1", utc_datetime()))
    except OutputError as err:
        print(name, err)
"""


def test_disk_full_while_scoring_leaves_no_catalog_and_no_records(tmp_path):
    """The writers of ``stampflow score`` (Parquet catalog) and ``alerts score`` (broker records) on a full
    disk: an OutputError naming the file, and nothing left."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITE_CATALOG_AND_RECORDS.format(folder=str(tmp_path))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: (
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
            resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)),
        ),
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        f"catalog cannot write {tmp_path / 'scored.parquet'}: File too large",
        f"records cannot write {tmp_path / 'classifications.avro'}: File too large",
    ]
    assert list(tmp_path.iterdir()) == []
