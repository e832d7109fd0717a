"""The LightningModule base of the stampflow models: what :class:`models.morphology.MorphologyModel` and
:class:`models.realbogus.RealBogusModel` share.

- Construction: the config from a preset plus overrides (:class:`models.presets.PresetConfig`), the
  hyper-parameters saved as the preset name plus every resolved setting (what a checkpoint rebuilds the
  model from), and the network (``self.net``, a plain ``nn.Module`` of :mod:`models.components`), either
  received (built by the caller from the same config) or built from the config.
- Optimiser: SGD or Adam over two parameter groups, weight decay on weights only (never on biases).
- Metrics: at the end of a validation or test epoch, the subclass's :meth:`StampModule.epoch_metrics`
  logged as ``<stage>/<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn

from models.components import count_parameters
from models.presets import PresetConfig


class StampModule(L.LightningModule):
    """Base of the models: ``self.config``, ``self.preset``, ``self.net`` and the shared training logic.

    Args:
        config: the resolved config (a :class:`models.presets.PresetConfig` dataclass).
        preset: the preset name the config was built from (saved with the hyper-parameters).
        net: the network, built by the caller from ``config`` (its ``config`` attribute must equal it, so
            that a checkpoint's hyper-parameters rebuild the same network); None: ``build_net(config)``.
        build_net: the network class (or factory) of the model.

    Subclasses set ``TASK`` (the key of :data:`models.checkpoints.MODEL_CLASSES`) and ``TARGET`` (the store
    label they train on) and implement :meth:`epoch_metrics`.
    """

    TASK: ClassVar[str]
    TARGET: ClassVar[str]

    def __init__(
        self,
        config: PresetConfig,
        preset: str,
        net: nn.Module | None,
        build_net: Callable[[Any], nn.Module],
    ):
        super().__init__()
        self.config = config
        self.preset = preset
        self.save_hyperparameters({"preset": preset, **config.to_dict()})
        if net is None:
            net = build_net(config)
        elif getattr(net, "config", None) != config:
            raise ValueError(
                f"the given {type(net).__name__} was built from another config than the {preset!r} "
                "preset with these overrides; a checkpoint would rebuild a different network"
            )
        self.net = net

    # ------------------------------------------------------------------------------------------- contract
    def _data_config(self, preprocess: Any, augment: Any, **extra: Any) -> dict[str, Any]:
        """:class:`models.data.datamodule.StampDataModule` keyword arguments: ``config.batch_size``,
        ``preprocess``, training ``augment``, masked pixels filled with zeros, then ``extra``."""
        return {
            "batch_size": self.config.batch_size,
            "preprocess": preprocess,
            "augment": augment,
            "fill": "zero",
            **extra,
        }

    def _card_fields(self, **fields: Any) -> dict[str, Any]:
        """Model-card fields: ``architecture`` (the preset), ``input_channels``, then ``fields``, then the
        number of trainable ``parameters`` of the net."""
        return {
            "architecture": self.preset,
            "input_channels": self.config.input_channels,
            **fields,
            "parameters": count_parameters(self.net),
        }

    # ------------------------------------------------------------------------------------------ optimiser
    def build_optimizer(self, **sgd_options: Any) -> torch.optim.Optimizer:
        """``config.optimizer`` (``sgd`` with ``config.momentum`` and ``sgd_options``, or ``adam``) at
        ``config.lr``; ``config.weight_decay`` on every parameter but the biases."""
        c = self.config
        named = list(self.named_parameters())
        groups = [
            {"params": [p for n, p in named if not n.endswith("bias")], "weight_decay": c.weight_decay},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
        ]
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, **sgd_options)
        return torch.optim.Adam(groups, lr=c.lr)

    # -------------------------------------------------------------------------------------------- metrics
    def epoch_metrics(self, stage: str) -> dict[str, Tensor]:
        """The metrics accumulated over a ``val`` or ``test`` epoch, reset after reading; empty when the
        epoch saw no stamps (e.g. an empty split)."""
        raise NotImplementedError

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")

    def _log_stage(self, stage: str) -> None:
        for name, value in self.epoch_metrics(stage).items():
            self.log(f"{stage}/{name}", value)
