"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread in a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on
    the shared 2-core machines two OpenMP threads stalled up to 14x whenever another process held a core, and
    2 threads waiting for each other ran the training tests 2-5x slower. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
