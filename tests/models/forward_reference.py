"""Reference outputs of every preset's network, recorded to pin what the models compute across speed work.

For each case: a model built from its preset after ``torch.manual_seed(0)``, a seeded batch of stamps, the
network's outputs in eval mode, and the training losses of 3 optimiser steps on one batch (train mode,
dropout seeded). :func:`record` computes them; ``python tests/models/forward_reference.py OUT.json`` writes
them (the shipped file, ``tests/data/forward_reference/outputs.json``, was written by the code of commit
853c3f0, before the training-speed changes of issue 22).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

#: (name, model class path, preset, stamp shape (C, H, W), batch)
CASES = (
    ("small", "models.morphology.MorphologyModel", "small", (3, 65, 65), 4),
    ("small_raw424", "models.morphology.MorphologyModel", "small", (3, 424, 424), 2),
    ("dieleman2015", "models.morphology.MorphologyModel", "dieleman2015", (3, 424, 424), 2),
    ("hits", "models.realbogus.RealBogusModel", "hits", (4, 21, 21), 6),
    ("ztf", "models.realbogus.RealBogusModel", "ztf", (3, 63, 63), 4),
    ("ztf_fast", "models.realbogus.RealBogusModel", "ztf_fast", (3, 63, 63), 6),
)
TRAIN_STEPS = 3


def _model(path: str, preset: str) -> Any:
    module, name = path.rsplit(".", 1)
    cls = getattr(__import__(module, fromlist=[name]), name)
    torch.manual_seed(0)
    return cls(preset)


def _batch(shape: tuple[int, int, int], n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h) - h / 2, torch.arange(w) - w / 2, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / (2 * (h / 8) ** 2))
    return torch.rand(n, c, h, w, generator=g) * 0.1 + blob * torch.rand(n, c, 1, 1, generator=g)


def _target(model: Any, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    if model.TASK == "morphology":
        return torch.rand(n, 37, generator=g)
    return torch.randint(0, 2, (n,), generator=g)


def case_outputs(path: str, preset: str, shape: tuple[int, int, int], n: int) -> dict[str, Any]:
    """Eval-mode outputs ``(n, K)`` of the seeded model, and the losses of :data:`TRAIN_STEPS` steps."""
    model = _model(path, preset).eval()
    x = _batch(shape, n, seed=1)
    with torch.no_grad():
        out = model(x)
    model.train()
    configured = model.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    y, losses = _target(model, n), []
    torch.manual_seed(3)  # dropout
    for i in range(TRAIN_STEPS):
        loss = model.training_step((x, y), i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return {"outputs": out.tolist(), "losses": losses}


def record() -> dict[str, Any]:
    torch.set_num_threads(1)
    return {name: case_outputs(path, preset, shape, n) for name, path, preset, shape, n in CASES}


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")  # self.log outside a trainer
    with open(sys.argv[1], "w") as f:
        json.dump(record(), f)
