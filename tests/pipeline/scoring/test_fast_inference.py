"""The fast scoring path (ONNX Runtime) against the PyTorch reference: the Deep-HiTS ``hits`` preset on
simulated HiTS transients within 1e-4, any batch size, recorded in the catalog meta, and a clear fallback
or error when a model cannot be exported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table
from torch import Tensor, nn

from models.realbogus import RealBogusModel
from pipeline.ingest import ingest_labelled_triplets
from pipeline.scoring import (
    EXACT_ATOL,
    FastInference,
    FastPathError,
    InferenceOptions,
    Scorer,
    model_outputs,
    score_store,
)
from pipeline.simulate.transients import simulate_transients
from pipeline.store import open_store

N_SIMULATED = 240


@pytest.fixture(scope="module")
def hits_store(tmp_path_factory) -> str:
    """A few hundred simulated HiTS transients (4x21x21, half real) ingested with their labels."""
    root = tmp_path_factory.mktemp("hits")
    simulate_transients(N_SIMULATED, root / "sim", survey="hits", seed=5, workers=1)
    report = ingest_labelled_triplets(root / "sim", root / "hits.h5")
    assert report.n_ingested == N_SIMULATED
    return str(root / "hits.h5")


@pytest.fixture(scope="module")
def hits_model() -> tuple[nn.Module, dict]:
    """The ``hits`` preset (seeded weights, a fitted-looking temperature) and its card."""
    torch.manual_seed(3)
    model = RealBogusModel("hits").eval()
    model.temperature.fill_(1.7)
    card = {
        "task": "realbogus",
        "model_name": "test-deep-hits",
        "model_version": "0.0.1+test",
        "channels": ["TEMPLATE", "SCIENCE", "DIFFERENCE", "SNR"],  # as the simulator names them
        "stamp_shape": [21, 21],
        "threshold": 0.5,
        "data_config": {"fill": "zero", "keep_mask": "none"},
        **model.card_fields(),
    }
    return model, card


def test_fast_path_equals_reference_on_simulated_hits(hits_store, hits_model, tmp_path):
    model, card = hits_model
    fast = score_store(
        model, card, hits_store, tmp_path / "fast.parquet", batch_size=64, backend="onnxruntime"
    )
    ref = score_store(model, card, hits_store, tmp_path / "ref.parquet", batch_size=64, backend="eager")
    assert (fast.inference_backend, ref.inference_backend) == ("onnxruntime", "eager")
    a, b = Table.read(tmp_path / "fast.parquet"), Table.read(tmp_path / "ref.parquet")
    assert len(a) == len(b) == N_SIMULATED
    for column in ("rb", "p_bogus", "p_real"):
        np.testing.assert_allclose(a[column], b[column], rtol=0, atol=EXACT_ATOL)
    assert np.ptp(b["rb"]) > 0.05  # the scores vary, so the comparison means something
    near = np.abs(np.asarray(b["rb"]) - card["threshold"]) < EXACT_ATOL
    assert list(a["label"][~near]) == list(b["label"][~near])
    assert a.meta["inference_backend"] == "onnxruntime" and b.meta["inference_backend"] == "eager"
    assert a.meta["inference_probe_max_abs_diff"] <= EXACT_ATOL


def test_default_scorer_uses_the_fast_path_for_any_batch_size(hits_store, hits_model):
    model, card = hits_model
    scorer = Scorer(model, card)  # the card gives the stamp shape: set up at once
    assert scorer.inference["inference_backend"] == "onnxruntime"
    with open_store(hits_store) as store:
        stamps = store.stamps(slice(0, 131))
    with torch.no_grad():
        expected = model.probabilities(torch.from_numpy(stamps)).numpy()
    for size in (1, 2, 131):
        np.testing.assert_allclose(scorer.predict(stamps[:size]), expected[:size], rtol=0, atol=EXACT_ATOL)


class NumpyInside(nn.Module):
    """A model whose forward goes through NumPy (cannot be exported): the fallback case."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 5 * 5, 2)

    def forward(self, x: Tensor) -> Tensor:
        scale = torch.from_numpy(np.median(x.numpy(), axis=(1, 2, 3), keepdims=True)).abs() + 1
        return torch.softmax(self.linear((x / scale).flatten(1)), dim=1)


class SplitModel(NumpyInside):
    """The same model exposing ``inference_parts``: NumPy scaling eagerly, the rest exported."""

    def scale(self, x: Tensor) -> Tensor:
        return x / (torch.from_numpy(np.median(x.numpy(), axis=(1, 2, 3), keepdims=True)).abs() + 1)

    def inference_parts(self):
        linear = self.linear

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = linear

            def forward(self, x: Tensor) -> Tensor:
                return torch.softmax(self.linear(x.flatten(1)), dim=1)

        return self.scale, Net()


def test_unexportable_model_falls_back_with_a_note_or_fails_when_asked():
    torch.manual_seed(0)
    model, probe = NumpyInside().eval(), torch.randn(8, 3, 5, 5)
    auto = FastInference(model, probe)
    assert auto.backend == "eager" and auto.note.startswith("onnxruntime not used:")
    np.testing.assert_array_equal(auto(probe).numpy(), model_outputs(model, probe).detach().numpy())
    with pytest.raises(FastPathError, match="onnxruntime backend unavailable"):
        FastInference(model, probe, InferenceOptions(backend="onnxruntime"))
    assert FastInference(model, probe).note == auto.note  # the failed export is remembered


def test_inference_parts_split_is_exported_and_exact():
    torch.manual_seed(0)
    model, probe = SplitModel().eval(), torch.randn(8, 3, 5, 5)
    fast = FastInference(model, probe)
    assert fast.backend == "onnxruntime", fast.note
    x = torch.randn(37, 3, 5, 5)
    np.testing.assert_allclose(fast(x).numpy(), model(x).detach().numpy(), rtol=0, atol=EXACT_ATOL)


def test_bad_options_name_the_setting():
    with pytest.raises(ValueError, match="backend must be one of"):
        InferenceOptions(backend="tensorrt")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        InferenceOptions(threads=0)
