"""Real-bogus CNN of Cabrera-Vives et al. 2017 (Deep-HiTS) as a LightningModule, with HiTS and ZTF presets.

One forward pass (:class:`DeepHitsNet`), shapes for the ``hits`` preset:

1. **Input normalisation** (:class:`RealBogusInput`): raw stamps ``(N, C, S, S)`` -> ``(N, C', S', S')``.
   ``deep_hits``: each channel of each stamp min-max scaled to [0, 1] (Deep-HiTS; optionally the SNR
   difference appended first, for stores without it); ``ztf``: NaN -> 0, each channel of each stamp divided
   by its L2 norm, padded to 63x63 (Duev et al. 2019). Both are idempotent, so the data module applies it
   before augmentation and the model applies it again in ``forward`` (a no-op on normalised stamps): raw
   stamps can be scored directly with ``model(x)``.
2. **Rotations** (:func:`models.layers.cyclic_slice`): the stamp and its rotations by 90, 180 and 270
   degrees, ``(4 * N, 4, 21, 21)``.
3. **Shared conv stack** (:func:`models.layers.conv_stack`, leaky ReLU 0.01): 32@4x4 with zero padding 3
   (-> 24x24), 32@3x3 pad 1, 2x2 max-pool (-> 12x12), 64@3x3 pad 1 three times, 2x2 max-pool (-> 6x6):
   ``(4 * N, 64, 6, 6)``.
4. **Merge** over the 4 rotations: ``concat`` (the paper) -> ``(N, 4 * 2304)``; or cyclic pooling
   (``mean``, ``max``, ``rms``; Dieleman et al. 2016, :class:`models.layers.CyclicPool`) -> ``(N, 2304)``,
   which makes the scores exactly invariant to rotations of the input by multiples of 90 degrees.
5. **Dense**: FC 64 - FC 64, leaky ReLU, dropout 0.5 after each; linear to K classes; softmax.

The ``ztf`` preset is the same network on ``(N, 3, 63, 63)`` science, template, difference
(-> ``(4 * N, 64, 16, 16)`` after the conv stack).

Training: cross-entropy; He initialisation; SGD (lr 0.04, batch 50) for ``hits``, Adam (lr 1e-3, batch 50)
for ``ztf`` (see :data:`PRESETS`); optionally the learning rate halved every ``lr_step`` steps. Classes are ``class_names`` (default ``bogus``, ``real``; more classes, e.g. the ALeRCE
stamp classes AGN, SN, VS, asteroid, bogus, are allowed): the real-bogus score is ``1 - P(bogus)``.

Metrics (``val/...`` and ``test/...``): ``accuracy`` (top-1 over the K classes), ``fpr`` and ``fnr`` of the
real-bogus decision ``score >= 0.5`` (positive = real), ``auc`` (ROC AUC of the score), ``ece`` (expected
calibration error of the top-label confidence, 15 bins) and ``loss``. After fitting (:meth:`after_fit`), on
validation data: the temperature that minimises the negative log-likelihood (Guo et al. 2017; optional), and
the score threshold that gives the requested false positive rate; both go to the model card, and the
temperature is a buffer of the module so every prediction after loading is calibrated.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryStatScores,
    MulticlassAccuracy,
    MulticlassCalibrationError,
)

from models.layers import (
    CYCLIC_POOLS,
    ConvSpec,
    CyclicPool,
    conv_output_shape,
    conv_stack,
    count_parameters,
    cyclic_slice,
    make_activation,
)
from models.presets import config_from_preset, config_to_dict
from pipeline.evaluation import rates_at, threshold_at_fpr
from pipeline.prep import as_batch, deep_hits_normalize, minmax_scale, ztf_normalize

#: Deep-HiTS conv stack ``[filters, kernel, padding, pool]``: 21 -> 24 -> 24 -> 12 -> 12 -> 12 -> 6.
DEEP_HITS_CONV: tuple[tuple[int, int, int, int], ...] = (
    (32, 4, 3, 1),
    (32, 3, 1, 2),
    (64, 3, 1, 1),
    (64, 3, 1, 1),
    (64, 3, 1, 2),
)
REAL_BOGUS_CLASSES = ("bogus", "real")
#: The ALeRCE stamp classifier's classes (Carrasco-Davis et al. 2021), for ``class_names``.
ALERCE_STAMP_CLASSES = ("AGN", "SN", "VS", "asteroid", "bogus")
MERGES = ("concat", *CYCLIC_POOLS)
NORMALISATIONS = ("deep_hits", "ztf", "minmax", "none")
OPTIMIZERS = ("sgd", "adam")
INITS = ("he", "torch")


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class RealBogusConfig:
    """Every setting of the real-bogus model (a preset plus overrides); JSON-able via :meth:`to_dict`.

    Attributes:
        input_channels: channels of the stored stamps (4 for HiTS, 3 for ZTF).
        channel_names: the channel order the preset expects (for the model card; stores are not renamed).
        input_size: side of the network input in pixels (21 HiTS, 63 ZTF).
        normalisation: ``deep_hits`` (per-stamp, per-channel min-max to [0, 1]), ``ztf`` (per-stamp,
            per-channel unit L2 norm after NaN -> 0, padded to ``input_size``), ``minmax`` or ``none``.
        add_snr: ``deep_hits`` only: append the SNR difference (difference / robust sigma) to stores that
            lack it (the network then sees ``input_channels + 1`` channels).
        difference_channel: index of the difference channel (for ``add_snr``).
        conv: conv blocks ``[filters, kernel, padding, pool]`` (:class:`models.layers.ConvSpec`).
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

    input_channels: int = 4
    channel_names: tuple[str, ...] = ("template", "science", "difference", "snr")
    input_size: int = 21
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
        object.__setattr__(self, "conv", tuple(astuple(ConvSpec.from_any(c)) for c in self.conv))
        object.__setattr__(self, "dense_units", tuple(int(u) for u in self.dense_units))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "channel_names", tuple(str(c) for c in self.channel_names))
        checks = {
            "normalisation": (self.normalisation, NORMALISATIONS),
            "merge": (self.merge, MERGES),
            "optimizer": (self.optimizer, OPTIMIZERS),
            "init": (self.init, INITS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be 2 or more distinct names, got {self.class_names}")
        if self.bogus_class not in self.class_names:
            raise ValueError(f"bogus_class {self.bogus_class!r} is not one of {self.class_names}")
        if self.add_snr and self.normalisation != "deep_hits":
            raise ValueError("add_snr needs normalisation='deep_hits'")
        if not 0 < self.threshold_fpr < 1:
            raise ValueError(f"threshold_fpr must be in (0, 1), got {self.threshold_fpr}")

    @property
    def network_channels(self) -> int:
        """Channels the conv stack sees (``input_channels``, plus 1 with ``add_snr``)."""
        return self.input_channels + int(self.add_snr)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples become lists)."""
        return config_to_dict(self)

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> RealBogusConfig:
        """A preset of :data:`PRESETS` with settings overridden; unknown settings raise."""
        return config_from_preset(cls, PRESETS, preset, overrides, "realbogus")


#: ``hits``: Deep-HiTS on 4x21x21 template, science, difference, SNR difference (SGD lr 0.04, batch 50).
#: ``ztf``: the same network on 3x63x63 science, template, difference with the braai normalisation, trained
#: with Adam (lr 1e-3): on unit-L2-norm stamps (pixels ~1/63) plain SGD at 0.04 barely moves the first
#: layers (simulated ZTF, one epoch of 4,800 stamps: validation AUC 0.84 with SGD, 0.99 with Adam).
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


# ------------------------------------------------------------------------------------------------ input
@dataclass(frozen=True)
class RealBogusInput:
    """Raw stamps -> network input, idempotent (see the module docstring). A picklable callable.

    ``(N, C, H, W)`` -> ``(N, C', S, S)`` float32: ``C' = C + 1`` when ``add_snr`` appends the SNR channel
    to stamps of ``channels`` channels (stamps that already have ``channels + 1`` are only scaled); ``S`` is
    ``size`` for ``ztf`` (smaller stamps padded), else the input side.
    """

    normalisation: str
    channels: int
    size: int
    add_snr: bool = False
    difference_channel: int = 2

    def __call__(self, x: Tensor | np.ndarray) -> Tensor:
        t = as_batch(x)
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
        return {
            "deep_hits": "Deep-HiTS: each channel of each stamp min-max scaled to [0, 1]"
            + (" after appending difference / robust sigma as an SNR channel" if self.add_snr else ""),
            "ztf": f"ZTF braai: NaN -> 0, each channel of each stamp divided by its L2 norm, padded to "
            f"{self.size}x{self.size} with 1e-9 at the bottom/right",
            "minmax": "each channel of each stamp min-max scaled to [0, 1]",
            "none": "values as stored",
        }[self.normalisation]


# ------------------------------------------------------------------------------------------------ network
class DeepHitsNet(nn.Module):
    """The network of :class:`RealBogusModel`: raw or normalised stamps ``(N, C, S, S)`` -> logits ``(N, K)``."""

    def __init__(self, config: RealBogusConfig):
        super().__init__()
        c = config
        self.config = c
        self.normalise = RealBogusInput(
            c.normalisation, c.input_channels, c.input_size, c.add_snr, c.difference_channel
        )
        self.convs = conv_stack(
            c.network_channels, c.conv, activation="leaky_relu", negative_slope=c.negative_slope
        )
        self.rotation_features = int(np.prod(conv_output_shape(c.conv, c.network_channels, c.input_size)))
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
        feats = self.convs(parts).reshape(4, n, self.rotation_features).transpose(0, 1)  # (N, 4, F)
        if self.merge is not None:
            return self.merge(feats).flatten(1)
        return feats.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Stamps ``(N, C, S, S)`` (raw or normalised) -> logits ``(N, K)``."""
        return self.head(self.dense(self.features(self.normalise(x))))


# ------------------------------------------------------------------------------------------------ metrics
class RealBogusMetrics(nn.Module):
    """Accumulated classification and real-bogus metrics of one stage (torchmetrics: synced across DDP ranks).

    ``update(probs (B, K), y (B,) int64, loss)``; ``compute()`` -> ``accuracy``, ``fpr``, ``fnr`` (real-bogus
    decision ``score >= 0.5``, positive = real), ``auc`` (only when both real and bogus were seen), ``ece``,
    ``loss`` (mean cross-entropy).
    """

    def __init__(self, n_classes: int, bogus_index: int, ece_bins: int = 15):
        super().__init__()
        self.bogus_index = int(bogus_index)
        self.accuracy = MulticlassAccuracy(num_classes=n_classes, average="micro")
        self.stats = BinaryStatScores(threshold=0.5)
        self.auroc = BinaryAUROC()
        self.ece = MulticlassCalibrationError(num_classes=n_classes, n_bins=ece_bins, norm="l1")
        self.loss = MeanMetric()
        self.seen = 0  # stamps seen by this process since the last reset

    def update(self, probs: Tensor, y: Tensor, loss: Tensor) -> None:
        score = 1.0 - probs[:, self.bogus_index]
        is_real = (y != self.bogus_index).long()
        self.accuracy.update(probs, y)
        self.stats.update(score, is_real)
        self.auroc.update(score, is_real)
        self.ece.update(probs, y)
        self.loss.update(loss.detach(), weight=len(y))
        self.seen += len(y)

    def compute(self) -> dict[str, Tensor]:
        tp, fp, tn, fn, _ = self.stats.compute().double()
        out = {
            "accuracy": self.accuracy.compute(),
            "fpr": fp / (fp + tn) if fp + tn > 0 else torch.tensor(float("nan")),
            "fnr": fn / (fn + tp) if fn + tp > 0 else torch.tensor(float("nan")),
            "ece": self.ece.compute(),
            "loss": self.loss.compute(),
        }
        if fp + tn > 0 and fn + tp > 0:
            out["auc"] = self.auroc.compute()
        return {k: v.float() for k, v in out.items() if not torch.isnan(v)}

    def reset(self) -> None:
        for metric in (self.accuracy, self.stats, self.auroc, self.ece, self.loss):
            metric.reset()
        self.seen = 0


# ---------------------------------------------------------------------------------------- lightning module
class RealBogusModel(L.LightningModule):
    """Cabrera-Vives et al. 2017 Deep-HiTS real-bogus model (:class:`DeepHitsNet`) with training and metrics.

    Args:
        preset: a key of :data:`PRESETS` (``hits``, ``ztf``).
        **overrides: settings of :class:`RealBogusConfig` replacing the preset's.

    The saved hyper-parameters are the preset name plus every resolved setting; the fitted temperature is
    the buffer ``temperature`` (in the state dict), so a loaded checkpoint predicts calibrated probabilities.
    """

    TASK = "realbogus"
    TARGET = "real"

    def __init__(self, preset: str = "hits", **overrides: Any):
        super().__init__()
        self.config = RealBogusConfig.from_preset(preset, **overrides)
        self.preset = preset
        self.save_hyperparameters({"preset": preset, **self.config.to_dict()})
        self.net = DeepHitsNet(self.config)
        self.bogus_index = self.config.class_names.index(self.config.bogus_class)
        self.register_buffer("temperature", torch.ones(()))
        k = len(self.config.class_names)
        self.val_metrics = RealBogusMetrics(k, self.bogus_index, self.config.ece_bins)
        self.test_metrics = RealBogusMetrics(k, self.bogus_index, self.config.ece_bins)

    @property
    def target(self) -> str:
        """The store label this model trains on (``config.target``)."""
        return self.config.target

    # --------------------------------------------------------------------------------------- inference
    def forward(self, x: Tensor) -> Tensor:
        """Stamps ``(N, C, S, S)`` (raw or normalised) -> logits ``(N, K)``, before the temperature."""
        return self.net(x)

    def probabilities(self, x: Tensor) -> Tensor:
        """Calibrated class probabilities ``(N, K)``: ``softmax(logits / temperature)``."""
        return torch.softmax(self.net(x) / self.temperature, dim=-1)

    def real_score(self, probs: Tensor) -> Tensor:
        """Real-bogus score ``(N,)`` in [0, 1] from probabilities ``(N, K)``: ``1 - P(bogus)``."""
        return 1.0 - probs[:, self.bogus_index]

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Calibrated probabilities ``(B, K)`` of a batch ``x`` or ``(x, y)``."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.probabilities(x)

    # ------------------------------------------------------------------------------------------ contract
    def data_config(self) -> dict[str, Any]:
        """Keyword arguments for :class:`models.datamodule.StampDataModule`."""
        return {
            "batch_size": self.config.batch_size,
            "preprocess": self.net.normalise,
            "augment": self.config.augment,
            "fill": "zero",
            "keep_mask": "none",
        }

    def card_fields(self) -> dict[str, Any]:
        """Model-card fields: architecture, input channels and size, normalisation, output names, ..."""
        c = self.config
        return {
            "architecture": self.preset,
            "input_channels": c.input_channels,
            "input_size": c.input_size,
            "expected_channel_names": list(c.channel_names),
            "normalisation": c.normalisation,
            "normalisation_description": self.net.normalise.describe(),
            "output_names": list(c.class_names),
            "bogus_class": c.bogus_class,
            "score": "1 - P(bogus) of softmax(logits / temperature); real when score >= threshold",
            "merge": c.merge,
            "rotation_invariant": c.merge != "concat",
            "parameters": count_parameters(self.net),
        }

    # ------------------------------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(x))
        return loss

    def _eval_step(self, batch: tuple[Tensor, Tensor], metrics: RealBogusMetrics) -> None:
        x, y = batch
        logits = self.net(x) / self.temperature
        metrics.update(torch.softmax(logits, dim=-1), y, F.cross_entropy(logits, y))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def _log_metrics(self, stage: str, metrics: RealBogusMetrics) -> None:
        if metrics.seen == 0:  # nothing was seen (e.g. an empty split)
            return
        values = metrics.compute()
        metrics.reset()
        for name, value in values.items():
            self.log(f"{stage}/{name}", value)

    def configure_optimizers(self) -> Any:
        c = self.config
        decay = [p for n, p in self.named_parameters() if not n.endswith("bias")]
        no_decay = [p for n, p in self.named_parameters() if n.endswith("bias")]
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if c.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum)
        else:
            opt = torch.optim.Adam(groups, lr=c.lr)
        if c.lr_step <= 0:
            return opt
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=c.lr_step, gamma=c.lr_gamma)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------------------------------ after fit
    @torch.no_grad()
    def split_logits(self, datamodule: Any, split: str) -> tuple[Tensor, Tensor]:
        """Uncalibrated logits ``(M, K)`` and labels ``(M,)`` of one split of a set-up data module (eval mode)."""
        was_training = self.training
        self.eval()
        logits, labels = [], []
        for x, y in datamodule.dataloader(split):
            logits.append(self.net(x.to(self.device)).float().cpu())
            labels.append(y)
        self.train(was_training)
        if not logits:
            return torch.zeros(0, len(self.config.class_names)), torch.zeros(0, dtype=torch.long)
        return torch.cat(logits), torch.cat(labels)

    def after_fit(self, datamodule: Any) -> dict[str, Any]:
        """Calibrate on validation data and choose the threshold at ``threshold_fpr``; card fields.

        Sets the ``temperature`` buffer (when ``calibrate``) and returns ``temperature``, the validation
        negative log-likelihood and expected calibration error before and after (``nll_val_before``,
        ``nll_val``, ``ece_val_before``, ``ece_val``), ``ece_test`` (calibrated), ``threshold`` (real when score >= threshold),
        ``threshold_fpr`` (requested), ``threshold_val_fpr`` / ``threshold_val_tpr`` (achieved on
        validation data) and ``threshold_test_fpr`` / ``threshold_test_fnr``.
        """
        c = self.config
        datamodule.setup("fit")
        val_logits, val_y = self.split_logits(datamodule, "val")
        if len(val_y) == 0:
            return {}
        temperature = fit_temperature(val_logits, val_y) if c.calibrate else 1.0
        self.temperature.fill_(temperature)
        out: dict[str, Any] = {
            "temperature": temperature,
            "nll_val_before": nll(val_logits, val_y, 1.0),
            "nll_val": nll(val_logits, val_y, temperature),
            "ece_val_before": ece(val_logits, val_y, 1.0, c.ece_bins),
            "ece_val": ece(val_logits, val_y, temperature, c.ece_bins),
        }
        is_real = (val_y != self.bogus_index).numpy()
        score = self.real_score(torch.softmax(val_logits / temperature, dim=-1)).numpy()
        out["threshold_fpr"] = c.threshold_fpr
        if 0 < is_real.sum() < len(is_real):
            choice = threshold_at_fpr(is_real, score, c.threshold_fpr)
            out.update(
                threshold=choice["threshold"],
                threshold_val_fpr=choice["fpr"],
                threshold_val_tpr=choice["tpr"],
            )
        test_logits, test_y = self.split_logits(datamodule, "test")
        if len(test_y):
            out["ece_test"] = ece(test_logits, test_y, temperature, c.ece_bins)
            if "threshold" in out:
                test_score = self.real_score(torch.softmax(test_logits / temperature, dim=-1)).numpy()
                rates = rates_at(test_y.numpy() != self.bogus_index, test_score, out["threshold"])
                out.update(threshold_test_fpr=rates["fpr"], threshold_test_fnr=rates["fnr"])
        return out


# ------------------------------------------------------------------------------------------------ helpers
def fit_temperature(logits: Tensor, y: Tensor, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature ``T`` minimising the mean cross-entropy of ``softmax(logits / T)`` (Guo et al. 2017).

    Args:
        logits: ``(M, K)`` validation logits; y: ``(M,)`` class indices.
        bounds: search range of ``T`` (searched in log ``T`` with scipy's bounded Brent method).
    """
    result = minimize_scalar(
        lambda log_t: nll(logits, y, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
    )
    return float(math.exp(result.x))


def nll(logits: Tensor, y: Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of ``softmax(logits / T)`` for labels ``y``."""
    return float(F.cross_entropy(logits.double() / temperature, y.long()))


def ece(logits: Tensor, y: Tensor, temperature: float = 1.0, bins: int = 15) -> float:
    """Expected calibration error (top-label, ``bins`` equal-width bins) of ``softmax(logits / T)``."""
    metric = MulticlassCalibrationError(num_classes=logits.shape[1], n_bins=bins, norm="l1")
    return float(metric(torch.softmax(logits.double() / temperature, dim=-1).float(), y))
