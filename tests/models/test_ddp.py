"""Lightning DDP on CPU (gloo, 2 processes) through ``python -m models.train``: the ranks agree on the
split, shard the training batches, and rank 0 writes one checkpoint and a card with a one-process run's keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch.distributed as dist

from models.data import BlockBatchSampler
from models.train import train_model
from tests.models.test_morphology import _write_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[2]
BATCH = 4


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch without gloo")
def test_ddp_on_two_cpu_processes_agrees_on_the_split_and_writes_one_card(tmp_path):
    store = _write_store(tmp_path / "gz.h5", n=40, size=69, seed=0)
    one = train_model(
        "morphology", [store], tmp_path / "one", preset="small", max_epochs=1, batch_size=BATCH, seed=3
    )
    out = tmp_path / "ddp"
    argv = [sys.executable, "-m", "models.train", "morphology", "--store", str(store), "--out", str(out)]
    argv += ["--preset", "small", "--strategy", "ddp", "--devices", "2", "--accelerator", "cpu"]
    argv += ["--max-epochs", "1", "--batch-size", str(BATCH), "--seed", "3", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{") :])  # printed once, by rank 0
    assert proc.stdout.count('"checkpoint"') == 1

    assert sorted(p.name for p in out.glob("*.ckpt")) == ["model.ckpt"]
    assert not list(out.glob(".*partial*"))  # no half-written splits, checkpoint or card left behind
    card = json.loads((out / "model_card.json").read_text())
    one_card = json.loads(Path(one.model_card).read_text())
    assert set(card) == set(one_card)
    assert set(card["metrics"]) == set(one_card["metrics"])  # val and test metrics on rank 0
    assert card["data_config"] == one_card["data_config"] and card["seed"] == 3

    splits = pd.read_csv(out / "splits.csv", dtype=str)
    assert splits.equals(pd.read_csv(tmp_path / "one" / "splits.csv", dtype=str))  # the seeded split
    n_batches = -(-int((splits["split"] == "train").sum()) // BATCH)
    assert one.steps == n_batches  # one epoch in one process: every batch is a step
    assert card["steps"] == result["steps"] == n_batches // 2  # two ranks: each takes half the batches
    assert card["epochs"] == one_card["epochs"]


def test_each_rank_takes_every_other_batch_of_the_one_process_order_and_as_many_as_the_other():
    indices = np.arange(0, 46, dtype=np.int64)  # 46 stamps in batches of 4: 12 batches, the last of 2
    blocks = indices // 5
    one = list(BlockBatchSampler(indices, blocks, 4, window=10, seed=5))
    ranks = [
        list(BlockBatchSampler(indices, blocks, 4, window=10, seed=5, num_replicas=5, rank=r))
        for r in range(5)
    ]
    assert len(one) == 12 and [len(r) for r in ranks] == [2] * 5  # 12 // 5: two batches are left out
    assert all(len(BlockBatchSampler(indices, blocks, 4, num_replicas=5, rank=r)) == 2 for r in range(5))
    taken = sorted((n, tuple(b)) for r in ranks for _, n, b in r)
    assert taken == [(n, tuple(b)) for _, n, b in one[:10]]  # the same batches, numbers and order
    assert all(n % 5 == r for r, batches in enumerate(ranks) for _, n, _ in batches)
    with pytest.raises(ValueError, match="rank must be in"):
        BlockBatchSampler(indices, blocks, 4, num_replicas=2, rank=2)
