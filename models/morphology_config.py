"""Every setting of the Dieleman morphology model (network and training) and its presets.

:class:`MorphologyConfig` is what :class:`models.components.dieleman.DielemanNet` is built from and what
:class:`models.morphology.MorphologyModel` trains with; its :meth:`~MorphologyConfig.to_dict` (with the
preset name) is the hyper-parameters a checkpoint saves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from models.components import CYCLIC_POOLS, conv_spec_tuples
from models.presets import PresetConfig, float_tuple, int_tuple

#: Dieleman's Kaggle crop: the centre 207 px of the 424 px images.
KAGGLE_CROP_FRACTION = 207 / 424
NORMALISATIONS = ("none", "max", "asinh")
OPTIMIZERS = ("sgd", "adam")
INITS = ("dieleman", "torch")
#: ``dieleman``: :class:`models.components.dieleman.DielemanNet`; ``resnet``:
#: :class:`models.components.resnet.ResNetNet` (the ``resnet_*`` settings).
BACKBONES = ("dieleman", "resnet")
#: Settings of the ResNet backbone only; left out of :meth:`MorphologyConfig.to_dict` for the Dieleman
#: backbone, so its hyper-parameters (and checkpoints) are those saved before the ResNet existed.
RESNET_FIELDS = ("backbone", "resnet_widths", "resnet_blocks", "resnet_stem")

#: ``dieleman2015``: the paper's network (about 42 million parameters) and training; stamps max-normalised
#: (for Kaggle JPEGs, already in [0, 1] with a bright core, this is close to the paper's raw values; pass
#: ``normalise="none"`` for exactly those). ``small``: the same structure for CPU runs of minutes, tuned for
#: real SDSS colour JPEGs (the Kaggle images; ingest them framed 299 -> 65 px, :mod:`models.frame_fit`) on
#: an inner split of the 800 training galaxies of the real dev set (600 fit / 200 validation, never its 214
#: test galaxies), 240 CPU-s of one thread per run: a 45 px view of Dieleman's 207/424 crop in a 65 px frame
#: cut into 16 parts of 29 px, 8/16/32/32 filters with the two 3x3 convolutions padded, tied biases, two
#: maxout layers of 128, dropout 0.25, PyTorch's initialisation, Adam lr 1e-3 after a 200-step linear
#: warm-up, batches of 32, each stamp divided by its max, and exact augmentations only (a dihedral
#: transform, a whole-pixel shift of up to 2 px, Gaussian noise of half each stamp's own noise). Measured
#: on the real inner split (validation RMSE; training mean 0.173, ridge 0.159): ``max`` 0.117, values as
#: stored 0.122, the asinh stretch made for linear fluxes 0.131 (the JPEGs are already stretched);
#: rotations and zooms by interpolation 0.133 (slower steps, fewer of them); dropout 0.5 with maxout 256
#: 0.121-0.122 over two seeds (no better); lr 2e-3 with maxout 256 collapsed to the mean (0.173), as did one
#: lr 1e-3 run on 500 galaxies without warm-up (dead ReLUs after the first large Adam steps).
PRESETS: dict[str, dict[str, Any]] = {
    "dieleman2015": {"normalise": "max"},
    "small": {
        "input_size": 45,
        "part_size": 29,
        "native_scale": True,
        "normalise": "max",
        "conv": ((8, 6, 0, 2), (16, 5, 0, 2), (32, 3, 1, 1), (32, 3, 1, 2)),
        "untied_biases": False,
        "dense_units": (128, 128),
        "dropout": 0.25,
        "init": "torch",
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_warmup_steps": 200,
        "unnormalised_warmup_steps": 0,
        "batch_size": 32,
        "augment": {"dihedral": True, "shift_px": 2.0, "integer_shift": True, "noise_level": 0.5},
    },
}
#: Training settings the ResNet presets take from ``small`` (so that the backbones compare at equal training).
SHARED_WITH_SMALL = ("normalise", "optimizer", "lr", "unnormalised_warmup_steps", "batch_size", "augment")
#: The ResNet presets (:class:`models.components.resnet.ResNetNet`). ``resnet18``: the ResNet-18 layout on
#: Dieleman's view of a 424 px image (the centre 207 px, area-averaged 3x to 69 px; no margin: there are no
#: 45-degree viewpoints), with the training of ``small`` (:data:`SHARED_WITH_SMALL`) and no dropout; the
#: from-scratch reference of benchmarks/morphology_real.py (0.79 CPU-s per training step of 32 stamps on one
#: thread, against ``small``'s 0.13). Measured there and not kept as a preset: the same layout at a quarter
#: of the widths (16, 32, 64, 128; 0.71 million parameters, 0.10 CPU-s per step), which tied ``small`` from
#: scratch on the real dev set at 200 CPU-s (test RMSE 0.1343 against 0.1340) and lost to the plain CNN.
RESNET_PRESETS: dict[str, dict[str, Any]] = {
    "resnet18": {
        **{key: PRESETS["small"][key] for key in SHARED_WITH_SMALL},
        "backbone": "resnet",
        "viewpoints": False,
        "context": False,
        "input_size": 69,
        "resnet_widths": (64, 128, 256, 512),
        "resnet_blocks": (2, 2, 2, 2),
        "resnet_stem": (7, 2, 2),
        "dropout": 0.0,
        "init": "torch",
    }
}
PRESETS.update(RESNET_PRESETS)


@dataclass(frozen=True)
class MorphologyConfig(PresetConfig):
    """Every setting of the morphology model (a preset plus overrides); JSON-able via :meth:`to_dict`.

    Attributes:
        input_channels: channels of the stamps (3 for Kaggle RGB and g, r, i).
        input_size: side ``V`` of the view the parts are cut from, in frame pixels (69).
        part_size: side of each of the 16 parts (45).
        context: give the frame a margin (``F ~ V * sqrt(2)``, even margin) so the 45-degree views are
            filled with pixels instead of zeros.
        crop_fraction: fraction of a raw image's side (``S > 2 F``) that the view covers (207/424).
        native_scale: stamps of at most ``2 F`` px are at the model's pixel scale (``False``: they show
            the view's field): centre-cropped to the frame, never resampled (see
            :class:`models.components.dieleman.DielemanFrame`).
        normalise: ``none`` (values as stored: Kaggle JPEGs are in [0, 1]), ``max`` (each stamp divided
            by its largest absolute value over channels and pixels, for fluxes of any scale) or ``asinh``
            (``asinh(x / noise)`` then ``max``: a luptitude-like stretch of raw fluxes, see
            :class:`models.components.dieleman.DielemanFrame`).
        viewpoints: cut the 16 viewpoints (False: one conv stack on the whole view, the plain-CNN baseline).
        conv: conv blocks ``[filters, kernel, padding, pool]`` (:class:`models.components.layers.ConvSpec`).
        untied_biases: one conv bias per channel and pixel (Dieleman's cuda-convnet layers).
        cyclic_pool: None (concatenate the 16 part features) or ``mean``/``max``/``rms`` pooling over the
            4 rotated parts of each view.
        dense_units: maxout units per dense layer (2048, 2048).
        maxout_pieces: linear units per maxout unit (2).
        dropout: dropout probability before each dense layer (0.5).
        init: ``dieleman`` (:data:`models.components.dieleman.DIELEMAN_INIT`) or ``torch`` (PyTorch's
            default initialisation).
        tree_eps: epsilon of the question normalisation (1e-12).
        optimizer: ``sgd`` (with ``momentum``, ``nesterov``) or ``adam``.
        lr: learning rate; lr_milestones: fractions of the training (steps, or wall time under ``max_time``:
            :meth:`models.morphology.MorphologyModel.training_progress`) after which it is multiplied by
            ``lr_gamma``; weight_decay: L2 on weights only (never on biases).
        lr_warmup_steps: first training steps over which the learning rate rises linearly to ``lr`` (0: off;
            keeps Adam's first large steps from killing the ReLUs of a small network).
        unnormalised_warmup_steps: first training steps on ``clip(logits, 0, 1)`` without the tree.
        batch_size: stamps per batch.
        augment: augmentation for training (``pipeline.prep.augment`` preset name, a dict, or None). The
            ``morphology`` preset's shifts are rescaled from the 69 px view to ``input_size``.
        tta: average test and predict outputs over the 8 dihedral transforms of the frame.
        backbone: ``dieleman`` (the network above) or ``resnet`` (:class:`models.components.resnet.ResNetNet`
            on the central ``input_size`` px of the same frame; needs ``viewpoints=False`` and
            ``init="torch"``; ``conv``, ``dense_units``, ``maxout_pieces``, ``untied_biases`` and
            ``cyclic_pool`` are not used).
        resnet_widths: channels of each ResNet stage (ResNet-18: 64, 128, 256, 512).
        resnet_blocks: basic blocks per stage (ResNet-18: 2, 2, 2, 2).
        resnet_stem: ``(kernel, stride, max-pool stride)`` of the stem convolution (ResNet-18: 7, 2, 2; a
            max-pool stride of 1 means no max-pool).
    """

    KIND = "morphology"
    PRESETS = PRESETS

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
    lr_warmup_steps: int = 0
    unnormalised_warmup_steps: int = 625
    batch_size: int = 16
    augment: str | dict | None = "morphology"
    tta: bool = False
    backbone: str = "dieleman"
    resnet_widths: tuple[int, ...] = (64, 128, 256, 512)
    resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)
    resnet_stem: tuple[int, int, int] = (7, 2, 2)

    def __post_init__(self) -> None:
        self._normalise_fields(
            conv=conv_spec_tuples,
            dense_units=int_tuple,
            lr_milestones=float_tuple,
            resnet_widths=int_tuple,
            resnet_blocks=int_tuple,
            resnet_stem=int_tuple,
        )
        self._check_choices(
            {
                "normalise": (self.normalise, NORMALISATIONS),
                "optimizer": (self.optimizer, OPTIMIZERS),
                "init": (self.init, INITS),
                "backbone": (self.backbone, BACKBONES),
            }
        )
        if self.backbone == "resnet":
            self._check_resnet()
        if self.viewpoints and self.part_size > self.input_size:  # parts are cut only for viewpoints
            raise ValueError(f"part_size {self.part_size} is larger than input_size {self.input_size}")
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.cyclic_pool is not None and self.cyclic_pool not in CYCLIC_POOLS:
            raise ValueError(f"cyclic_pool must be None or one of {CYCLIC_POOLS}, got {self.cyclic_pool!r}")

    def _check_resnet(self) -> None:
        if self.viewpoints or self.init != "torch":
            raise ValueError(
                f"backbone 'resnet' needs viewpoints=False and init='torch', got viewpoints={self.viewpoints} "
                f"and init={self.init!r}"
            )
        widths, blocks, stem = self.resnet_widths, self.resnet_blocks, self.resnet_stem
        if not widths or len(widths) != len(blocks) or min(widths) < 1 or min(blocks) < 1:
            raise ValueError(
                f"resnet_widths {list(widths)} and resnet_blocks {list(blocks)} need one positive number "
                "per stage each"
            )
        if len(stem) != 3 or min(stem) < 1:
            raise ValueError(f"resnet_stem must be [kernel, stride, pool] >= 1, got {list(stem)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; the ResNet settings (:data:`RESNET_FIELDS`) only for ``backbone="resnet"``."""
        out = super().to_dict()
        if self.backbone == "dieleman":
            for name in RESNET_FIELDS:
                out.pop(name)
        if (
            not self.lr_warmup_steps
        ):  # hyper-parameters of configs without it are those saved before it existed
            out.pop("lr_warmup_steps")
        return out

    @property
    def frame_size(self) -> int:
        """Side ``F`` of the model frame: ``V`` or ``V + 2 * ceil(V * (sqrt(2) - 1) / 2)`` with context."""
        if not self.context:
            return self.input_size
        return self.input_size + 2 * math.ceil(self.input_size * (math.sqrt(2.0) - 1.0) / 2.0)
