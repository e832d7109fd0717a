"""The ``ztf_fast`` real-bogus preset: the central 31x31 of 63x63 ZTF cutouts, cropped in the model's own
input step, through a lighter conv stack (speed: benchmarks/realbogus_speed.py).

Training runs a real Lightning fit of one step on a tiny simulated ZTF set; the checkpoint is loaded back
with ``weights_only=True`` and scored through :class:`pipeline.scoring.Scorer` on raw 63x63 stamps.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.checkpoints import load_checkpoint
from models.realbogus import RealBogusModel
from models.realbogus_config import RealBogusConfig
from models.train import train_model
from pipeline.ingest import ingest_labelled_triplets
from pipeline.prep import center_crop, ztf_normalize
from pipeline.scoring import Scorer, StampBatch
from pipeline.simulate.transients import simulate_transients
from pipeline.store import open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ztf_store(tmp_path_factory):
    """A labelled store of 24 simulated ZTF triplets (3x63x63 science, template, difference)."""
    root = tmp_path_factory.mktemp("ztf_fast")
    labels = simulate_transients(24, root / "sim", survey="ztf", seed=3, workers=1)
    assert ingest_labelled_triplets(root / "sim", root / "ztf.h5").n_ingested == len(labels) == 24
    return root / "ztf.h5"


def _gflop_per_stamp(model: RealBogusModel, side: int = 63) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 3, side, side))
    return counter.get_total_flops() / 1e9


def test_ztf_fast_sees_the_central_31x31_and_costs_a_thirtieth_of_ztf():
    torch.manual_seed(0)
    fast, ztf = RealBogusModel("ztf_fast").eval(), RealBogusModel("ztf").eval()
    x = torch.rand(5, 3, 63, 63) * 100
    x[:, :, 0, :] = float("nan")  # outside the crop: must not matter
    net_input = fast.net.normalise(x)
    assert net_input.shape == (5, 3, 31, 31)
    assert torch.equal(net_input, ztf_normalize(center_crop(x, 31), size=31))
    assert torch.allclose(fast.net.normalise(net_input), net_input, atol=1e-6)  # data module, then forward
    assert _gflop_per_stamp(fast) < 0.05 < 1.0 < _gflop_per_stamp(ztf)
    assert fast.hparams["crop"] is True and "crop" not in ztf.hparams  # ztf's checkpoints keep their layout
    card = fast.card_fields()
    assert card["architecture"] == "ztf_fast" and card["input_size"] == 31
    assert card["normalisation_description"].startswith("central 31x31 pixels")
    assert card["parameters"] < ztf.card_fields()["parameters"] / 5


def test_without_the_crop_a_stamp_larger_than_the_input_is_refused():
    net = RealBogusModel("ztf_fast", crop=False).net
    with pytest.raises(ValueError, match=r"larger than 31x31"):
        net.normalise(torch.rand(2, 3, 63, 63))


def test_ztf_fast_trains_one_step_and_its_checkpoint_scores_raw_63x63_stamps(ztf_store, tmp_path):
    result = train_model("realbogus", [ztf_store], tmp_path / "m", preset="ztf_fast", max_steps=1, seed=1)
    assert result.steps == 1
    card = json.loads(open(result.model_card).read())
    assert card["architecture"] == "ztf_fast" and card["input_size"] == 31
    assert card["stamp_shape"] == [63, 63] and card["channels"] == ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
    module, loaded = load_checkpoint(result.checkpoint)  # torch.load(weights_only=True)
    assert loaded["weights_sha256"] == card["weights_sha256"] and module.config.crop
    assert module.config == RealBogusConfig.from_preset("ztf_fast")
    with open_store(ztf_store) as store:
        raw = store.stamps(slice(0, 8))
        mask = np.zeros(raw.shape, bool)
        catalog = store.catalog().iloc[:8].reset_index(drop=True)
    with torch.no_grad():
        expected = module.probabilities(torch.from_numpy(raw))[:, 1].numpy()
    cols = Scorer(module, loaded).columns(StampBatch(raw, mask, catalog))
    np.testing.assert_allclose(cols["rb"], expected, atol=1e-4)
