"""Scoring throughput against the machine's roofline, and what reduced precision does to real-bogus labels.

1. :func:`throughput`: stamps/s of :meth:`pipeline.scoring.scorer.Scorer.predict` (raw stamps -> prepared batch ->
   model -> probabilities: the scoring work, without store I/O) for the ``hits`` and ``ztf`` presets of
   models/realbogus.py and the ``small`` preset of models/morphology.py (seeded weights; speed does not
   depend on them), by inference path:

   - ``pytorch_fp32``: PyTorch eager (the reference path, ``backend="eager"``);
   - ``onnxruntime_fp32``: the default fast path (``backend="auto"``: ONNX Runtime, exact to 1e-4);
   - ``pytorch_bf16``: the reference path under ``torch.autocast(dtype=torch.bfloat16)`` (avx512_bf16),
     tried and not kept (slower than ``onnxruntime_fp32``; its label flips are counted in 2.);
   - ``torch_compile_fp32`` (``--with-compile``): ``torch.compile`` with frozen weights, tried and not kept.

   Each is measured at the reference batch (256) and the fast path also at every ``--batches`` size,
   interleaved with the fp32 2048x2048 matmul rate of torch (:mod:`benchmarks.roofline`: rounds of
   reference then cases, best of each). FLOPs per stamp are counted by ``FlopCounterMode`` on the model's
   prediction, so ``fraction_of_roofline = stamps/s * FLOPs per stamp / matmul FLOP/s``.
2. :func:`label_flips`: for a trained real-bogus checkpoint and its test split, how many labels at the
   card's threshold each path changes against ``pytorch_fp32`` (allowed: at most 0.1 % of the stamps) and
   the largest change of ``rb``.
3. :func:`store_throughput`: :func:`pipeline.scoring.scorer.score_store` end to end (HDF5 read, prepare, model,
   Parquet write) on a store, default path.

The ``small`` morphology preset runs through ONNX Runtime only with a split of its prediction (its frame
normalisation uses NumPy, which does not export): :class:`SplitMorphologyModel` gives it the
``inference_parts()`` that ``models.morphology.MorphologyModel`` needs (proposed there; used as is when the
model has it).

Usage: python -m benchmarks.suite_scoring [--presets hits ztf small] [--batches 256 1024] [--rounds 2]
       [--seconds 1] [--threads 2] [--with-compile]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from benchmarks.roofline import flops_per_item, fraction, interleaved
from data_catalogs.galaxy_zoo import ANSWER_COLUMNS
from pipeline.scoring import Scorer, model_outputs, score_store
from pipeline.store import open_store

#: preset -> (task, raw stamp shape (C, H, W), channel names).
PRESETS: dict[str, tuple[str, tuple[int, int, int], list[str]]] = {
    "hits": ("realbogus", (4, 21, 21), ["template", "science", "difference", "snr"]),
    "ztf": ("realbogus", (3, 63, 63), ["science", "template", "difference"]),
    "small": ("morphology", (3, 69, 69), ["g", "r", "i"]),
}
#: inference path -> (Scorer backend, bfloat16 autocast around it).
PATHS: dict[str, tuple[str, bool]] = {
    "pytorch_fp32": ("eager", False),
    "onnxruntime_fp32": ("auto", False),
    "pytorch_bf16": ("eager", True),
}
REFERENCE_BATCH = 256
#: Largest fraction of test stamps whose label a reduced-precision path may change.
MAX_FLIP_FRACTION = 0.001


# ------------------------------------------------------------------------------------------------ models
def split_morphology_class() -> type[nn.Module]:
    """``MorphologyModel`` with ``inference_parts()``: the frame (NumPy inside) eagerly, the rest exported."""
    from models.morphology import MorphologyModel
    from pipeline.prep import all_dihedral

    if hasattr(MorphologyModel, "inference_parts"):
        return MorphologyModel

    class FrameNet(nn.Module):
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)``: ``forward_frame``, averaged over the 8 dihedral
        transforms when the model's ``tta`` is on (as ``predict_tensor``)."""

        def __init__(self, model: nn.Module):
            super().__init__()
            self.model = model

        def forward(self, frame: Tensor) -> Tensor:
            net = self.model.net
            if not self.model.config.tta:
                return net.forward_frame(frame)
            views = all_dihedral(frame).flatten(0, 1)
            return net.forward_frame(views).unflatten(0, (8, frame.shape[0])).mean(dim=0)

    class SplitMorphologyModel(MorphologyModel):
        def inference_parts(self) -> tuple[Callable[[Tensor], Tensor], nn.Module]:
            return self.net.frame, FrameNet(self)

    return SplitMorphologyModel


def preset_model(preset: str, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """A preset's model (seeded weights, eval mode) and a model card for stamps of :data:`PRESETS`."""
    task, (_, h, w), channels = PRESETS[preset]
    torch.manual_seed(seed)
    if task == "realbogus":
        from models.realbogus import RealBogusModel

        model = RealBogusModel(preset).eval()
        extra = {"threshold": 0.5, "data_config": {"fill": "zero", "keep_mask": "none"}}
    else:
        model = split_morphology_class()(preset).eval()
        extra = {"data_config": {"fill": "zero", "keep_mask": "none"}}
    card = {
        "task": task,
        "model_name": f"benchmark-{preset}",
        "model_version": f"untrained.s{seed}",
        "channels": channels,
        "stamp_shape": [h, w],
        **extra,
        **model.card_fields(),
    }
    if task == "morphology":
        card["output_names"] = list(ANSWER_COLUMNS)
    return model, card


def raw_stamps(preset: str, n: int, seed: int = 0) -> np.ndarray:
    """``(n, C, H, W)`` float32: unit noise plus a centred source of random flux and width per stamp."""
    _, (c, h, w), _ = PRESETS[preset]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    r2 = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2
    width = rng.uniform(1.0, h / 6, (n, 1, 1, 1))
    flux = rng.uniform(0, 50, (n, c, 1, 1))
    stamps = rng.normal(0, 1, (n, c, h, w)) + flux * np.exp(-r2 / (2 * width**2))
    return stamps.astype(np.float32)


# -------------------------------------------------------------------------------------------- throughput
def path_scorer(
    module: nn.Module, card: dict[str, Any], path: str
) -> tuple[Scorer, Callable[..., np.ndarray], dict[str, Any]]:
    """The :class:`Scorer` of an inference path of :data:`PATHS`, its ``predict`` (under bf16 autocast for
    ``pytorch_bf16``) and how it runs."""
    backend, bf16 = PATHS[path]
    scorer = Scorer(module, card, backend=backend)
    info = {**scorer.inference, "inference_precision": "bf16" if bf16 else "fp32"}
    if not bf16:
        return scorer, scorer.predict, info

    def predict(stamps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return scorer.predict(stamps, mask)

    return scorer, predict, info


def compiled_predict(scorer: Scorer) -> Callable[[np.ndarray], np.ndarray]:
    """``Scorer.predict`` with the model under ``torch.compile`` (inductor, frozen weights)."""
    compiled = torch.compile(lambda x: model_outputs(scorer.module, x), options={"freezing": True})

    def predict(stamps: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = scorer.prep(torch.from_numpy(stamps), None)
            return compiled(x).float().numpy()

    return predict


def throughput(
    preset: str,
    batches: Sequence[int] = (256, 1024),
    rounds: int = 2,
    seconds: float = 1.0,
    with_compile: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Stamps/s, GFLOP/s and fraction of the roofline of each inference path of ``preset`` (see module)."""
    module, card = preset_model(preset, seed)
    stamps = raw_stamps(preset, max([*batches, REFERENCE_BATCH]), seed)
    setup: dict[str, float] = {}
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    info: dict[str, dict[str, Any]] = {}
    for path in PATHS:
        t0 = time.perf_counter()
        _, predictors[path], info[path] = path_scorer(module, card, path)
        setup[path] = round(time.perf_counter() - t0, 2)
    if with_compile:
        t0 = time.perf_counter()
        predictors["torch_compile_fp32"] = compiled_predict(Scorer(module, card, backend="eager"))
        predictors["torch_compile_fp32"](stamps[:REFERENCE_BATCH])  # compiles
        setup["torch_compile_fp32"] = round(time.perf_counter() - t0, 2)
        info["torch_compile_fp32"] = {"inference_backend": "torch.compile", "inference_precision": "fp32"}
    reference = Scorer(module, card, backend="eager")
    x = reference.prep(torch.from_numpy(stamps[:REFERENCE_BATCH]), None)
    with torch.no_grad():
        flops = flops_per_item(lambda: model_outputs(module, x), REFERENCE_BATCH)
    cases: dict[str, tuple[Callable[[], Any], int]] = {}
    for path, predict in predictors.items():
        sizes = batches if path == "onnxruntime_fp32" else [REFERENCE_BATCH]
        for b in sizes:
            cases[f"{path}@{b}"] = ((lambda p=predict, b=b: p(stamps[:b])), b)
    measured = interleaved(cases, rounds=rounds, min_seconds=seconds)
    ref_gflops = measured["reference_gflops"]
    paths: dict[str, Any] = {}
    for name, rate in measured["rates"].items():
        path, b = name.split("@")
        paths.setdefault(path, {**info[path], "setup_seconds": setup[path], "batches": {}})
        paths[path]["batches"][b] = {
            "stamps_per_s": round(rate, 1),
            "gflops": round(rate * flops / 1e9, 1),
            "fraction_of_roofline": round(fraction(rate, flops, ref_gflops), 3),
            "stamps_per_s_each_round": measured["rates_all"][name],
        }
    ref_rate = measured["rates"][f"pytorch_fp32@{REFERENCE_BATCH}"]
    for entry in paths.values():
        entry["speedup_vs_pytorch_fp32"] = round(
            entry["batches"][str(REFERENCE_BATCH)]["stamps_per_s"] / ref_rate, 2
        )
    _, shape, _ = PRESETS[preset]
    return {
        "preset": preset,
        "task": card["task"],
        "stamp_shape": list(shape),
        "model_flops_per_stamp": flops,
        "roofline_gflops": round(ref_gflops, 1),
        "roofline_gflops_each_round": measured["reference_all"],
        "paths": paths,
    }


# ---------------------------------------------------------------------------------------- label flips
def label_flips(
    checkpoint: str | Path, store: str | Path, rows: np.ndarray | None = None, batch_size: int = 256
) -> dict[str, Any]:
    """Labels at the card's threshold changed by each path against ``pytorch_fp32`` on ``rows`` of a store.

    Args:
        checkpoint: a trained real-bogus checkpoint (``model.ckpt`` with ``model_card.json``).
        store: its labelled store.
        rows: indices of the test stamps (default all).
    """
    from models.checkpoints import load_checkpoint

    module, card = load_checkpoint(checkpoint)
    with open_store(store) as opened:
        stamps, mask = opened.stamps(), opened.mask()
        truth = opened.labels("real").astype(bool) if "real" in opened.label_names else None
    if rows is not None:
        stamps = stamps[rows]
        mask = None if mask is None else mask[rows]
        truth = None if truth is None else truth[rows]
    scores: dict[str, np.ndarray] = {}
    info: dict[str, dict[str, Any]] = {}
    for path in PATHS:
        scorer, predict, info[path] = path_scorer(module, card, path)
        out = [
            predict(stamps[i : i + batch_size], None if mask is None else mask[i : i + batch_size])
            for i in range(0, len(stamps), batch_size)
        ]
        scores[path] = scorer.head.rb_score(np.concatenate(out))
    threshold = float(card.get("threshold", 0.5))
    ref = scores["pytorch_fp32"] >= threshold
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "n_stamps": len(stamps),
        "threshold": threshold,
        "max_flip_fraction_allowed": MAX_FLIP_FRACTION,
    }
    if truth is not None:
        result["reference_accuracy"] = round(float(np.mean(ref == truth)), 4)
    for path in PATHS:
        if path == "pytorch_fp32":
            continue
        flips = int(np.sum((scores[path] >= threshold) != ref))
        result[path] = {
            "label_flips": flips,
            "flip_fraction": round(flips / max(len(ref), 1), 5),
            "within_allowed": flips <= MAX_FLIP_FRACTION * len(ref),
            "rb_max_abs_diff": float(np.max(np.abs(scores[path] - scores["pytorch_fp32"]))),
            "inference_backend": info[path]["inference_backend"],
            "inference_precision": info[path]["inference_precision"],
        }
    return result


def store_throughput(checkpoint: str | Path, store: str | Path, out: str | Path) -> dict[str, Any]:
    """``score_store`` end to end with the default path: stamps/s including HDF5 reads and Parquet writes."""
    from models.checkpoints import load_checkpoint

    module, card = load_checkpoint(checkpoint)
    result = score_store(module, card, store, out)
    return {
        "n_stamps": result.n_scored,
        "seconds": result.seconds,
        "stamps_per_s": result.stamps_per_s,
        "inference_backend": result.inference_backend,
    }


def run(
    presets: Sequence[str] = ("hits", "ztf", "small"),
    batches: Sequence[int] = (256, 1024),
    rounds: int = 2,
    seconds: float = 1.0,
    threads: int = 2,
    with_compile: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Throughput of every preset (:func:`throughput`) with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    return {
        "benchmark": "score_throughput",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "presets": {p: throughput(p, batches, rounds, seconds, with_compile, seed) for p in presets},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["hits", "ztf", "small"], choices=sorted(PRESETS))
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024], help="fast-path batch sizes")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of roofline + every case")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum time per case and round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--with-compile", action="store_true", help="also torch.compile (slow to compile)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(
        args.presets, args.batches, args.rounds, args.seconds, args.threads, args.with_compile, args.seed
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
