"""Deep-HiTS real-bogus model: architecture, rotation invariance, calibration, threshold, training (the metrics
and temperature scaling: tests/models/test_realbogus_metrics.py).

Training tests run real Lightning fits on a tiny simulated HiTS-like set (:mod:`pipeline.simulate.transients.dataset`
through :func:`pipeline.ingest.labelled_triplets.ingest_labelled_triplets`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint
from models.components import RealBogusInput
from models.data import StampDataModule
from models.realbogus import RealBogusModel
from models.realbogus_config import ALERCE_STAMP_CLASSES, RealBogusConfig
from models.train import train_model
from pipeline.ingest import ingest_labelled_triplets
from pipeline.prep import deep_hits_normalize, ztf_normalize
from pipeline.simulate.transients import simulate_transients
from pipeline.store import open_store
from tests.models.helpers import fixed_batch_losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")
METRICS = ("accuracy", "fpr", "fnr", "auc", "ece", "loss")


@pytest.fixture(scope="module")
def hits_store(tmp_path_factory):
    """A labelled store of 80 simulated HiTS-like triplets (4x21x21, half real)."""
    root = tmp_path_factory.mktemp("hits")
    simulate_transients(80, root / "sim", survey="hits", seed=11, workers=1)
    report = ingest_labelled_triplets(root / "sim", root / "hits.h5")
    assert report.n_ingested == 80
    return root / "hits.h5"


def _model(preset: str = "hits", **overrides) -> RealBogusModel:
    torch.manual_seed(0)
    return RealBogusModel(preset, **overrides).eval()


def _rotations_agree(model: RealBogusModel, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = model.probabilities(x)
        return max(
            float((model.probabilities(torch.rot90(x, k, dims=(-2, -1))) - ref).abs().max())
            for k in (1, 2, 3)
        )


# ------------------------------------------------------------------------------------------ architecture
def test_hits_preset_is_the_deep_hits_network():
    model = _model()
    net = model.net
    convs = [m for m in net.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.padding[0]) for c in convs] == [
        (32, 4, 3),
        (32, 3, 1),
        (64, 3, 1),
        (64, 3, 1),
        (64, 3, 1),
    ]
    leaky = [m for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(leaky) == 5 + 2 and all(m.negative_slope == 0.01 for m in leaky)
    assert net.rotation_features == 64 * 6 * 6  # 21 -> 24 -> 24 -> 12 -> 12 -> 6
    linears = [m for m in net.dense if isinstance(m, torch.nn.Linear)] + [net.head]
    assert [(m.in_features, m.out_features) for m in linears] == [(4 * 2304, 64), (64, 64), (64, 2)]
    assert [m.p for m in net.dense if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    cfg = model.config
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.input_channels, cfg.input_size) == (
        "sgd",
        0.04,
        50,
        4,
        21,
    )
    assert isinstance(model.configure_optimizers(), torch.optim.SGD)
    assert model(torch.rand(3, 4, 21, 21)).shape == (3, 2)


def test_ztf_preset_takes_63x63_science_template_difference_with_braai_normalisation():
    model = _model("ztf")
    assert model.net.rotation_features == 64 * 16 * 16  # 63 -> 66 -> 66 -> 33 -> 16
    assert model.card_fields()["expected_channel_names"] == ["science", "template", "difference"]
    x = torch.rand(2, 3, 63, 63) * 500
    assert torch.allclose(model.net.normalise(x), ztf_normalize(x))
    assert model(torch.rand(2, 3, 50, 63)).shape == (2, 2)  # a CCD-edge cutout is padded to 63x63


def test_unknown_presets_and_settings_are_refused():
    with pytest.raises(ValueError, match="unknown realbogus preset"):
        RealBogusModel("decam")
    with pytest.raises(ValueError, match="unknown realbogus settings"):
        RealBogusModel("hits", filters=3)
    with pytest.raises(ValueError, match="merge must be one of"):
        RealBogusModel("hits", merge="sum")
    with pytest.raises(ValueError, match="bogus_class"):
        RealBogusConfig(class_names=("a", "b"))


def test_normalisation_is_idempotent_so_raw_and_normalised_stamps_score_the_same():
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.normal(100, 20, (4, 3, 21, 21)).astype(np.float32))
    norm = RealBogusInput("deep_hits", channels=3, size=21, add_snr=True)
    once = norm(raw)
    assert once.shape == (4, 4, 21, 21) and float(once.min()) == 0.0 and float(once.max()) == 1.0
    assert torch.equal(once, deep_hits_normalize(raw))
    assert torch.allclose(norm(once), once)
    model = _model(input_channels=3, add_snr=True)
    with torch.no_grad():
        assert torch.allclose(model(raw), model(once), atol=1e-6)


# ------------------------------------------------------------------------------------ rotation invariance
@pytest.mark.parametrize(("preset", "size"), [("hits", 21), ("ztf", 63)])
def test_cyclic_pooling_makes_scores_invariant_to_90_degree_rotations(preset, size):
    channels = 4 if preset == "hits" else 3
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(3, channels, size, size)).astype(np.float32))
    assert _rotations_agree(_model(preset, merge="mean"), x) < 1e-5
    if preset == "hits":
        assert _rotations_agree(_model(preset, merge="concat"), x) > 1e-4  # the paper's concatenation is not


def test_more_classes_give_a_real_score_of_one_minus_p_bogus():
    model = _model(class_names=ALERCE_STAMP_CLASSES, merge="mean")
    assert model.bogus_index == 4
    with torch.no_grad():
        probs = model.probabilities(torch.rand(5, 4, 21, 21))
    assert probs.shape == (5, 5) and torch.allclose(probs.sum(1), torch.ones(5))
    assert torch.allclose(model.real_score(probs), probs[:, :4].sum(1), atol=1e-6)
    assert model.card_fields()["output_names"] == list(ALERCE_STAMP_CLASSES)


# ---------------------------------------------------------------------------------------------- training
def test_a_few_optimizer_steps_fit_a_fixed_batch(hits_store):
    with open_store(hits_store) as store:
        x, y = (
            torch.from_numpy(store.stamps(slice(0, 16))),
            torch.from_numpy(store.labels("real")[:16]).long(),
        )
    model = _model(dropout=0.0).train()
    losses = fixed_batch_losses(model, model.configure_optimizers(), F.cross_entropy, x, y, 40)
    assert losses[-1] < 0.5 * losses[0], losses


def test_data_config_feeds_the_data_module_with_normalised_4x21x21_stamps(hits_store):
    model = _model()
    dm = StampDataModule(hits_store, RealBogusModel.TARGET, fractions=(0.8, 0.1, 0.1), **model.data_config())
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape[1:] == (4, 21, 21) and y.dtype == torch.int64
    assert float(x.amin()) == 0.0 and float(x.amax()) == 1.0
    json.dumps(model.card_fields())


@pytest.mark.prefect
def test_training_writes_checkpoint_card_threshold_and_temperature_and_is_reproducible(hits_store, tmp_path):
    kw = {"preset": "hits", "max_epochs": 1, "seed": 5, "model_overrides": {"threshold_fpr": 0.1}}
    a = train_model("realbogus", [hits_store], tmp_path / "a", **kw)
    card = json.loads(open(a.model_card).read())
    for stage in ("val", "test"):
        assert {f"{stage}/{m}" for m in METRICS} <= set(a.metrics)
    assert card["task"] == "realbogus" and card["output_names"] == ["bogus", "real"]
    assert card["channels"] == ["TEMPLATE", "SCIENCE", "DIFFERENCE", "SNR"] and card["input_size"] == 21
    assert card["threshold_fpr"] == 0.1 and card["threshold_val_fpr"] <= 0.1 and 0 <= card["threshold"] <= 1.0
    assert 0.05 < card["temperature"] < 20 and card["nll_val"] <= card["nll_val_before"] + 1e-9
    model, _ = load_checkpoint(a.checkpoint)
    assert float(model.temperature) == pytest.approx(
        card["temperature"]
    )  # calibration travels with the weights
    with open_store(hits_store) as store:
        x = torch.from_numpy(store.stamps(slice(0, 6)))
    with torch.no_grad():
        probs = model.predict_step((x, None), 0)
    assert probs.shape == (6, 2) and torch.allclose(probs.sum(1), torch.ones(6))
    # the CLI with the same seed gives the same numbers
    out = tmp_path / "cli"
    argv = ["train", "realbogus", "--store", str(hits_store), "--preset", "hits", "--max-epochs", "1"]
    assert cli_main([*argv, "--seed", "5", "--out", str(out)]) == 0
    b = json.loads((out / "model_card.json").read_text())
    assert b["metrics"] == a.metrics and b["weights_sha256"] == card["weights_sha256"]
    assert (
        b["temperature"] == card["temperature"] and b["threshold_fpr"] == 0.01
    )  # only the threshold differs
    # stricter FPR, higher threshold; the subprocess may round scores 1 float32 ulp apart from this process
    assert b["threshold"] >= card["threshold"] - 1e-6


# ------------------------------------------------------------------------------------------------ ingest
def test_labelled_ingest_keeps_inputs_equal_to_ingested_plus_rejected(tmp_path):
    sim = tmp_path / "sim"
    labels = simulate_transients(5, sim, survey="hits", seed=2, workers=1)
    (sim / "sim-hits-0000001.fits.gz").unlink()  # a label without a file
    (sim / "stray.fits").write_bytes(
        (sim / "sim-hits-0000002.fits.gz").read_bytes()
    )  # a file without a label
    (sim / "sim-hits-0000003.fits.gz").write_bytes(b"not fits")  # unreadable
    report = ingest_labelled_triplets(sim, tmp_path / "s.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (6, 3, 3)
    assert report.reject_reasons == {"unreadable": 1, "no_label": 1, "not_fits": 1}
    with open_store(tmp_path / "s.h5") as store:
        ids = store.catalog()["object_id"].tolist()
        assert ids == ["sim-hits-0000000", "sim-hits-0000002", "sim-hits-0000004"]
        expected = labels.set_index("id").loc[ids, "real"].to_numpy()
        assert store.labels("real").dtype == np.int8 and np.array_equal(store.labels("real"), expected)
        assert store.channels == ["TEMPLATE", "SCIENCE", "DIFFERENCE", "SNR"]
    assert len(pd.read_csv(tmp_path / "rejects.csv")) == 3
