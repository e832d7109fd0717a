"""Layers shared by the stampflow CNNs: conv stacks, maxout, cyclic pooling, the Galaxy Zoo output layer.

- :class:`ConvSpec` / :func:`conv_stack`: a stack of ``conv -> bias -> [max-pool ->] activation`` blocks
  described by JSON-able tuples ``(filters, kernel, padding, pool)``, with the output shape known before
  any forward pass (:func:`conv_output_shape`). Used by the Dieleman morphology model (valid convolutions,
  untied biases) and the Deep-HiTS real-bogus model (padded convolutions, leaky ReLU).
- :class:`UntiedBias2d`: one bias per channel *and* output pixel (cuda-convnet ``untie_biases=True``, as in
  Dieleman's Kaggle code).
- :class:`Maxout`: a dense layer of ``units * pieces`` linear units followed by the max over consecutive
  groups of ``pieces`` (Goodfellow et al. 2013; Dieleman 2015: 4096 linear units -> 2048 maxout units).
- :class:`CyclicPool`: pool part features over their rotations (Dieleman, De Fauw & Kavukcuoglu 2016).
- :func:`cyclic_slice`: a batch and its 3 rotations by 90 degrees stacked along the batch (Deep-HiTS).
- :class:`GalaxyZooTree`: the Galaxy Zoo decision-tree output layer of Dieleman et al. 2015, built from
  :mod:`data_catalogs.galaxy_zoo` (the tree is not duplicated here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from data_catalogs.galaxy_zoo import N_ANSWERS, PARENT_INDEX, QUESTION_SLICES, QUESTIONS

ACTIVATIONS = ("relu", "leaky_relu", "identity")
CYCLIC_POOLS = ("mean", "max", "rms")


# -------------------------------------------------------------------------------------------- conv stack
@dataclass(frozen=True)
class ConvSpec:
    """One conv block: ``filters`` 2-D convolutions of ``kernel`` x ``kernel`` (stride 1), zero ``padding``
    on each side, then the activation, then a ``pool`` x ``pool`` max-pool (``pool = 1``: none).

    JSON form: ``[filters, kernel, padding, pool]`` (:meth:`from_any` also takes ``[filters, kernel]``).
    """

    filters: int
    kernel: int
    padding: int = 0
    pool: int = 1

    @classmethod
    def from_any(cls, spec: ConvSpec | Sequence[int]) -> ConvSpec:
        return spec if isinstance(spec, ConvSpec) else cls(*(int(v) for v in spec))

    def out_size(self, size: int) -> int:
        """Output side of this block for an input side ``size`` (pixels)."""
        conv = size + 2 * self.padding - self.kernel + 1
        return conv // self.pool


def conv_spec_tuples(specs: Sequence[ConvSpec | Sequence[int]]) -> tuple[tuple[int, int, int, int], ...]:
    """Conv blocks in their JSON-able form ``((filters, kernel, padding, pool), ...)``."""
    return tuple(astuple(ConvSpec.from_any(spec)) for spec in specs)


def conv_output_shape(specs: Sequence[ConvSpec | Sequence[int]], in_channels: int, size: int) -> tuple:
    """``(C, H, W)`` after :func:`conv_stack` for square inputs of side ``size``; raises if it shrinks to 0."""
    channels = in_channels
    for i, raw in enumerate(specs):
        spec = ConvSpec.from_any(raw)
        new = spec.out_size(size)
        if new < 1:
            raise ValueError(f"conv block {i} {spec} gets {size} px and leaves nothing; use a larger input")
        size, channels = new, spec.filters
    return channels, size, size


#: Bytes of the largest activation of one chunk of a conv stack's batch (:func:`conv_chunk_items`).
CHUNK_BYTES = 6 * 1024**2
#: Fewest items in a chunk: below it the per-call overhead wins.
MIN_CHUNK_ITEMS = 16


def conv_chunk_items(specs: Sequence[ConvSpec | Sequence[int]], size: int) -> int:
    """Items per chunk when a batch of stamps of side ``size`` goes through :func:`conv_stack` in chunks
    (:func:`in_chunks`): as many as keep the largest activation of a chunk (float32, per conv block)
    within :data:`CHUNK_BYTES`, and at least :data:`MIN_CHUNK_ITEMS`. On CPU, chunks of a few MiB run a training step of the ``ztf`` preset
    1.25x faster than its whole batch of 200 rotated stamps (the activations stay in cache between the
    convolution, pooling and activation), with the same values up to rounding."""
    largest = 0
    for raw in specs:
        spec = ConvSpec.from_any(raw)
        conv = size + 2 * spec.padding - spec.kernel + 1
        largest = max(largest, spec.filters * conv * conv * 4)
        size = spec.out_size(size)
    return max(MIN_CHUNK_ITEMS, CHUNK_BYTES // max(largest, 1))


def in_chunks(module: nn.Module, x: Tensor, items: int) -> Tensor:
    """``module(x)`` computed on equal chunks of at most ``items`` items along the batch and concatenated
    (for modules that treat items independently, e.g. a conv stack), in training only: inference and
    traced or exported graphs (ONNX, TorchScript) take the whole batch, so no chunk size is baked in."""
    # Mode first: an exported graph's batch side is symbolic and must not be compared.
    if not module.training or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return module(x)
    n = x.shape[0]
    if n <= items:
        return module(x)
    chunks = -(-n // items)
    return torch.cat([module(part) for part in x.split(-(-n // chunks))])


def make_activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """``relu``, ``leaky_relu`` (slope ``negative_slope``; Deep-HiTS 0.01) or ``identity``."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class UntiedBias2d(nn.Module):
    """Add a learned bias per channel and pixel: ``(N, C, H, W) + b (C, H, W)``."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels, height, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias

    def extra_repr(self) -> str:
        return f"shape={tuple(self.bias.shape)}"


def conv_stack(
    in_channels: int,
    specs: Sequence[ConvSpec | Sequence[int]],
    *,
    in_size: int | None = None,
    activation: str = "relu",
    negative_slope: float = 0.01,
    untied_biases: bool = False,
) -> nn.Sequential:
    """A shared convolutional feature extractor ``(N, C_in, S, S) -> (N, C_out, s, s)``.

    Each block is ``Conv2d -> [UntiedBias2d] -> [MaxPool2d(pool) ->] activation``, which computes exactly
    ``activation`` then pool (a max commutes with a non-decreasing function); the shapes are given by
    :func:`conv_output_shape`. Module indices, and so state-dict keys, are those of the activation-first
    order of earlier versions (each block keeps its length).

    Args:
        in_channels: input channels.
        specs: one :class:`ConvSpec` or ``[filters, kernel, padding, pool]`` per block.
        in_size: input side in pixels; required for ``untied_biases`` (the bias has one value per pixel).
        activation: see :func:`make_activation`.
        negative_slope: slope of the leaky ReLU.
        untied_biases: one bias per channel and output pixel instead of one per channel.
    """
    if untied_biases and in_size is None:
        raise ValueError("untied biases need in_size")
    layers: list[nn.Module] = []
    channels, size = in_channels, in_size
    for raw in specs:
        spec = ConvSpec.from_any(raw)
        layers.append(
            nn.Conv2d(channels, spec.filters, spec.kernel, padding=spec.padding, bias=not untied_biases)
        )
        if untied_biases:
            conv_size = size + 2 * spec.padding - spec.kernel + 1
            if conv_size < 1:
                raise ValueError(f"conv block {spec} gets {size} px and leaves nothing")
            layers.append(UntiedBias2d(spec.filters, conv_size, conv_size))
        # Pool before the activation: max-pooling commutes with any non-decreasing activation (values and
        # gradients are the same), and the activation then touches pool^2 times fewer pixels (an in-place
        # activation was measured too: no faster, and 1.4x slower for the leaky ReLU in channels-last).
        if spec.pool > 1:
            layers.append(nn.MaxPool2d(spec.pool))
        layers.append(make_activation(activation, negative_slope))
        channels = spec.filters
        size = spec.out_size(size) if size is not None else None
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------ dense
class Maxout(nn.Module):
    """Maxout dense layer: ``Linear(in, units * pieces)``, then the max over each group of ``pieces``.

    ``(N, in_features) -> (N, units)``. Groups are consecutive linear units (Lasagne's
    ``FeatureMaxPoolingLayer`` with ``implementation='reshape'`` as in Dieleman's code).
    """

    def __init__(self, in_features: int, units: int, pieces: int = 2):
        super().__init__()
        self.units, self.pieces = int(units), int(pieces)
        self.linear = nn.Linear(in_features, self.units * self.pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).unflatten(-1, (self.units, self.pieces)).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"units={self.units}, pieces={self.pieces}"


# ----------------------------------------------------------------------------------------- cyclic layers
def cyclic_slice(x: Tensor) -> Tensor:
    """A batch and its rotations by 90, 180 and 270 degrees: ``(N, C, S, S) -> (4 * N, C, S, S)``.

    Rotation-major: rows ``r * N .. (r + 1) * N`` hold the rotation by ``r * 90`` degrees (counter-clockwise,
    :func:`torch.rot90`). Undo with ``.unflatten(0, (4, N))``.
    """
    return torch.cat([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)], dim=0)


class CyclicPool(nn.Module):
    """Pool features over rotations: ``(N, G * R, F) -> (N, G, F)`` (Dieleman, De Fauw & Kavukcuoglu 2016).

    The ``R`` consecutive entries of each group must be the features of the same image region seen under
    the ``R`` rotations, so that rotating the input only permutes them within the group: the pooled
    features are then invariant to those rotations. ``mean`` (the paper's default), ``max`` or ``rms``.
    """

    def __init__(self, rotations: int = 4, pool: str = "mean"):
        super().__init__()
        if pool not in CYCLIC_POOLS:
            raise ValueError(f"cyclic pool must be one of {CYCLIC_POOLS}, got {pool!r}")
        self.rotations, self.pool = int(rotations), pool

    def forward(self, x: Tensor) -> Tensor:
        n, parts, feats = x.shape
        if parts % self.rotations:
            raise ValueError(f"{parts} parts are not groups of {self.rotations} rotations")
        grouped = x.reshape(n, parts // self.rotations, self.rotations, feats)
        if self.pool == "mean":
            return grouped.mean(dim=2)
        if self.pool == "max":
            return grouped.amax(dim=2)
        return grouped.square().mean(dim=2).sqrt()

    def extra_repr(self) -> str:
        return f"rotations={self.rotations}, pool={self.pool!r}"


# ----------------------------------------------------------------------------------------- output layer
class GalaxyZooTree(nn.Module):
    """Galaxy Zoo decision-tree output layer (Dieleman et al. 2015): 37 logits -> 37 cumulative fractions.

    1. ReLU on the 37 outputs.
    2. Per question, divide each answer by the question's sum: ``(r + eps) / (sum(r) + n * eps)`` for a
       question of ``n`` answers. For any question with a positive sum this is Dieleman's
       ``r / (sum(r) + 1e-12)`` to float32 precision; for a question whose answers are all <= 0 it gives
       ``1 / n`` each (Dieleman's gives 0s, which breaks the tree), so the outputs always satisfy the tree.
    3. In tree order (parents before children, :data:`data_catalogs.galaxy_zoo.QUESTIONS`), multiply each
       follow-up question by the cumulative fraction of its parent answer.

    The result satisfies every constraint of the Kaggle tree (Q1 and Q6 sum to 1, every other question sums
    to its parent answer, all values in [0, 1]) for any finite input, and its gradient is finite everywhere
    (the denominators are at least ``n * eps``; with all-zero logits the ReLU passes no gradient).

    ``forward(x, normalised=False)`` gives Dieleman's warm-up output, ``clip(x, 0, 1)`` with no tree.

    Shapes: ``(N, 37)`` float -> ``(N, 37)`` float, columns in
    :data:`data_catalogs.galaxy_zoo.ANSWER_COLUMNS` order.
    """

    def __init__(self, eps: float = 1e-12):
        super().__init__()
        self.eps = float(eps)
        question_of = np.zeros(N_ANSWERS, dtype=np.int64)
        for k, q in enumerate(QUESTIONS):
            question_of[QUESTION_SLICES[q.name]] = k
        same = (question_of[:, None] == question_of[None, :]).astype(np.float32)
        sizes = same.sum(axis=1)
        # (37, 37) block mask: x @ mask gives each answer its question's sum (Dieleman's normalisation mask).
        self.register_buffer("question_mask", torch.from_numpy(same), persistent=False)
        self.register_buffer("answers_in_question", torch.from_numpy(sizes), persistent=False)
        self.order = [(QUESTION_SLICES[q.name], PARENT_INDEX[q.name]) for q in QUESTIONS]

    def conditional(self, x: Tensor) -> Tensor:
        """Steps 1-2: per-question fractions ``(N, 37)``, each question summing to 1."""
        r = F.relu(x)
        sums = r @ self.question_mask.to(r.dtype)
        return (r + self.eps) / (sums + self.answers_in_question.to(r.dtype) * self.eps)

    def forward(self, x: Tensor, normalised: bool = True) -> Tensor:
        if x.shape[-1] != N_ANSWERS:
            raise ValueError(f"expected (N, {N_ANSWERS}) logits, got {tuple(x.shape)}")
        if not normalised:
            return x.clamp(0.0, 1.0)
        cond = self.conditional(x)
        blocks: list[Tensor] = []
        cumulative: dict[int, Tensor] = {}  # answer index -> its cumulative column (N, 1)
        for sl, parent in self.order:  # tree order: every parent answer is done before its children
            block = cond[:, sl] if parent is None else cond[:, sl] * cumulative[parent]
            blocks.append(block)
            for j in range(sl.start, sl.stop):
                cumulative[j] = block[:, j - sl.start, None]
        return torch.cat(blocks, dim=1)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


# ------------------------------------------------------------------------------------------ initialisation
def init_normal_(module: nn.Module, std: float, bias: float) -> None:
    """Dieleman-style initialisation: weights ~ N(0, std), biases (tied or untied) = ``bias``."""
    weight = getattr(module, "weight", None)
    if weight is not None:
        nn.init.normal_(weight, 0.0, std)
    b = getattr(module, "bias", None)
    if isinstance(b, Tensor):
        nn.init.constant_(b, bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
