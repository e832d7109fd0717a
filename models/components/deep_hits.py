"""The Cabrera-Vives et al. 2017 (Deep-HiTS) real-bogus network as plain ``nn.Module``s (no Lightning).

- :class:`RealBogusInput`: raw stamps ``(N, C, H, W)`` -> network input ``(N, C', S, S)``, idempotent
  (optional central crop, then Deep-HiTS min-max, ZTF braai unit L2 norm, ...); a picklable callable that
  the data module also uses.
- :class:`DeepHitsNet`: stamps ``(N, C, S, S)`` -> logits ``(N, K)``, built from a
  :class:`models.realbogus_config.RealBogusConfig`: input normalisation, the 4 rotations
  (:func:`models.components.layers.cyclic_slice`), shared conv stack, merge, dense layers. The steps and
  their shapes are in :mod:`models.realbogus`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from models.components.layers import (
    CyclicPool,
    conv_chunk_items,
    conv_output_shape,
    conv_stack,
    cyclic_slice,
    in_chunks,
    make_activation,
)
from models.realbogus_config import RealBogusConfig
from pipeline.prep import as_batch, center_crop, deep_hits_normalize, minmax_scale, ztf_normalize


@dataclass(frozen=True)
class RealBogusInput:
    """Raw stamps -> network input, idempotent (see :mod:`models.realbogus`). A picklable callable.

    ``(N, C, H, W)`` -> ``(N, C', S, S)`` float32: ``C' = C + 1`` when ``add_snr`` appends the SNR channel
    to stamps of ``channels`` channels (stamps that already have ``channels + 1`` are only scaled); ``S`` is
    ``size`` for ``ztf`` (smaller stamps padded), else the input side. With ``crop``, stamps larger than
    ``size`` are first cut to their central ``size x size`` pixels (the ``ztf_fast`` preset: the central
    31x31 of the 63x63 alert cutouts), so training and scoring feed the network the same pixels.
    """

    normalisation: str
    channels: int
    size: int
    add_snr: bool = False
    difference_channel: int = 2
    crop: bool = False

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        t = as_batch(x)
        if self.crop and max(t.shape[-2:]) > self.size:
            t = center_crop(t, (min(t.shape[-2], self.size), min(t.shape[-1], self.size)))
        if self.normalisation == "deep_hits":
            add = self.add_snr and t.shape[1] == self.channels
            return deep_hits_normalize(t, add_snr=add, difference_channel=self.difference_channel)
        if self.normalisation == "ztf":
            return ztf_normalize(t, size=self.size)
        if self.normalisation == "minmax":
            return minmax_scale(t)
        return t

    def describe(self) -> str:
        """One line for the model card."""
        scaling = {
            "deep_hits": "Deep-HiTS: each channel of each stamp min-max scaled to [0, 1]"
            + (" after appending difference / robust sigma as an SNR channel" if self.add_snr else ""),
            "ztf": f"ZTF braai: NaN -> 0, each channel of each stamp divided by its L2 norm, padded to "
            f"{self.size}x{self.size} with 1e-9 at the bottom/right",
            "minmax": "each channel of each stamp min-max scaled to [0, 1]",
            "none": "values as stored",
        }[self.normalisation]
        if self.crop:
            return f"central {self.size}x{self.size} pixels of larger stamps, then {scaling}"
        return scaling


class DeepHitsNet(nn.Module):
    """Raw or normalised stamps ``(N, C, S, S)`` -> logits ``(N, K)``, built from a :class:`RealBogusConfig`.

    The network of :class:`models.realbogus.RealBogusModel` (its state dict keys are ``net.<name>``:
    ``convs``, ``dense``, ``head``; ``normalise`` and ``merge`` hold no weights).
    """

    def __init__(self, config: RealBogusConfig):
        super().__init__()
        c = config
        self.config = c
        self.normalise = RealBogusInput(
            c.normalisation, c.input_channels, c.input_size, c.add_snr, c.difference_channel, c.crop
        )
        self.convs = conv_stack(
            c.network_channels, c.conv, activation="leaky_relu", negative_slope=c.negative_slope
        )
        self.rotation_features = int(np.prod(conv_output_shape(c.conv, c.network_channels, c.input_size)))
        self.chunk_items = conv_chunk_items(c.conv, c.input_size)
        self.merge = None if c.merge == "concat" else CyclicPool(4, c.merge)
        width = self.rotation_features * (4 if self.merge is None else 1)
        dense: list[nn.Module] = []
        for units in c.dense_units:
            dense += [
                nn.Linear(width, units),
                make_activation("leaky_relu", c.negative_slope),
                nn.Dropout(c.dropout),
            ]
            width = units
        self.dense = nn.Sequential(*dense)
        self.head = nn.Linear(width, len(c.class_names))
        if c.init == "he":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight, a=c.negative_slope, nonlinearity="leaky_relu")
                    nn.init.zeros_(module.bias)
        if c.channels_last:
            self.convs.to(memory_format=torch.channels_last)

    def features(self, x: Tensor) -> Tensor:
        """Normalised stamps ``(N, C', S, S)`` -> merged rotation features ``(N, 4 * F)`` or ``(N, F)``."""
        n = x.shape[0]
        parts = cyclic_slice(x)  # (4 * N, C', S, S), rotation-major
        if self.config.channels_last:
            parts = parts.contiguous(memory_format=torch.channels_last)
        feats = in_chunks(self.convs, parts, self.chunk_items)
        feats = feats.reshape(4, n, self.rotation_features).transpose(0, 1)  # (N, 4, F)
        if self.merge is not None:
            return self.merge(feats).flatten(1)
        return feats.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Stamps ``(N, C, S, S)`` (raw or normalised) -> logits ``(N, K)``."""
        return self.head(self.dense(self.features(self.normalise(x))))
