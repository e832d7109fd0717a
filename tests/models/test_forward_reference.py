"""What the models compute is pinned: every preset's outputs and first training losses equal those
recorded before the training-speed work (channels-last conv stacks, pooling before the activation, batches
from memory), within 1e-5."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.models.forward_reference import CASES, case_outputs

REFERENCE = json.loads((Path(__file__).parents[1] / "data/forward_reference/outputs.json").read_text())


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name, path, preset, shape, n", CASES, ids=[c[0] for c in CASES])
def test_outputs_and_training_losses_equal_the_recorded_reference(name, path, preset, shape, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a trainer
        now = case_outputs(path, preset, shape, n)
    expected = REFERENCE[name]
    np.testing.assert_allclose(now["outputs"], expected["outputs"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(now["losses"], expected["losses"], rtol=1e-5, atol=1e-6)
