"""Dieleman morphology model: presets, invariances, metrics, real Lightning training on tiny data, CPU-time and
step budgets of training (the model frame: tests/models/components/test_dieleman.py)."""

from __future__ import annotations

import json
import time

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, QUESTION_SLICES, QUESTIONS, tree_violations
from flows.cli import main as cli_main
from models.budget import CpuTimeLimit, StepClock, cpu_budget_s, steps_for_budget
from models.checkpoints import load_checkpoint
from models.components import count_parameters
from models.data import StampDataModule
from models.morphology import MorphologyModel, lr_factor, rmse_by_question
from models.train import main as train_main
from models.train import train_model
from pipeline.prep import dihedral
from pipeline.store import StampStoreWriter
from tests.models.helpers import fixed_batch_losses, galaxies

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUESTION_METRICS = [f"rmse_q{k}" for k in range(1, 12)]


def _write_store(path, n: int = 40, size: int = 69, seed: int = 0):
    stamps, labels = galaxies(n, size, seed)
    catalog = {"object_id": [f"g{i}" for i in range(n)], "source": [f"g{i}.fits" for i in range(n)]}
    with StampStoreWriter(path, ["g", "r", "i"], (size, size), chunk_rows=10) as writer:
        writer.append(stamps, None, catalog, {"gz_answers": labels})
    return path


@pytest.fixture(scope="module")
def gz_store(tmp_path_factory):
    return _write_store(tmp_path_factory.mktemp("gz") / "gz.h5")


def _model(**overrides) -> MorphologyModel:
    torch.manual_seed(0)
    return MorphologyModel("small", **overrides).eval()


# ------------------------------------------------------------------------------------------- presets
def test_dieleman2015_has_about_42_million_parameters_and_trains_on_raw_424_rgb_images():
    torch.manual_seed(0)
    model = MorphologyModel("dieleman2015")
    n_params = count_parameters(model)
    print(f"dieleman2015 parameters: {n_params:,}")
    assert 41_500_000 < n_params < 43_000_000  # the paper: about 42 million
    x = torch.rand(2, 3, 424, 424)
    out = model(x)
    assert out.shape == (2, 37)
    assert not any(tree_violations(out.detach().double().numpy()))
    F.mse_loss(out, torch.full_like(out, 0.2)).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.net.convs[0].weight.grad.abs().sum() > 0


def test_dieleman2015_trains_like_the_paper():
    model = MorphologyModel("dieleman2015")
    opt = model.configure_optimizers()["optimizer"]
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.04, 0.9, True)
    factors = [lr_factor(chunk / 2500, model.config.lr_milestones, 0.1) for chunk in (1799, 1800, 2299, 2300)]
    assert factors == pytest.approx([1.0, 0.1, 0.1, 0.01])  # Dieleman: /10 at chunks 1800 and 2300 of 2500
    assert model.data_config()["batch_size"] == 16
    assert model.config.dropout == 0.5 and model.config.dense_units == (2048, 2048)
    assert not model.use_tree(0) and model.use_tree(625)  # unnormalised warm-up, Dieleman's first chunk


def test_unknown_presets_and_settings_are_refused():
    with pytest.raises(ValueError, match="unknown morphology preset"):
        MorphologyModel("huge")
    with pytest.raises(ValueError, match="unknown morphology settings"):
        MorphologyModel("small", filters=3)


# ---------------------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("side", [45, 65, 69])
def test_cyclic_pooling_makes_predictions_invariant_to_90_degree_rotations(side):
    x = torch.rand(3, 3, side, side)
    cyclic = _model(cyclic_pool="mean")
    plain = _model()
    with torch.no_grad():
        ref, ref_plain = cyclic(x), plain(x)
        for k in (1, 2, 3):
            rotated = torch.rot90(x, k, dims=(-2, -1))
            assert (cyclic(rotated) - ref).abs().max() < 1e-5
            assert (plain(rotated) - ref_plain).abs().max() > 1e-5  # concatenation is not invariant


def test_test_time_augmentation_averages_over_the_dihedral_group():
    x = torch.rand(2, 3, 69, 69)
    model = _model(tta=True)
    with torch.no_grad():
        ref = model.predict_tensor(x)
        manual = torch.stack([model(dihedral(x, k)) for k in range(8)]).mean(0)
        torch.testing.assert_close(ref, manual, atol=1e-6, rtol=0)
        for k in range(1, 8):
            assert (model.predict_tensor(dihedral(x, k)) - ref).abs().max() < 1e-5
        assert (model(dihedral(x, 1)) - model(x)).abs().max() > 1e-5  # without TTA: not invariant
        assert torch.equal(model.predict_step((x, None), 0), ref)


# ------------------------------------------------------------------------------------------- training
def test_warmup_trains_the_clipped_outputs_without_the_tree():
    model = _model(unnormalised_warmup_steps=3)
    assert not model.use_tree(2) and model.use_tree(3)
    x = torch.rand(2, 3, 69, 69)
    with torch.no_grad():
        logits = model.net.head(model.net.dense(model.net.features(model.net.frame(x))))
        assert torch.equal(model(x, normalised=False), logits.clamp(0, 1))
        assert not torch.allclose(model(x), logits.clamp(0, 1))


class _LearningRates(L.Callback):
    """Records the learning rate of every training step."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, *args):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def _milestone_at_half_run(gz_store, tmp_path, callbacks=(), warmup=0, **limits) -> tuple:
    """The small model (lr divided by 10 at half of the training, ``warmup`` steps of linear warm-up), a data
    module of ``gz_store`` in batches of 8 and a trainer under ``limits``: ``(model, datamodule, trainer,
    learning rate of each step)``."""
    model = _model(lr_milestones=(0.5,), lr_gamma=0.1, lr_warmup_steps=warmup)
    dm = StampDataModule(gz_store, MorphologyModel.TARGET, **{**model.data_config(), "batch_size": 8})
    record = _LearningRates()
    trainer = L.Trainer(
        **limits, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        callbacks=[*callbacks, record], default_root_dir=tmp_path, limit_val_batches=0,
        enable_model_summary=False,
    )  # fmt: skip
    return model, dm, trainer, record.lrs


def test_the_learning_rate_drops_at_the_milestones_of_a_lightning_run(gz_store, tmp_path):
    model, dm, trainer, lrs = _milestone_at_half_run(gz_store, tmp_path, max_steps=6)
    trainer.fit(model, datamodule=dm)
    assert lrs == pytest.approx([1e-3] * 3 + [1e-4] * 3)
    assert model.training_progress() == 1.0


def test_the_learning_rate_warms_up_linearly_then_follows_the_milestones(gz_store, tmp_path):
    model, dm, trainer, lrs = _milestone_at_half_run(gz_store, tmp_path, warmup=4, max_steps=8)
    trainer.fit(model, datamodule=dm)
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4])
    assert MorphologyModel("small").config.lr_warmup_steps == 200
    assert "lr_warmup_steps" not in MorphologyModel("dieleman2015").config.to_dict()  # old hparams unchanged


def test_a_few_optimizer_steps_fit_a_fixed_batch():
    stamps, labels = galaxies(8, 69, seed=5)
    x, y = torch.from_numpy(stamps), torch.from_numpy(labels)
    model = _model(dropout=0.0, lr_warmup_steps=0).train()
    losses = fixed_batch_losses(model, model.configure_optimizers()["optimizer"], F.mse_loss, x, y, 20)
    assert losses[-1] < 0.6 * losses[0], losses


def test_rmse_is_the_kaggle_metric_overall_and_per_question():
    rng = np.random.default_rng(0)
    pred, true = rng.random((50, 37)), rng.random((50, 37))
    model = _model()
    for sl in (slice(0, 20), slice(20, 50)):  # accumulated over two batches
        model.val_mse.update(torch.from_numpy(pred[sl]).float(), torch.from_numpy(true[sl]).float())
    values = rmse_by_question(model.val_mse.compute())
    assert set(values) == {"rmse", *QUESTION_METRICS}
    assert abs(float(values["rmse"]) - np.sqrt(np.mean((pred - true) ** 2))) < 1e-6
    for q in QUESTIONS:
        sl = QUESTION_SLICES[q.name]
        expected = np.sqrt(np.mean((pred[:, sl] - true[:, sl]) ** 2))
        assert abs(float(values[f"rmse_{q.name.lower()}"]) - expected) < 1e-6


def test_data_config_feeds_the_data_module_with_framed_stamps(tmp_path):
    store = _write_store(tmp_path / "big.h5", n=12, size=120, seed=3)
    model = _model()
    dm = StampDataModule(store, MorphologyModel.TARGET, fractions=(0.5, 0.25, 0.25), **model.data_config())
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 65, 65) and y.shape[1:] == (37,)  # 120 px stamps: the central 65 px frame
    assert float(x.abs().amax()) > 0.5  # raw fluxes: the model normalises in forward
    assert model(x).shape == (len(x), 37)
    card = model.card_fields()
    assert card["output_names"] == list(ANSWER_COLUMNS) and card["input_channels"] == 3
    assert card["architecture"] == "small" and card["input_size"] is None
    json.dumps(card)


def test_training_writes_a_checkpoint_and_model_card_and_is_reproducible(gz_store, tmp_path):
    runs = [
        train_model("morphology", [gz_store], tmp_path / f"run{i}", preset="small", max_epochs=2, seed=7)
        for i in range(2)
    ]
    a, b = runs
    assert a.metrics == b.metrics  # same seed -> same numbers
    for stage in ("val", "test"):
        assert {f"{stage}/rmse", *(f"{stage}/{m}" for m in QUESTION_METRICS)} <= set(a.metrics)
    assert 0 < a.metrics["test/rmse"] < 1
    card = json.loads(open(a.model_card).read())
    assert card["weights_sha256"] == json.loads(open(b.model_card).read())["weights_sha256"]
    assert card["task"] == "morphology" and card["architecture"] == "small"
    assert card["output_names"] == list(ANSWER_COLUMNS) and card["epochs"] == 2
    model, loaded_card = load_checkpoint(a.checkpoint)
    assert isinstance(model, MorphologyModel) and loaded_card["metrics"] == a.metrics
    stamps, _ = galaxies(4, 69, seed=9)
    with torch.no_grad():
        pred = model.predict_tensor(torch.from_numpy(stamps))
    assert pred.shape == (4, 37) and not any(tree_violations(pred.double().numpy()))
    other = train_model(
        "morphology", [gz_store], tmp_path / "run_seed8", preset="small", max_epochs=2, seed=8
    )
    assert other.metrics["test/rmse"] != a.metrics["test/rmse"]


@pytest.mark.prefect
def test_stampflow_train_morphology_writes_checkpoint_and_card(gz_store, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train", "morphology", "--store", str(gz_store), "--preset", "small", "--max-epochs", "1"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    assert (out / "model.ckpt").exists()
    card = json.loads((out / "model_card.json").read_text())
    assert card["architecture"] == "small" and "test/rmse" in card["metrics"]
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(out / "model.ckpt")


# -------------------------------------------------------------------------------------------- budgets


def test_budget_arithmetic():
    assert cpu_budget_s(5, cores=2) == 600.0  # "5 minutes on 2 cores"
    assert steps_for_budget(600.0, 0.05) == 12_000
    assert steps_for_budget(1.0, 5.0) == 1  # always at least one step
    with pytest.raises(ValueError, match="minutes > 0"):
        cpu_budget_s(0)
    with pytest.raises(ValueError, match="positive"):
        steps_for_budget(600.0, 0.0)
    with pytest.raises(ValueError, match="> 0"):
        CpuTimeLimit(0)


def test_step_clock_measures_cpu_and_wall_time_per_step():
    clock = StepClock()
    clock.cpu, clock.wall = [0.0, 1.0, 1.5, 2.0, 2.5], [0.0, 2.0, 3.0, 4.0, 5.0]
    assert clock.cpu_per_step(skip=1) == pytest.approx(0.5)
    assert clock.wall_per_step(skip=1) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="more than 5"):
        clock.cpu_per_step(skip=4)


def test_cpu_time_limit_stops_the_fit_and_drives_the_learning_rate_drops(gz_store, tmp_path):
    """A 1.5 CPU-second budget stops a 1000-epoch fit after about that much CPU time, and the learning rate
    is divided at 50 % of the budget (the model's progress follows the CPU clock, not the planned steps)."""
    limit, clock = CpuTimeLimit(1.5), StepClock()
    model, dm, trainer, lrs = _milestone_at_half_run(gz_store, tmp_path, [limit, clock], max_epochs=1000)
    cpu0 = time.process_time()
    trainer.fit(model, datamodule=dm)
    used = time.process_time() - cpu0
    assert trainer.current_epoch < 999  # stopped by the budget, not by the epochs
    assert 1.5 <= limit.cpu_seconds and used < 1.5 + 10 * clock.cpu_per_step(skip=1) + 1.0
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    drop = lrs.index(pytest.approx(1e-4))
    assert 0 < drop < len(lrs) - 1  # dropped part-way, on the CPU clock
    assert model.training_progress() == 1.0


def test_a_step_budget_is_reproducible_and_reports_wall_and_cpu_time(gz_store, tmp_path):
    kw = {"preset": "small", "max_epochs": -1, "max_steps": 7, "val_every_n_epochs": None, "seed": 3}
    a, b = (train_model("morphology", [gz_store], tmp_path / f"r{i}", **kw) for i in range(2))
    assert a.steps == b.steps == 7
    assert a.metrics == b.metrics and "val/rmse" in a.metrics and "test/rmse" in a.metrics
    assert a.fit_cpu_seconds > 0 and a.fit_seconds > 0


@pytest.mark.prefect
def test_the_training_command_takes_a_cpu_time_limit_and_a_step_limit(gz_store, tmp_path, capsys):
    """``python -m models.train`` (what ``stampflow train`` runs) with ``--max-cpu-minutes`` / ``--max-steps``."""
    base = [
        "morphology",
        "--store",
        str(gz_store),
        "--preset",
        "small",
        "--max-epochs",
        "1000",
        "--threads",
        "1",
    ]
    assert train_main([*base, "--out", str(tmp_path / "cpu"), "--max-cpu-minutes", "0.02"]) == 0  # 1.2 CPU-s
    card = json.loads((tmp_path / "cpu" / "model_card.json").read_text())
    assert card["epochs"] < 999 and card["fit_cpu_seconds"] >= 1.2
    assert train_main([*base, "--out", str(tmp_path / "steps"), "--max-steps", "3"]) == 0
    card = json.loads((tmp_path / "steps" / "model_card.json").read_text())
    assert card["steps"] == 3
    out = capsys.readouterr().out
    assert json.loads(out[out.rindex("\n{") + 1 :])["steps"] == 3  # the result printed as JSON
