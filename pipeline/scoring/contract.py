"""What a model must offer the :class:`pipeline.scoring.scorer.Scorer`: :class:`ScoringModel`, plus the
optional capabilities the scorer uses when a model has them, each a small runtime-checkable protocol.

The scorer never asks for a stampflow class: any ``torch.nn.Module`` whose prediction gives probabilities
(real-bogus) or cumulative vote fractions (morphology) can be scored. The stampflow models
(``models.realbogus``, ``models.morphology``) implement every optional part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@runtime_checkable
class ScoringModel(Protocol):
    """The model contract of scoring (:mod:`pipeline.scoring.scorer`, :mod:`pipeline.scoring.fast_inference`).

    Required (every ``torch.nn.Module`` has these):

    - ``__call__(x) -> Tensor``: ``x`` a prepared batch ``(B, C, H, W)`` float32 (after
      :class:`pipeline.prep.batch.BatchPrep`), returns ``(B, K)``; used only when the model has neither
      ``predict_tensor`` nor ``predict_step``, so then it must return the probabilities itself.
    - ``to(device)`` and ``eval()``, each returning the module.
    - ``state_dict()`` and ``named_modules()``: the weights and submodules that key the ONNX export cache
      (a submodule's ``hparams`` mapping, as Lightning saves it, is part of the key when present).

    Optional, looked up in this order (:func:`model_outputs`, :func:`prep_config`, :func:`split_inference`):

    - ``predict_tensor(x) -> Tensor`` (:class:`PredictsTensor`): ``(B, K)`` probabilities or cumulative
      fractions of a prepared batch, test-time augmentation included; the stampflow models have it.
    - ``predict_step(batch, batch_idx) -> Tensor`` (:class:`PredictsStep`): the Lightning prediction,
      called as ``predict_step(x, 0)``; used when ``predict_tensor`` is absent.
    - ``data_config() -> Mapping`` (:class:`OwnsDataConfig`): its ``fill``, ``keep_mask`` and
      ``preprocess`` (a callable) say how batches are prepared; the model card's ``data_config`` wins
      where both set a key.
    - ``inference_parts() -> (pre, net)`` (:class:`SplitsInference`): ``pre`` a torch callable run eagerly
      (or None), ``net`` an exportable ``nn.Module``, with ``net(pre(x))`` equal to :func:`model_outputs`;
      for a prediction that cannot be exported whole.

    Whatever gives the prediction must return values in [0, 1] (1e-4 slack): the scorer refuses logits.
    """

    def __call__(self, x: Tensor) -> Tensor: ...

    def to(self, device: Any) -> Any: ...

    def eval(self) -> Any: ...

    def state_dict(self) -> Mapping[str, Any]: ...

    def named_modules(self) -> Iterator[tuple[str, nn.Module]]: ...


@runtime_checkable
class PredictsTensor(Protocol):
    """A model with its own scoring prediction: ``(B, C, H, W)`` -> ``(B, K)`` probabilities."""

    def predict_tensor(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class PredictsStep(Protocol):
    """A Lightning module: ``predict_step(x, 0)`` gives ``(B, K)`` probabilities."""

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor: ...


@runtime_checkable
class OwnsDataConfig(Protocol):
    """A model that says how its batches are prepared (``fill``, ``keep_mask``, ``preprocess``, ...)."""

    def data_config(self) -> Mapping[str, Any]: ...


@runtime_checkable
class SplitsInference(Protocol):
    """A model whose prediction is exported in two parts: ``(pre, net)``, ``net(pre(x))`` the prediction."""

    def inference_parts(self) -> tuple[Callable[[Tensor], Tensor] | None, nn.Module]: ...


def model_outputs(module: ScoringModel, x: Tensor) -> Tensor:
    """``(B, K)`` outputs of a model on a prepared batch ``(B, C, H, W)``: ``predict_tensor(x)`` if the model
    has it (the stampflow models: test-time augmentation included), else ``predict_step(x, 0)``, else
    ``module(x)``."""
    if isinstance(module, PredictsTensor):
        return module.predict_tensor(x)
    if isinstance(module, PredictsStep):
        return module.predict_step(x, 0)
    return module(x)


def prep_config(module: ScoringModel) -> dict[str, Any]:
    """The model's own ``data_config()`` (empty when it has none)."""
    return dict(module.data_config()) if isinstance(module, OwnsDataConfig) else {}


def split_inference(module: ScoringModel) -> tuple[Callable[[Tensor], Tensor] | None, nn.Module] | None:
    """The model's own ``(pre, net)`` split (None when it has none)."""
    return module.inference_parts() if isinstance(module, SplitsInference) else None
