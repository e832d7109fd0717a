"""Galaxy morphology CNN of Dieleman, Willett & Dambre 2015 (Galaxy Zoo Kaggle winner) as a LightningModule.

Pipeline of one forward pass (:class:`DielemanNet`), shapes for the ``dieleman2015`` preset:

1. **Model frame** (:class:`DielemanFrame`): stamps ``(N, C, S, S)`` of any size -> ``(N, C, F, F)``.
   The frame has the pixel scale of the 69x69 view plus a margin so that the 45-degree views are filled
   with real sky (``F = 99`` for a 69 px view, ``context=True``). A raw survey image (``S > 2 F``, e.g. a
   424 px Kaggle JPEG) is centre-cropped to ``round(S * crop_fraction * F / V)`` px and area-averaged to
   ``F`` (424 px: crop 297 -> 99, a 3x3 block average; the central 69 px of the frame are exactly
   Dieleman's "centre 207 px downsampled 3x"). Stamps of side ``V`` or ``F`` are taken as they are; other
   stamps (e.g. the simulator's 69 px cubes for a 45 px view) already show the view's field and are
   resampled to ``V``. Then the per-stamp normalisation (``max`` or an ``asinh`` stretch of raw fluxes).
   The data module applies the same geometry (``data_config()["preprocess"]``) before augmentation; the
   model applies the frame in ``forward`` (geometry is a no-op on framed stamps), so raw 424x424 images can
   be given directly and a checkpoint scores stamps exactly as it was trained.
2. **16 viewpoints** (:class:`pipeline.prep.preprocess.DielemanViewpoints`): views at 0 and 45 degrees and their
   mirrors, each cut into 4 overlapping 45x45 corner parts rotated so the centre is in the same corner:
   ``(N * 16, C, 45, 45)``.
3. **Shared conv stack** on all parts as one batch (:func:`models.layers.conv_stack`): 32@6x6, pool,
   64@5x5, pool, 128@3x3, 128@3x3, pool; valid convolutions with untied biases -> ``(N * 16, 128, 2, 2)``.
4. **Merge**: the 16 feature vectors concatenated -> ``(N, 8192)``; or, with ``cyclic_pool``, pooled over
   the 4 rotated parts of each view (Dieleman et al. 2016) -> ``(N, 4 * 512)``, which makes the model
   invariant to rotations of the input by 90 degrees.
5. **Dense**: dropout 0.5 + maxout 2048 (4096 linear units), twice; dropout 0.5 + linear 37.
6. **Output** (:class:`models.layers.GalaxyZooTree`): ReLU, per-question normalisation, multiplication by the
   parent answer in tree order -> ``(N, 37)`` Kaggle cumulative vote fractions.

Training: MSE on the 37 cumulative fractions; SGD with Nesterov momentum 0.9, lr 0.04 divided by 10 at
72 % and 92 % of the training steps (Dieleman's 1800 and 2300 of 2500 chunks); the first
``unnormalised_warmup_steps`` steps train the clipped outputs without the tree (Dieleman's first chunk).
Metrics: RMSE over all 37 answers (the Kaggle metric) and per question, ``val/rmse``, ``val/rmse_q1`` ..
``val/rmse_q11`` (and ``test/...``). Optional test-time augmentation averages the predictions over the 8
dihedral transforms of the frame.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, replace
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from torch import Tensor, nn
from torchmetrics.regression import MeanSquaredError

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, N_ANSWERS, QUESTION_SLICES, QUESTIONS
from models.budget import CpuTimeLimit
from models.layers import (
    CYCLIC_POOLS,
    ConvSpec,
    CyclicPool,
    GalaxyZooTree,
    Maxout,
    UntiedBias2d,
    conv_output_shape,
    conv_stack,
    count_parameters,
    init_normal_,
)
from models.presets import config_from_preset, config_to_dict
from pipeline.prep import (
    DielemanViewpoints,
    all_dihedral,
    as_batch,
    augment_preset,
    center_crop,
    crop_and_downsample,
    robust_sigma,
)

#: Dieleman's Kaggle crop: the centre 207 px of the 424 px images.
KAGGLE_CROP_FRACTION = 207 / 424
#: Stamps larger than this many frames are raw survey images that get Dieleman's centre crop.
RAW_FACTOR = 2
#: Side of Dieleman's view (the 3x downsampled crop), which the augmentation preset's shifts refer to.
DIELEMAN_VIEW = 69
NORMALISATIONS = ("none", "max", "asinh")
OPTIMIZERS = ("sgd", "adam")
INITS = ("dieleman", "torch")
#: Dieleman's initialisation (kaggle-galaxies, try_convnet_cc_multirotflip_3x69r45_maxout2048_extradense.py):
#: weight std per conv layer (the 4th used 0.1), conv bias, dense std and bias, output std and bias.
DIELEMAN_INIT = {
    "conv_std": (0.01, 0.01, 0.01, 0.1),
    "conv_bias": 0.1,
    "dense_std": 0.001,
    "dense_bias": 0.01,
    "output_std": 0.01,
    "output_bias": 0.1,
}


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class MorphologyConfig:
    """Every setting of the morphology model (a preset plus overrides); JSON-able via :meth:`to_dict`.

    Attributes:
        input_channels: channels of the stamps (3 for Kaggle RGB and g, r, i).
        input_size: side ``V`` of the view the parts are cut from, in frame pixels (69).
        part_size: side of each of the 16 parts (45).
        context: give the frame a margin (``F ~ V * sqrt(2)``, even margin) so the 45-degree views are
            filled with pixels instead of zeros.
        crop_fraction: fraction of a raw image's side (``S > 2 F``) that the view covers (207/424).
        native_scale: stamps of at most ``2 F`` px are at the model's pixel scale (``False``: they show
            the view's field): centre-cropped to the frame, never resampled (see :class:`DielemanFrame`).
        normalise: ``none`` (values as stored: Kaggle JPEGs are in [0, 1]), ``max`` (each stamp divided
            by its largest absolute value over channels and pixels, for fluxes of any scale) or ``asinh``
            (``asinh(x / noise)`` then ``max``: a luptitude-like stretch of raw fluxes, see
            :class:`DielemanFrame`).
        viewpoints: cut the 16 viewpoints (False: one conv stack on the whole view, the plain-CNN baseline).
        conv: conv blocks ``[filters, kernel, padding, pool]`` (:class:`models.layers.ConvSpec`).
        untied_biases: one conv bias per channel and pixel (Dieleman's cuda-convnet layers).
        cyclic_pool: None (concatenate the 16 part features) or ``mean``/``max``/``rms`` pooling over the
            4 rotated parts of each view.
        dense_units: maxout units per dense layer (2048, 2048).
        maxout_pieces: linear units per maxout unit (2).
        dropout: dropout probability before each dense layer (0.5).
        init: ``dieleman`` (:data:`DIELEMAN_INIT`) or ``torch`` (PyTorch's default initialisation).
        tree_eps: epsilon of the question normalisation (1e-12).
        optimizer: ``sgd`` (with ``momentum``, ``nesterov``) or ``adam``.
        lr: learning rate; lr_milestones: fractions of the training (steps, or wall time under ``max_time``:
            :meth:`MorphologyModel.training_progress`) after which it is multiplied by ``lr_gamma``;
            weight_decay: L2 on weights only (never on biases).
        unnormalised_warmup_steps: first training steps on ``clip(logits, 0, 1)`` without the tree.
        batch_size: stamps per batch.
        augment: augmentation for training (``pipeline.prep.augment`` preset name, a dict, or None). The
            ``morphology`` preset's shifts are rescaled from the 69 px view to ``input_size``.
        tta: average test and predict outputs over the 8 dihedral transforms of the frame.
    """

    input_channels: int = 3
    input_size: int = 69
    part_size: int = 45
    context: bool = True
    crop_fraction: float = KAGGLE_CROP_FRACTION
    native_scale: bool = False
    normalise: str = "none"
    viewpoints: bool = True
    conv: tuple[tuple[int, int, int, int], ...] = (
        (32, 6, 0, 2),
        (64, 5, 0, 2),
        (128, 3, 0, 1),
        (128, 3, 0, 2),
    )
    untied_biases: bool = True
    cyclic_pool: str | None = None
    dense_units: tuple[int, ...] = (2048, 2048)
    maxout_pieces: int = 2
    dropout: float = 0.5
    init: str = "dieleman"
    tree_eps: float = 1e-12
    optimizer: str = "sgd"
    lr: float = 0.04
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (0.72, 0.92)
    lr_gamma: float = 0.1
    unnormalised_warmup_steps: int = 625
    batch_size: int = 16
    augment: str | dict | None = "morphology"
    tta: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv", tuple(astuple(ConvSpec.from_any(c)) for c in self.conv))
        object.__setattr__(self, "dense_units", tuple(int(u) for u in self.dense_units))
        object.__setattr__(self, "lr_milestones", tuple(float(m) for m in self.lr_milestones))
        checks = {
            "normalise": (self.normalise, NORMALISATIONS),
            "optimizer": (self.optimizer, OPTIMIZERS),
            "init": (self.init, INITS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.part_size > self.input_size:
            raise ValueError(f"part_size {self.part_size} is larger than input_size {self.input_size}")
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.cyclic_pool is not None and self.cyclic_pool not in CYCLIC_POOLS:
            raise ValueError(f"cyclic_pool must be None or one of {CYCLIC_POOLS}, got {self.cyclic_pool!r}")

    @property
    def frame_size(self) -> int:
        """Side ``F`` of the model frame: ``V`` or ``V + 2 * ceil(V * (sqrt(2) - 1) / 2)`` with context."""
        if not self.context:
            return self.input_size
        return self.input_size + 2 * math.ceil(self.input_size * (math.sqrt(2.0) - 1.0) / 2.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples become lists)."""
        return config_to_dict(self)

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> MorphologyConfig:
        """A preset of :data:`PRESETS` with settings overridden; unknown settings raise."""
        return config_from_preset(cls, PRESETS, preset, overrides, "morphology")


#: ``dieleman2015``: the paper's network (about 42 million parameters) and training; stamps max-normalised
#: (for Kaggle JPEGs, already in [0, 1] with a bright core, this is close to the paper's raw values; pass
#: ``normalise="none"`` for exactly those). ``small``: the same structure for CPU runs of minutes, chosen on
#: the simulator's default set (2,000 galaxies, 69 px at 0.396"/px) with a CPU-time budget
#: (benchmarks/morphology_quality.py): a 45 px view at the stamps' own pixel scale (``native_scale``: the
#: central 65 px frame of a 69 px stamp; area-averaging the whole stamp to 45 px lost detail, +3 % RMSE) cut
#: into 16 parts of 29 px, 8/16/32/32 filters with the two 3x3 convolutions padded (so 29 px parts still end
#: at 2x2), tied biases, two maxout layers of 128, dropout 0.25, PyTorch's initialisation, Adam lr 1e-3 in
#: batches of 32, an asinh stretch of the raw fluxes, and exact augmentations only: a dihedral transform,
#: a whole-pixel shift of up to 2 px and Gaussian noise of half each stamp's own noise (without the shifts
#: and noise the viewpoint net overfits the 1,600 training galaxies after about half of a 600 CPU-s budget;
#: the interpolating ``morphology`` augmentation smooths the noise and learned much more slowly). Measured
#: and not kept: cyclic pooling (worse), dropout 0.5, 16/32/64/64 filters, smaller dense layers (no better
#: at equal CPU time), Adam weight decay 5e-4 (stops learning).
PRESETS: dict[str, dict[str, Any]] = {
    "dieleman2015": {"normalise": "max"},
    "small": {
        "input_size": 45,
        "part_size": 29,
        "native_scale": True,
        "normalise": "asinh",
        "conv": ((8, 6, 0, 2), (16, 5, 0, 2), (32, 3, 1, 1), (32, 3, 1, 2)),
        "untied_biases": False,
        "dense_units": (128, 128),
        "dropout": 0.25,
        "init": "torch",
        "optimizer": "adam",
        "lr": 1e-3,
        "unnormalised_warmup_steps": 0,
        "batch_size": 32,
        "augment": {"dihedral": True, "shift_px": 2.0, "integer_shift": True, "noise_level": 0.5},
    },
}


# ----------------------------------------------------------------------------------------------- frame
@dataclass(frozen=True)
class DielemanFrame:
    """Stamps ``(N, C, S, S)`` of any size -> model frame ``(N, C, F, F)`` or view ``(N, C, V, V)`` float32.

    A picklable callable: the data module uses it (with ``normalise="none"``) as ``preprocess``, and the
    model calls it in ``forward``. By the stamp side ``S``:

    - ``S`` is the view ``V`` or the frame ``F``: kept as it is (already in the model frame);
    - ``S > RAW_FACTOR * F`` (a raw survey image, e.g. a 424 px Kaggle JPEG): centre crop of
      ``round(S * crop_fraction * F / V)`` px, area-averaged to ``F``; the central ``V`` px of the frame are
      then the centre ``crop_fraction`` of the image, as Dieleman's 207/424 crop;
    - otherwise, with ``native_scale`` (the stamp is at the model's pixel scale): centre-cropped to ``F``
      when ``S > F`` (the 45-degree views get real pixels in their corners), to ``V`` when ``V < S < F``;
      smaller stamps are resampled to ``V``;
    - otherwise (a stamp that already shows the view's field): resampled to ``V`` (area average when
      shrinking, bilinear when growing); the 45-degree views get zero corners.

    Then the normalisation: ``none``; ``max`` (each stamp divided by its largest ``|value|``); ``asinh``
    (``asinh(x / sigma)`` with ``sigma`` the stamp's robust noise averaged over its channels, then divided by
    its max: a luptitude-like stretch of raw fluxes, like the Kaggle JPEGs, which keeps the colours).
    """

    view_size: int
    frame_size: int
    crop_fraction: float
    normalise: str = "none"
    native_scale: bool = False

    def crop_for(self, side: int) -> int:
        """Side of the centre crop of a raw stamp of ``side`` px."""
        return min(side, max(1, round(side * self.crop_fraction * self.frame_size / self.view_size)))

    def geometry(self, t: Tensor) -> Tensor:
        """Crop and resample ``(N, C, S, S)`` to the frame or the view (no normalisation)."""
        side = t.shape[-1]
        if t.shape[-2] != side:
            raise ValueError(f"stamps must be square, got {tuple(t.shape[-2:])}")
        if side in (self.view_size, self.frame_size):
            return t
        if side > RAW_FACTOR * self.frame_size:
            return crop_and_downsample(t, self.crop_for(side), self.frame_size)
        if self.native_scale and side > self.view_size:
            return center_crop(t, self.frame_size if side > self.frame_size else self.view_size)
        mode = "area" if side > self.view_size else "bilinear"
        return F.interpolate(t, size=(self.view_size, self.view_size), mode=mode)

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        t = self.geometry(as_batch(x))
        if self.normalise == "asinh":
            sigma = torch.nan_to_num(robust_sigma(t).mean(dim=1), nan=0.0)  # (N,) one noise level per stamp
            sigma = torch.where(sigma > 0, sigma, t.abs().amax(dim=(1, 2, 3)).clamp_min(1e-30))
            t = torch.asinh(t / sigma[:, None, None, None])
        if self.normalise in ("max", "asinh"):
            peak = t.abs().amax(dim=(1, 2, 3), keepdim=True)
            t = t / torch.where(peak > 0, peak, torch.ones_like(peak))
        return t

    def describe(self) -> str:
        """One line for the model card."""
        norm = {
            "none": "values as stored",
            "max": "each stamp divided by its max |value|",
            "asinh": "asinh(x / robust sigma of the stamp), then divided by its max |value|",
        }[self.normalise]
        others = f"other sizes resampled to {self.view_size} px"
        if self.native_scale:
            others = (
                f"other sizes centre-cropped to {self.frame_size} px (or {self.view_size} px if smaller), "
                f"stamps smaller than {self.view_size} px resampled to it"
            )
        return (
            f"stamps of {self.view_size} or {self.frame_size} px as they are; larger than "
            f"{RAW_FACTOR * self.frame_size} px: centre crop {self.crop_fraction:.4f} x side x "
            f"{self.frame_size}/{self.view_size}, area-averaged to {self.frame_size} px; {others}; then {norm}"
        )


# ------------------------------------------------------------------------------------------------ network
class DielemanNet(nn.Module):
    """The network of :class:`MorphologyModel`: ``(N, C, S, S)`` raw stamps -> ``(N, 37)`` cumulative fractions."""

    def __init__(self, config: MorphologyConfig):
        super().__init__()
        c = config
        self.config = c
        self.frame = DielemanFrame(c.input_size, c.frame_size, c.crop_fraction, c.normalise, c.native_scale)
        self.viewpoints = DielemanViewpoints(c.part_size, c.input_size) if c.viewpoints else None
        conv_in = c.part_size if c.viewpoints else c.input_size
        self.convs = conv_stack(c.input_channels, c.conv, in_size=conv_in, untied_biases=c.untied_biases)
        self.part_features = int(np.prod(conv_output_shape(c.conv, c.input_channels, conv_in)))
        n_parts = 16 if c.viewpoints else 1
        self.merge = CyclicPool(4, c.cyclic_pool) if c.cyclic_pool and c.viewpoints else None
        if self.merge is not None:
            n_parts //= 4
        width = n_parts * self.part_features
        dense: list[nn.Module] = []
        for units in c.dense_units:
            dense += [nn.Dropout(c.dropout), Maxout(width, units, c.maxout_pieces)]
            width = units
        self.dense = nn.Sequential(*dense)
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(width, N_ANSWERS))
        self.tree = GalaxyZooTree(c.tree_eps)
        if c.init == "dieleman":
            self._init_dieleman()
        # Always Dieleman's output layer: a positive bias keeps the ReLU of the tree layer alive at the
        # start (a question whose logits are all <= 0 gets no gradient).
        init_normal_(self.head[-1], DIELEMAN_INIT["output_std"], DIELEMAN_INIT["output_bias"])

    def _init_dieleman(self) -> None:
        stds = DIELEMAN_INIT["conv_std"]
        convs = [m for m in self.convs if isinstance(m, nn.Conv2d)]
        biases = [m for m in self.convs if isinstance(m, UntiedBias2d)]
        for i, conv in enumerate(convs):
            init_normal_(conv, stds[i] if i < len(stds) else stds[0], DIELEMAN_INIT["conv_bias"])
        for bias in biases:
            nn.init.constant_(bias.bias, DIELEMAN_INIT["conv_bias"])
        for m in self.dense.modules():
            if isinstance(m, nn.Linear):
                init_normal_(m, DIELEMAN_INIT["dense_std"], DIELEMAN_INIT["dense_bias"])

    def features(self, frame: Tensor) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> merged conv features ``(N, n_parts * part_features)``."""
        n = frame.shape[0]
        if self.viewpoints is not None:
            parts = self.viewpoints(frame)  # (N * 16, C, P, P), index 16 * n + 4 * view + part
        else:
            parts = center_crop(frame, self.config.input_size)
        feats = self.convs(parts).reshape(n, -1, self.part_features)
        if self.merge is not None:
            feats = self.merge(feats)
        return feats.flatten(1)

    def forward_frame(self, frame: Tensor, normalised: bool = True) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)``; ``normalised=False``: the warm-up output."""
        return self.tree(self.head(self.dense(self.features(frame))), normalised=normalised)

    def forward(self, x: Tensor, normalised: bool = True) -> Tensor:
        """Stamps ``(N, C, S, S)`` of any size (e.g. raw 424x424 RGB) -> ``(N, 37)`` cumulative fractions."""
        return self.forward_frame(self.frame(x), normalised)

    def forward_tta(self, x: Tensor) -> Tensor:
        """Mean of :meth:`forward` over the 8 dihedral transforms of the frame: ``(N, C, S, S) -> (N, 37)``."""
        frame = self.frame(x)
        views = all_dihedral(frame)  # (8, N, C, F, F)
        return self.forward_frame(views.flatten(0, 1)).unflatten(0, (8, frame.shape[0])).mean(dim=0)


# ---------------------------------------------------------------------------------------- lightning module
class MorphologyModel(L.LightningModule):
    """Dieleman et al. 2015 Galaxy Zoo morphology model (:class:`DielemanNet`) with training and metrics.

    Args:
        preset: a key of :data:`PRESETS` (``dieleman2015``, ``small``).
        **overrides: settings of :class:`MorphologyConfig` replacing the preset's.

    The hyper-parameters saved (and written to checkpoints) are the preset name plus every resolved
    setting, so a checkpoint rebuilds the same network even if a preset changes later.
    """

    TASK = "morphology"
    TARGET = "gz_answers"

    def __init__(self, preset: str = "small", **overrides: Any):
        super().__init__()
        self.config = MorphologyConfig.from_preset(preset, **overrides)
        self.preset = preset
        self.save_hyperparameters({"preset": preset, **self.config.to_dict()})
        self.net = DielemanNet(self.config)
        self.val_mse = MeanSquaredError(num_outputs=N_ANSWERS)
        self.test_mse = MeanSquaredError(num_outputs=N_ANSWERS)

    # --------------------------------------------------------------------------------------- inference
    def forward(self, x: Tensor, normalised: bool = True) -> Tensor:
        """``(N, C, S, S)`` stamps of any size -> ``(N, 37)`` Kaggle cumulative fractions."""
        return self.net(x, normalised)

    def predict_tensor(self, x: Tensor) -> Tensor:
        """Predictions ``(N, 37)``, averaged over the 8 dihedral transforms when ``tta`` is on."""
        return self.net.forward_tta(x) if self.config.tta else self.net(x)

    # ------------------------------------------------------------------------------------------ contract
    def data_config(self) -> dict[str, Any]:
        """Keyword arguments for :class:`models.datamodule.StampDataModule`."""
        augment = self.config.augment
        if augment == "morphology":  # Dieleman's +-4 px of the 424 px image = +-4/3 px of the 69 px view
            base = augment_preset("morphology")
            augment = augment_preset(
                "morphology", shift_px=base.shift_px * self.config.input_size / DIELEMAN_VIEW
            )
            augment = augment.to_dict()
        return {
            "batch_size": self.config.batch_size,
            "preprocess": replace(self.net.frame, normalise="none"),  # geometry only; forward normalises
            "augment": augment,
            "fill": "zero",
        }

    def card_fields(self) -> dict[str, Any]:
        """Model-card fields: architecture, input channels and size, normalisation, output names."""
        c = self.config
        return {
            "architecture": self.preset,
            "input_channels": c.input_channels,
            "input_size": None,
            "normalisation": self.net.frame.describe(),
            "output_names": list(ANSWER_COLUMNS),
            "view_size": c.input_size,
            "frame_size": c.frame_size,
            "cyclic_pool": c.cyclic_pool,
            "tta": c.tta,
            "parameters": count_parameters(self.net),
        }

    # ------------------------------------------------------------------------------------------ training
    def use_tree(self, step: int | None = None) -> bool:
        """Whether training step ``step`` (default: the current one) uses the tree (False during warm-up)."""
        step = self.global_step if step is None else step
        return step >= self.config.unnormalised_warmup_steps

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.mse_loss(self.net(x, normalised=self.use_tree()), y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_mse.update(self.net(x), y)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_mse.update(self.predict_tensor(x), y)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.predict_tensor(x)

    def on_validation_epoch_end(self) -> None:
        self._log_rmse("val", self.val_mse)

    def on_test_epoch_end(self) -> None:
        self._log_rmse("test", self.test_mse)

    def _log_rmse(self, stage: str, metric: MeanSquaredError) -> None:
        if int(metric.total) == 0:  # nothing was seen (e.g. an empty split)
            return
        values = rmse_by_question(metric.compute())
        metric.reset()
        for name, value in values.items():
            self.log(f"{stage}/{name}", value)

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.config
        decay = [p for n, p in self.named_parameters() if not n.endswith("bias")]
        no_decay = [p for n, p in self.named_parameters() if n.endswith("bias")]
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if c.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0
            )
        else:
            opt = torch.optim.Adam(groups, lr=c.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda _step: lr_factor(self.training_progress(), c.lr_milestones, c.lr_gamma)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        total = self.trainer.estimated_stepping_batches
        self._planned_steps = float(total) if math.isfinite(total) and total > 0 else math.inf

    def training_progress(self) -> float:
        """Fraction of the planned training done, in [0, 1], which places the learning-rate drops.

        The largest of ``global_step / planned steps`` (``max_epochs`` or ``max_steps``), the fraction of
        the wall-time limit used when the trainer has one (``max_time``), and the fraction of the CPU-time
        budget used (:class:`models.budget.CpuTimeLimit`): a run cut by a time limit still gets its late
        drops (Dieleman's 1800 and 2300 of 2500 chunks), on the same clock that stops it. Bounded by
        epochs or steps, the drops happen at fixed steps, so the same seed gives the same numbers; bounded by
        time, they depend on the machine (wall time also on its load), like the stopping step itself.
        """
        trainer = self._trainer
        if trainer is None:
            return 0.0
        planned = getattr(self, "_planned_steps", math.inf)
        progress = trainer.global_step / planned if math.isfinite(planned) else 0.0
        for callback in trainer.callbacks:
            if isinstance(callback, Timer) and callback.time_remaining() is not None:
                elapsed = callback.time_elapsed()
                progress = max(progress, elapsed / max(elapsed + callback.time_remaining(), 1e-9))
            elif isinstance(callback, CpuTimeLimit):
                progress = max(progress, callback.fraction_used())
        return min(progress, 1.0)


# ------------------------------------------------------------------------------------------------ helpers
def lr_factor(progress: float, milestones: tuple[float, ...], gamma: float) -> float:
    """Learning-rate multiplier at ``progress`` (fraction of training done): ``gamma`` per milestone passed."""
    return gamma ** sum(progress >= m for m in milestones)


def rmse_by_question(mse_per_answer: Tensor) -> dict[str, Tensor]:
    """``{"rmse": over all 37 answers, "rmse_q1": .., "rmse_q11": ..}`` from the ``(37,)`` MSE of each answer.

    Every answer has the same number of samples, so the RMSE of a set of answers is the square root of the
    mean of their MSEs (Kaggle's metric is the one over all 37).
    """
    out = {"rmse": mse_per_answer.mean().sqrt()}
    for q in QUESTIONS:
        out[f"rmse_{q.name.lower()}"] = mse_per_answer[QUESTION_SLICES[q.name]].mean().sqrt()
    return out
