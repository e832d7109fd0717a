"""Scale-out: the score flow on a 2-worker local Dask cluster writes exactly the catalog of the thread-pool
run, through the flow and through ``stampflow score --dask-address``."""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.table import Table
from prefect_dask import DaskTaskRunner

from flows.cli import main as cli_main
from flows.runners import RunnerOptions, make_task_runner
from flows.score_flow import score_flow


def _same_tables(a: Table, b: Table) -> None:
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        assert np.array_equal(np.asarray(a[name]), np.asarray(b[name])), name
    assert a.meta == b.meta


@pytest.mark.slow
def test_dask_scoring_equals_thread_pool_scoring(tiny_rb_model, tiny_rb_store, tmp_path, capsys):
    from distributed import LocalCluster

    # PyTorch in both runs (no per-process ONNX export: the test is about where tasks run, and is quicker)
    common = {
        "model": tiny_rb_model,
        "store": tiny_rb_store,
        "chunk_rows": 10,
        "batch_size": 8,
        "backend": "eager",
    }
    threads = score_flow(out=tmp_path / "threads" / "scored.parquet", **common)
    me = f":{os.getpid()}"
    assert threads["n_scored"] == 40 and all(w.endswith(me) for w in threads["workers"])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        dask = score_flow(
            out=tmp_path / "dask" / "scored.parquet",
            runner=RunnerOptions(task_runner="dask", dask_address=address),
            **common,
        )
        out = tmp_path / "cli" / "scored.parquet"
        argv = ["score", "--model", str(tiny_rb_model), "--store", str(tiny_rb_store), "--out", str(out)]
        argv += ["--chunk-rows", "10", "--batch-size", "8", "--backend", "eager", "--dask-address", address]
        assert cli_main(argv) == 0
    assert dask["n_scored"] == 40
    assert dask["workers"] and not any(w.endswith(me) for w in dask["workers"])  # Dask worker processes
    _same_tables(Table.read(threads["catalog"]), Table.read(dask["catalog"]))
    assert '"n_scored": 40' in capsys.readouterr().out
    _same_tables(Table.read(threads["catalog"]), Table.read(out))


def test_task_runner_options():
    local = make_task_runner(RunnerOptions(task_runner="dask", dask_workers=2))
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 2
    assert make_task_runner(RunnerOptions()).__class__.__name__ == "ThreadPoolTaskRunner"
    with pytest.raises(ValueError, match="dask_address"):
        RunnerOptions(dask_address="tcp://127.0.0.1:8786")
