"""Real-bogus CNN of Cabrera-Vives et al. 2017 (Deep-HiTS) as a LightningModule, with HiTS and ZTF presets.

:class:`RealBogusModel` trains :class:`models.components.deep_hits.DeepHitsNet` (built from a
:class:`models.realbogus_config.RealBogusConfig`, or received). One forward pass of the network, shapes for
the ``hits`` preset:

1. **Input normalisation** (:class:`models.components.deep_hits.RealBogusInput`): raw stamps ``(N, C, S, S)`` -> ``(N, C', S', S')``.
   ``deep_hits``: each channel of each stamp min-max scaled to [0, 1] (Deep-HiTS; optionally the SNR
   difference appended first, for stores without it); ``ztf``: NaN -> 0, each channel of each stamp divided
   by its L2 norm, padded to 63x63 (Duev et al. 2019). Both are idempotent, so the data module applies it
   before augmentation and the model applies it again in ``forward`` (a no-op on normalised stamps): raw
   stamps can be scored directly with ``model(x)``.
2. **Rotations** (:func:`models.components.layers.cyclic_slice`): the stamp and its rotations by 90, 180 and 270
   degrees, ``(4 * N, 4, 21, 21)``.
3. **Shared conv stack** (:func:`models.components.layers.conv_stack`, leaky ReLU 0.01): 32@4x4 with zero padding 3
   (-> 24x24), 32@3x3 pad 1, 2x2 max-pool (-> 12x12), 64@3x3 pad 1 three times, 2x2 max-pool (-> 6x6):
   ``(4 * N, 64, 6, 6)``.
4. **Merge** over the 4 rotations: ``concat`` (the paper) -> ``(N, 4 * 2304)``; or cyclic pooling
   (``mean``, ``max``, ``rms``; Dieleman et al. 2016, :class:`models.components.layers.CyclicPool`) -> ``(N, 2304)``,
   which makes the scores exactly invariant to rotations of the input by multiples of 90 degrees.
5. **Dense**: FC 64 - FC 64, leaky ReLU, dropout 0.5 after each; linear to K classes; softmax.

The ``ztf`` preset is the same network on ``(N, 3, 63, 63)`` science, template, difference
(-> ``(4 * N, 64, 16, 16)`` after the conv stack).

Training: cross-entropy; He initialisation; SGD (lr 0.04, batch 50) for ``hits``, Adam (lr 1e-3, batch 50)
for ``ztf`` (see :data:`models.realbogus_config.PRESETS`); optionally the learning rate halved every ``lr_step`` steps. Classes are ``class_names`` (default ``bogus``, ``real``; more classes, e.g. the ALeRCE
stamp classes AGN, SN, VS, asteroid, bogus, are allowed): the real-bogus score is ``1 - P(bogus)``.

Metrics (``val/...`` and ``test/...``): ``accuracy`` (top-1 over the K classes), ``fpr`` and ``fnr`` of the
real-bogus decision ``score >= 0.5`` (positive = real), ``auc`` (ROC AUC of the score), ``ece`` (expected
calibration error of the top-label confidence, 15 bins) and ``loss`` (:mod:`models.realbogus_metrics`). After fitting (:meth:`after_fit`), on
validation data: the temperature that minimises the negative log-likelihood (Guo et al. 2017; optional), and
the score threshold that gives the requested false positive rate; both go to the model card, and the
temperature is a buffer of the module so every prediction after loading is calibrated.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from models.components import DeepHitsNet
from models.realbogus_config import RealBogusConfig
from models.realbogus_metrics import RealBogusMetrics, ece, fit_temperature, nll
from models.stamp_module import StampModule
from pipeline.evaluation import rates_at, threshold_at_fpr


class RealBogusModel(StampModule):
    """Cabrera-Vives et al. 2017 Deep-HiTS real-bogus model (:class:`DeepHitsNet`) with training and metrics.

    Args:
        preset: a key of :data:`models.realbogus_config.PRESETS` (``hits``, ``ztf``).
        net: the network, built from the same config (``DeepHitsNet(RealBogusConfig.from_preset(preset,
            **overrides))``); None: built here.
        **overrides: settings of :class:`RealBogusConfig` replacing the preset's.

    The saved hyper-parameters are the preset name plus every resolved setting; the fitted temperature is
    the buffer ``temperature`` (in the state dict), so a loaded checkpoint predicts calibrated probabilities.
    """

    TASK = "realbogus"
    TARGET = "real"

    def __init__(self, preset: str = "hits", *, net: DeepHitsNet | None = None, **overrides: Any):
        super().__init__(RealBogusConfig.from_preset(preset, **overrides), preset, net, DeepHitsNet)
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
        """Keyword arguments for :class:`models.data.datamodule.StampDataModule`."""
        return self._data_config(self.net.normalise, self.config.augment, keep_mask="none")

    def card_fields(self) -> dict[str, Any]:
        """Model-card fields: architecture, input channels and size, normalisation, output names, ..."""
        c = self.config
        return self._card_fields(
            input_size=c.input_size,
            expected_channel_names=list(c.channel_names),
            normalisation=c.normalisation,
            normalisation_description=self.net.normalise.describe(),
            output_names=list(c.class_names),
            bogus_class=c.bogus_class,
            score="1 - P(bogus) of softmax(logits / temperature); real when score >= threshold",
            merge=c.merge,
            rotation_invariant=c.merge != "concat",
        )

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

    def epoch_metrics(self, stage: str) -> dict[str, Tensor]:
        """:class:`RealBogusMetrics` of the ``val`` or ``test`` epoch."""
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        if metrics.seen == 0:  # nothing was seen (e.g. an empty split)
            return {}
        values = metrics.compute()
        metrics.reset()
        return values

    def configure_optimizers(self) -> Any:
        c = self.config
        opt = self.build_optimizer()
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
