"""Augmentation speed against model training speed: stamps/s of each preset's full training augmentation
and of one training step of the matching model, measured in the same run with the same torch threads.

Cases: ``morphology`` on the input of :class:`models.morphology.MorphologyModel`'s ``small`` preset (its
model frame; 3x69x69 when the model is absent), ``realbogus`` on 4x21x21 (HiTS) and on 3x63x63 (ZTF)
against :class:`models.realbogus.RealBogusModel`. The augmentation is the one the model trains with
(``model.data_config()["augment"]``) or else the preset's (:func:`pipeline.prep.augment.augment_preset`), with
the colour PCA fitted beforehand, as :class:`models.data.datamodule.StampDataModule` does. A training step is
``training_step`` + backward + the optimizer of ``configure_optimizers``; when a model or preset is not
there the model figure is null with a note. The target is at least 10x the model's rate (``ratio``,
``meets_10x``); ``augment_fraction_of_step`` is the time augmenting a batch takes as a fraction of one training
step on it (the target: at most 0.1). The FLOPs per stamp of a training step (forward + backward,
``FlopCounterMode``) are printed with it. Each rate is the best of ``--repeats`` windows of
``--seconds / --repeats`` s, for augmentation and training alike (on a shared machine the best window is
the least disturbed one).

Usage: python benchmarks/augment.py [--batch 64] [--seconds 3] [--repeats 3] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.prep import AugmentConfig, Augmenter, augment_preset, fit_color_pca, make_augmenter

#: (augmentation preset, default input (C, H, W), model module, class, model presets to try, target kind)
CASES = (
    ("morphology", (3, 69, 69), "models.morphology", "MorphologyModel", ("small",), "gz_answers"),
    ("realbogus", (4, 21, 21), "models.realbogus", "RealBogusModel", ("hits", "deep_hits", "HiTS"), "real"),
    ("realbogus", (3, 63, 63), "models.realbogus", "RealBogusModel", ("ztf", "ZTF"), "real"),
)


def rate(
    step: Callable[[], Any],
    n_per_step: int,
    seconds: float,
    min_steps: int = 3,
    warmup: bool = True,
    repeats: int = 1,
) -> float:
    """Stamps/s of ``step`` (after one warm-up call unless ``warmup`` is False): the best of ``repeats``
    windows of at least ``min_steps`` calls and ``seconds / repeats`` s each."""
    if warmup:
        step()
    best, window = 0.0, seconds / max(1, repeats)
    for _ in range(max(1, repeats)):
        steps, start = 0, time.perf_counter()
        while steps < min_steps or time.perf_counter() - start < window:
            step()
            steps += 1
        best = max(best, n_per_step * steps / (time.perf_counter() - start))
    return best


def fake_stamps(n: int, shape: tuple[int, int, int], device: str, seed: int = 0) -> torch.Tensor:
    """Noise plus a centred Gaussian blob per stamp, ``(n, C, H, W)`` float32."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    yy, xx = torch.meshgrid(torch.arange(h) - h / 2, torch.arange(w) - w / 2, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / (2 * (h / 8) ** 2))
    x = 0.05 * torch.randn(n, c, h, w, generator=g) + blob * torch.rand(n, c, 1, 1, generator=g)
    return x.to(device)


def build_model(module: str, cls_name: str, presets: tuple[str, ...]) -> tuple[Any, str | None, str]:
    """(model or None, preset used, note)."""
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError) as err:
        return None, None, f"{module}.{cls_name} not available ({err.__class__.__name__}: {err})"
    errors = []
    for preset in presets:
        for make in (
            lambda p: cls.from_preset(p),
            lambda p: cls(preset=p),
            lambda p: cls(p),
        ):
            try:
                return make(preset), preset, ""
            except Exception as err:  # try the next way of building it
                errors.append(f"{preset}: {err.__class__.__name__}: {err}")
    return None, None, f"could not build {cls_name} from presets {presets}: {errors[-1] if errors else ''}"


def model_input_shape(model: Any) -> tuple[int, int, int] | None:
    """(C, H, W) the model trains on: ``example_input_array``, ``input_shape``, or its config's frame/input size."""
    example = getattr(model, "example_input_array", None)
    if isinstance(example, torch.Tensor) and example.ndim == 4:
        return tuple(example.shape[1:])
    shape = getattr(model, "input_shape", None) or getattr(model, "hparams", {}).get("input_shape")
    if shape is not None and len(shape) == 3:
        return tuple(int(v) for v in shape)
    config = getattr(model, "config", None)
    side = getattr(config, "frame_size", None) or getattr(config, "input_size", None)
    channels = getattr(config, "input_channels", None) or getattr(config, "in_channels", None)
    if side and channels:
        return (int(channels), int(side), int(side))
    return None


def training_augmentation(model: Any, preset: str) -> tuple[AugmentConfig, str]:
    """The augmentation the model trains with (``data_config()["augment"]``), else the preset's."""
    if model is not None and callable(getattr(model, "data_config", None)):
        augment = model.data_config().get("augment")
        augmenter = make_augmenter(augment)
        if augmenter is not None:
            return augmenter.config, "model.data_config()"
    return augment_preset(preset), f"augment_preset({preset!r})"


def first_optimizer(configured: Any) -> torch.optim.Optimizer:
    """The optimizer out of any of the return forms of ``configure_optimizers``."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    if isinstance(configured, dict):
        return first_optimizer(configured["optimizer"])
    if isinstance(configured, (list, tuple)) and configured:
        return first_optimizer(configured[0])
    raise TypeError(f"cannot find an optimizer in {type(configured)}")


def train_rate(
    model: Any,
    shape: tuple[int, int, int],
    target: str,
    batch: int,
    seconds: float,
    device: str,
    repeats: int = 1,
) -> tuple[float, float]:
    """Stamps/s of training steps on random batches, and the FLOPs per stamp of one step (forward and
    backward convolutions and matrix products, counted by ``torch.utils.flop_counter.FlopCounterMode``)."""
    model = model.to(device).train()
    optimizer = first_optimizer(model.configure_optimizers())
    x = fake_stamps(batch, shape, device, seed=1)
    if target == "gz_answers":
        y = torch.rand(batch, 37, device=device)
    else:
        y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        out = model.training_step((x, y), 0)
        loss = out["loss"] if isinstance(out, dict) else out
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up step
    return rate(step, batch, seconds, warmup=False, repeats=repeats), counter.get_total_flops() / batch


def augment_rate(
    config: AugmentConfig,
    shape: tuple[int, int, int],
    batch: int,
    seconds: float,
    device: str,
    repeats: int = 1,
) -> float:
    x = fake_stamps(batch, shape, device)
    if config.color_pca_sigma > 0 and config.color_pca_eigvals is None:
        config = config.with_color_pca(*fit_color_pca(x))  # fitted once, as the data module does
    augmenter = Augmenter(config, seed=0)

    def step() -> None:
        augmenter(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return rate(step, batch, seconds, repeats=repeats)


def run(
    batch: int = 64, seconds: float = 3.0, threads: int = 1, device: str = "cpu", repeats: int = 3
) -> dict[str, Any]:
    """Measure and return the figures of the module docstring (``threads`` 0: torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")  # e.g. Lightning's "self.log() without a trainer"
    torch.manual_seed(0)
    results = []
    for preset, default_shape, module, cls_name, model_presets, target in CASES:
        model, model_preset, note = build_model(module, cls_name, model_presets)
        shape = default_shape
        if model is not None and preset == "morphology":
            shape = model_input_shape(model) or default_shape
        elif model is not None and model_input_shape(model) not in (None, default_shape):
            note = f"model preset {model_preset} takes {model_input_shape(model)}, not {default_shape}"
        config, config_source = training_augmentation(model, preset)
        aug = augment_rate(config, shape, batch, seconds, device, repeats)
        train, train_flops = None, None
        if model is not None:
            try:
                train, train_flops = train_rate(model, shape, target, batch, seconds, device, repeats)
            except Exception as err:  # report it, do not stop the other cases
                note = f"training step failed: {err.__class__.__name__}: {err}"
        results.append(
            {
                "augment_preset": preset,
                "augment_config_from": config_source,
                "augmentations": config.enabled,
                "input_shape": list(shape),
                "augment_stamps_per_s": round(aug, 1),
                "model": None if model is None else f"{cls_name}({model_preset})",
                "model_train_stamps_per_s": None if train is None else round(train, 1),
                "model_train_flops_per_stamp": train_flops,
                "augment_ms_per_batch": round(1e3 * batch / aug, 2),
                "ratio": None if train is None else round(aug / train, 1),
                "augment_fraction_of_step": None if train is None else round(train / aug, 3),
                "meets_10x": None if train is None else aug >= 10 * train,
                "note": note or None,
            }
        )
    return {
        "benchmark": "augment",
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": batch,
        "seconds_per_rate": seconds,
        "repeats": repeats,
        "cases": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="stamps per batch, augmentation and training")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum time per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="windows per measurement; the best is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (0: torch default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(run(args.batch, args.seconds, args.threads, args.device, args.repeats), indent=2))


if __name__ == "__main__":
    main()
