"""Turn raw stamps into the tensor a model takes: one function shared by training and scoring.

A batch is prepared in three steps, always in this order (docs/design.md, models/datamodule.py):

1. **fill** masked and NaN pixels (:func:`pipeline.prep.preprocess.fill_masked`, ``fill`` = ``"zero"``,
   ``"median"`` or a number), keeping the mask aside when ``keep_mask`` asks for mask channels;
2. **preprocess** the stamp channels with the named preprocessing of
   :func:`pipeline.prep.preprocess.get_preprocessor` (``dieleman``, ``deep_hits``, ``ztf``, ``minmax``) or a
   callable ``(N, C, H, W) -> (N, C', H', W')``;
3. **append the mask channels** (``keep_mask`` = ``"any"``: 1 channel, ``"each"``: C channels) after the
   preprocessed channels.

Training then augments (training batches only); scoring never does. Both use :class:`BatchPrep` so that a
model is scored on exactly the inputs it was trained on. The settings come from the ``data_config`` of a
model card (the :class:`models.datamodule.StampDataModule` keyword arguments: ``preprocess``,
``preprocess_kwargs``, ``fill``, ``keep_mask``; other keys such as ``batch_size`` and ``augment`` are
ignored here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.prep.preprocess import fill_masked, get_preprocessor, n_mask_channels

#: Keys of a ``data_config`` that decide how a batch is prepared.
PREP_KEYS = ("preprocess", "preprocess_kwargs", "fill", "keep_mask")

Preprocess = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class BatchPrep:
    """Fill, preprocess and mask-channel settings of a model; call it on a batch of raw stamps.

    Attributes:
        preprocess: ``(N, C, H, W) -> (N, C', H', W')`` float32 tensor function, or None for none.
        fill: how masked/NaN pixels are replaced (``"zero"``, ``"median"`` or a number).
        keep_mask: ``"none"``, ``"any"`` or ``"each"``: mask channels appended after preprocessing.
        preprocess_name: the preprocessing's name when it was given by name (for logs and catalogs).
    """

    preprocess: Preprocess | None = None
    fill: str | float = "zero"
    keep_mask: str = "none"
    preprocess_name: str | None = None

    @classmethod
    def from_config(cls, data_config: Mapping[str, Any] | None) -> BatchPrep:
        """Settings from a ``data_config`` mapping (model card or ``model.data_config()``).

        ``preprocess`` may be a name of :data:`pipeline.prep.preprocess.PREPROCESSORS` (bound with
        ``preprocess_kwargs``), a callable, or None/``"none"``.
        """
        cfg = dict(data_config or {})
        pre = cfg.get("preprocess")
        if isinstance(pre, str) or pre is None:
            fn = get_preprocessor(pre, **(cfg.get("preprocess_kwargs") or {}))
            name = None if pre in (None, "none") else pre
        elif callable(pre):
            fn, name = pre, type(pre).__name__
        else:
            raise ValueError(f"data_config preprocess must be a name, a callable or None, got {pre!r}")
        return cls(fn, cfg.get("fill", "zero"), cfg.get("keep_mask", "none"), name)

    @property
    def needs_mask(self) -> bool:
        """Whether the result depends on the store's ``/mask`` beyond the zeros already in ``/stamps``
        (mask channels are kept, or masked pixels are filled with something other than 0)."""
        return self.keep_mask != "none" or self.fill != "zero"

    def n_aux(self, channels: int) -> int:
        """Mask channels appended for stamps of ``channels`` channels (0, 1 or ``channels``)."""
        return n_mask_channels(self.keep_mask, channels)

    def __call__(self, stamps: Tensor | np.ndarray, mask: Tensor | np.ndarray | None = None) -> Tensor:
        """Prepare one batch.

        Args:
            stamps: ``(B, C, H, W)`` raw stamps (any float dtype, any byte order), in store units.
            mask: ``(B, C, H, W)`` bool/uint8, True where a pixel is not valid, or None (NaN pixels are
                treated as masked either way).

        Returns:
            ``(B, C' + M, H', W')`` contiguous float32 tensor on the device of ``stamps``: the
            preprocessed channels followed by ``M = n_aux(C)`` mask channels.
        """
        channels = stamps.shape[1]
        full = fill_masked(stamps, mask, fill=self.fill, keep_mask=self.keep_mask)
        x, aux = full[:, :channels], full[:, channels:]
        if self.preprocess is not None:
            x = self.preprocess(x)
        if aux.shape[1]:
            if aux.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"keep_mask={self.keep_mask!r} needs a preprocessing that keeps the stamp size; "
                    f"it maps {tuple(aux.shape[-2:])} to {tuple(x.shape[-2:])}"
                )
            x = torch.cat([x, aux], dim=1)
        return x.contiguous()


def prepare_batch(
    stamps: Tensor | np.ndarray, mask: Tensor | np.ndarray | None, data_config: Mapping[str, Any] | None
) -> Tensor:
    """``BatchPrep.from_config(data_config)(stamps, mask)``: ``(B, C, H, W)`` raw -> ``(B, C'', H', W')``."""
    return BatchPrep.from_config(data_config)(stamps, mask)
