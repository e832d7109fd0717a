"""Galaxy morphology CNN of Dieleman, Willett & Dambre 2015 (Galaxy Zoo Kaggle winner) as a LightningModule.

:class:`MorphologyModel` trains :class:`models.components.dieleman.DielemanNet` (built from a
:class:`models.morphology_config.MorphologyConfig`, or received), or with ``backbone="resnet"`` (preset
``resnet18``) :class:`models.components.resnet.ResNetNet`, a ResNet on the same frame with the same tree
output, training and metrics. One forward pass of the network, shapes for
the ``dieleman2015`` preset:

1. **Model frame** (:class:`models.components.dieleman.DielemanFrame`): stamps ``(N, C, S, S)`` of any size -> ``(N, C, F, F)``.
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
3. **Shared conv stack** on all parts as one batch (:func:`models.components.layers.conv_stack`): 32@6x6, pool,
   64@5x5, pool, 128@3x3, 128@3x3, pool; valid convolutions with untied biases -> ``(N * 16, 128, 2, 2)``.
4. **Merge**: the 16 feature vectors concatenated -> ``(N, 8192)``; or, with ``cyclic_pool``, pooled over
   the 4 rotated parts of each view (Dieleman et al. 2016) -> ``(N, 4 * 512)``, which makes the model
   invariant to rotations of the input by 90 degrees.
5. **Dense**: dropout 0.5 + maxout 2048 (4096 linear units), twice; dropout 0.5 + linear 37.
6. **Output** (:class:`models.components.layers.GalaxyZooTree`): ReLU, per-question normalisation, multiplication by the
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
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Timer
from torch import Tensor
from torchmetrics.regression import MeanSquaredError

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, N_ANSWERS, QUESTION_SLICES, QUESTIONS
from models.budget import CpuTimeLimit
from models.components import DielemanNet, GalaxyZooNet, ResNetNet
from models.morphology_config import MorphologyConfig
from models.stamp_module import StampModule
from pipeline.prep import augment_preset

#: ``MorphologyConfig.backbone`` -> the network class built from the config.
BACKBONE_NETS: dict[str, type[GalaxyZooNet]] = {"dieleman": DielemanNet, "resnet": ResNetNet}


def morphology_net(config: MorphologyConfig) -> GalaxyZooNet:
    """The network of a config: :class:`DielemanNet` or, for ``backbone="resnet"``, :class:`ResNetNet`."""
    return BACKBONE_NETS[config.backbone](config)


#: Side of Dieleman's view (the 3x downsampled crop), which the augmentation preset's shifts refer to.
DIELEMAN_VIEW = 69


class MorphologyModel(StampModule):
    """Dieleman et al. 2015 Galaxy Zoo morphology model (:class:`DielemanNet`) with training and metrics.

    Args:
        preset: a key of :data:`models.morphology_config.PRESETS` (``dieleman2015``, ``small``, ``resnet18``).
        net: the network, built from the same config (``morphology_net(MorphologyConfig.from_preset(preset,
            **overrides))``: a :class:`DielemanNet`, or a :class:`ResNetNet` for ``backbone="resnet"``);
            None: built here.
        **overrides: settings of :class:`MorphologyConfig` replacing the preset's.

    The hyper-parameters saved (and written to checkpoints) are the preset name plus every resolved
    setting, so a checkpoint rebuilds the same network even if a preset changes later.
    """

    TASK = "morphology"
    TARGET = "gz_answers"

    def __init__(self, preset: str = "small", *, net: GalaxyZooNet | None = None, **overrides: Any):
        super().__init__(MorphologyConfig.from_preset(preset, **overrides), preset, net, morphology_net)
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
        """Keyword arguments for :class:`models.data.datamodule.StampDataModule`."""
        augment = self.config.augment
        if augment == "morphology":  # Dieleman's +-4 px of the 424 px image = +-4/3 px of the 69 px view
            base = augment_preset("morphology")
            augment = augment_preset(
                "morphology", shift_px=base.shift_px * self.config.input_size / DIELEMAN_VIEW
            )
            augment = augment.to_dict()
        # geometry only: forward normalises
        return self._data_config(replace(self.net.frame, normalise="none"), augment)

    def card_fields(self) -> dict[str, Any]:
        """Model-card fields: architecture, input channels and size, normalisation, output names."""
        c = self.config
        backbone = {} if c.backbone == "dieleman" else {"backbone": c.backbone}  # cards of before unchanged
        return self._card_fields(
            **backbone,
            input_size=None,
            normalisation=self.net.frame.describe(),
            output_names=list(ANSWER_COLUMNS),
            view_size=c.input_size,
            frame_size=c.frame_size,
            cyclic_pool=c.cyclic_pool,
            tta=c.tta,
        )

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

    def epoch_metrics(self, stage: str) -> dict[str, Tensor]:
        """RMSE over all answers and per question (:func:`rmse_by_question`) of the ``val`` or ``test`` epoch."""
        metric = self.val_mse if stage == "val" else self.test_mse
        if int(metric.total) == 0:  # nothing was seen (e.g. an empty split)
            return {}
        values = rmse_by_question(metric.compute())
        metric.reset()
        return values

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.config
        opt = self.build_optimizer(nesterov=c.nesterov and c.momentum > 0)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda step: (
                lr_factor(self.training_progress(), c.lr_milestones, c.lr_gamma)
                * min(1.0, (step + 1) / max(c.lr_warmup_steps, 1))
            ),
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
