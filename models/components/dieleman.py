"""The Dieleman et al. 2015 galaxy morphology network as plain ``nn.Module``s (no Lightning).

- :class:`DielemanFrame`: stamps ``(N, C, S, S)`` of any size -> the model frame ``(N, C, F, F)``
  (crop, resample, per-stamp normalisation); a picklable callable that the data module also uses.
- :class:`GalaxyZooNet`: the base of every morphology network (:class:`DielemanNet`,
  :class:`models.components.resnet.ResNetNet`): the frame, the Galaxy Zoo tree output and the forward
  passes (plain and averaged over the 8 dihedral transforms) around the subclass's ``logits``.
- :class:`DielemanNet`: raw stamps ``(N, C, S, S)`` -> ``(N, 37)`` Galaxy Zoo cumulative vote fractions,
  built from a :class:`models.morphology_config.MorphologyConfig`: frame, 16 viewpoints
  (:class:`pipeline.prep.preprocess.DielemanViewpoints`), shared conv stack, merge, maxout dense layers and
  the Galaxy Zoo tree output (:mod:`models.components.layers`). The steps and their shapes are in
  :mod:`models.morphology`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data_catalogs.galaxy_zoo import N_ANSWERS
from models.components.layers import (
    CyclicPool,
    GalaxyZooTree,
    Maxout,
    UntiedBias2d,
    conv_chunk_items,
    conv_output_shape,
    conv_stack,
    in_chunks,
    init_normal_,
)
from models.morphology_config import MorphologyConfig
from pipeline.prep import (
    DielemanViewpoints,
    all_dihedral,
    as_batch,
    center_crop,
    crop_and_downsample,
    robust_sigma,
)

#: Stamps larger than this many frames are raw survey images that get Dieleman's centre crop.
RAW_FACTOR = 2
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


def model_frame(config: MorphologyConfig) -> DielemanFrame:
    """The :class:`DielemanFrame` of a config: its view and frame sides, crop fraction and normalisation."""
    c = config
    return DielemanFrame(c.input_size, c.frame_size, c.crop_fraction, c.normalise, c.native_scale)


class GalaxyZooNet(nn.Module):
    """Base of the morphology networks: raw stamps ``(N, C, S, S)`` -> ``(N, 37)`` cumulative fractions.

    A subclass sets ``self.frame`` (a :class:`DielemanFrame`: the geometry and normalisation every
    morphology network shares, so they all score the same stores) and ``self.tree``
    (:class:`models.components.layers.GalaxyZooTree`) and implements :meth:`logits`.
    """

    frame: DielemanFrame
    tree: GalaxyZooTree

    def logits(self, frame: Tensor) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)`` logits of the tree output."""
        raise NotImplementedError

    def forward_frame(self, frame: Tensor, normalised: bool = True) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)``; ``normalised=False``: the warm-up output."""
        return self.tree(self.logits(frame), normalised=normalised)

    def forward(self, x: Tensor, normalised: bool = True) -> Tensor:
        """Stamps ``(N, C, S, S)`` of any size (e.g. raw 424x424 RGB) -> ``(N, 37)`` cumulative fractions."""
        return self.forward_frame(self.frame(x), normalised)

    def forward_tta(self, x: Tensor) -> Tensor:
        """Mean of :meth:`forward` over the 8 dihedral transforms of the frame: ``(N, C, S, S) -> (N, 37)``."""
        frame = self.frame(x)
        views = all_dihedral(frame)  # (8, N, C, F, F)
        return self.forward_frame(views.flatten(0, 1)).unflatten(0, (8, frame.shape[0])).mean(dim=0)


class DielemanNet(GalaxyZooNet):
    """Raw stamps ``(N, C, S, S)`` -> ``(N, 37)`` cumulative fractions, built from a :class:`MorphologyConfig`.

    The network of :class:`models.morphology.MorphologyModel` (its state dict keys are ``net.<name>``:
    ``convs``, ``dense``, ``head``; ``frame``, ``viewpoints``, ``merge`` and ``tree`` hold no weights).
    """

    def __init__(self, config: MorphologyConfig):
        super().__init__()
        c = config
        self.config = c
        self.frame = model_frame(c)
        self.viewpoints = DielemanViewpoints(c.part_size, c.input_size) if c.viewpoints else None
        conv_in = c.part_size if c.viewpoints else c.input_size
        self.convs = conv_stack(c.input_channels, c.conv, in_size=conv_in, untied_biases=c.untied_biases)
        self.part_features = int(np.prod(conv_output_shape(c.conv, c.input_channels, conv_in)))
        self.chunk_items = conv_chunk_items(c.conv, conv_in)
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
        # Channels-last conv stack (after the initialisation, which draws in memory order): oneDNN's
        # convolutions and max-pools are 1.5x faster in it on CPU for these few-channel layers
        # (benchmarks/train_speed.py); the numbers are the same up to rounding.
        self.convs.to(memory_format=torch.channels_last)

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
        parts = parts.contiguous(memory_format=torch.channels_last)
        feats = in_chunks(self.convs, parts, self.chunk_items).reshape(n, -1, self.part_features)
        if self.merge is not None:
            feats = self.merge(feats)
        return feats.flatten(1)

    def logits(self, frame: Tensor) -> Tensor:
        """Framed stamps ``(N, C, F, F)`` -> ``(N, 37)`` logits: features, maxout layers, linear head."""
        return self.head(self.dense(self.features(frame)))
