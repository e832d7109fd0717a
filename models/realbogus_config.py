"""Every setting of the Deep-HiTS real-bogus model (network and training) and its presets.

:class:`RealBogusConfig` is what :class:`models.components.deep_hits.DeepHitsNet` is built from and what
:class:`models.realbogus.RealBogusModel` trains with; its :meth:`~RealBogusConfig.to_dict` (with the preset
name) is the hyper-parameters a checkpoint saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.components import CYCLIC_POOLS, conv_spec_tuples
from models.presets import PresetConfig, int_tuple, str_tuple

#: Deep-HiTS conv stack ``[filters, kernel, padding, pool]``: 21 -> 24 -> 24 -> 12 -> 12 -> 12 -> 6.
DEEP_HITS_CONV: tuple[tuple[int, int, int, int], ...] = (
    (32, 4, 3, 1),
    (32, 3, 1, 2),
    (64, 3, 1, 1),
    (64, 3, 1, 1),
    (64, 3, 1, 2),
)
#: ``ztf_fast`` conv stack on the central 31x31: 16@4x4 pad 3 + pool (-> 17), 32@3x3 twice + pool (-> 8);
#: 0.040 GFLOP per stamp with the 4 rotations (braai's VGG6 ~0.04), 30x fewer than ``ztf``'s 1.19.
ZTF_FAST_CONV: tuple[tuple[int, int, int, int], ...] = ((16, 4, 3, 2), (32, 3, 1, 1), (32, 3, 1, 2))
REAL_BOGUS_CLASSES = ("bogus", "real")
#: The ALeRCE stamp classifier's classes (Carrasco-Davis et al. 2021), for ``class_names``.
ALERCE_STAMP_CLASSES = ("AGN", "SN", "VS", "asteroid", "bogus")
MERGES = ("concat", *CYCLIC_POOLS)
NORMALISATIONS = ("deep_hits", "ztf", "minmax", "none")
OPTIMIZERS = ("sgd", "adam")
INITS = ("he", "torch")

#: ``hits``: Deep-HiTS on 4x21x21 template, science, difference, SNR difference (SGD lr 0.04, batch 50).
#: ``ztf``: the same network on 3x63x63 science, template, difference with the braai normalisation, trained
#: with Adam (lr 1e-3): on unit-L2-norm stamps (pixels ~1/63) plain SGD at 0.04 barely moves the first
#: layers (simulated ZTF, one epoch of 4,800 stamps: validation AUC 0.84 with SGD, 0.99 with Adam).
#: ``ztf_fast``: ``ztf`` on the central 31x31 of the 63x63 cutouts (cropped in the model's input step) with
#: :data:`ZTF_FAST_CONV`, for >= 250 alerts/s on one core (benchmarks/realbogus_speed.py).
PRESETS: dict[str, dict[str, Any]] = {
    "hits": {},
    "ztf": {
        "input_channels": 3,
        "channel_names": ("science", "template", "difference"),
        "input_size": 63,
        "normalisation": "ztf",
        "optimizer": "adam",
        "lr": 1e-3,
    },
}
PRESETS["ztf_fast"] = {**PRESETS["ztf"], "input_size": 31, "crop": True, "conv": ZTF_FAST_CONV}


@dataclass(frozen=True)
class RealBogusConfig(PresetConfig):
    """Every setting of the real-bogus model (a preset plus overrides); JSON-able via :meth:`to_dict`.

    Attributes:
        input_channels: channels of the stored stamps (4 for HiTS, 3 for ZTF).
        channel_names: the channel order the preset expects (for the model card; stores are not renamed).
        input_size: side of the network input in pixels (21 HiTS, 63 ZTF, 31 ZTF fast).
        crop: cut stamps larger than ``input_size`` to their central ``input_size x input_size`` pixels in
            the model's input step (:class:`models.components.deep_hits.RealBogusInput`, so training and
            scoring see the same pixels); False: a larger stamp is an error (``ztf``) or passes as is.
        normalisation: ``deep_hits`` (per-stamp, per-channel min-max to [0, 1]), ``ztf`` (per-stamp,
            per-channel unit L2 norm after NaN -> 0, padded to ``input_size``), ``minmax`` or ``none``.
        add_snr: ``deep_hits`` only: append the SNR difference (difference / robust sigma) to stores that
            lack it (the network then sees ``input_channels + 1`` channels).
        difference_channel: index of the difference channel (for ``add_snr``).
        conv: conv blocks ``[filters, kernel, padding, pool]`` (:class:`models.components.layers.ConvSpec`).
        negative_slope: leaky ReLU slope (0.01).
        merge: ``concat`` the 4 rotation features (the paper) or pool them: ``mean`` / ``max`` / ``rms``.
        dense_units: fully connected layers (64, 64); dropout: after each of them (0.5).
        class_names: output classes; ``bogus_class`` is the one whose complement is the real score.
        target: the store label holding the class index (``real`` for two classes).
        optimizer: ``sgd`` (with ``momentum``) or ``adam``; lr: learning rate; weight_decay: L2 on weights.
        lr_step: halve (``lr_gamma``) the learning rate every this many steps (0: constant).
        batch_size: stamps per batch.
        augment: training augmentation (``pipeline.prep.augment`` preset name, a dict, or None).
        channels_last: run the conv stack in channels-last memory format (1.6x faster on CPU).
        calibrate: fit a temperature on validation data after training.
        threshold_fpr: false positive rate on validation data that the card's ``threshold`` gives.
        ece_bins: bins of the expected calibration error.
    """

    KIND = "realbogus"
    PRESETS = PRESETS

    input_channels: int = 4
    channel_names: tuple[str, ...] = ("template", "science", "difference", "snr")
    input_size: int = 21
    crop: bool = False
    normalisation: str = "deep_hits"
    add_snr: bool = False
    difference_channel: int = 2
    conv: tuple[tuple[int, int, int, int], ...] = DEEP_HITS_CONV
    negative_slope: float = 0.01
    merge: str = "concat"
    dense_units: tuple[int, ...] = (64, 64)
    dropout: float = 0.5
    init: str = "he"
    class_names: tuple[str, ...] = REAL_BOGUS_CLASSES
    bogus_class: str = "bogus"
    target: str = "real"
    optimizer: str = "sgd"
    lr: float = 0.04
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_step: int = 0
    lr_gamma: float = 0.5
    batch_size: int = 50
    augment: str | dict | None = "realbogus"
    channels_last: bool = True
    calibrate: bool = True
    threshold_fpr: float = 0.01
    ece_bins: int = 15

    def __post_init__(self) -> None:
        self._normalise_fields(
            conv=conv_spec_tuples, dense_units=int_tuple, class_names=str_tuple, channel_names=str_tuple
        )
        self._check_choices(
            {
                "normalisation": (self.normalisation, NORMALISATIONS),
                "merge": (self.merge, MERGES),
                "optimizer": (self.optimizer, OPTIMIZERS),
                "init": (self.init, INITS),
            }
        )
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be 2 or more distinct names, got {self.class_names}")
        if self.bogus_class not in self.class_names:
            raise ValueError(f"bogus_class {self.bogus_class!r} is not one of {self.class_names}")
        if self.add_snr and self.normalisation != "deep_hits":
            raise ValueError("add_snr needs normalisation='deep_hits'")
        if not 0 < self.threshold_fpr < 1:
            raise ValueError(f"threshold_fpr must be in (0, 1), got {self.threshold_fpr}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; ``crop`` only when set, so the presets without it keep the hyper-parameters
        their checkpoints were saved with (tests/models/model_layouts.json)."""
        values = super().to_dict()
        if not self.crop:
            values.pop("crop")
        return values

    @property
    def network_channels(self) -> int:
        """Channels the conv stack sees (``input_channels``, plus 1 with ``add_snr``)."""
        return self.input_channels + int(self.add_snr)
