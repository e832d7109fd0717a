"""Shared CNN layers: the Galaxy Zoo tree output, maxout, conv stacks, cyclic pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from data_catalogs.galaxy_zoo import (
    QUESTION_SLICES,
    QUESTIONS,
    cumulative_from_conditional,
    question_sums,
    tree_violations,
)
from models.components import layers

DIELEMAN_CONV = [(32, 6, 0, 2), (64, 5, 0, 2), (128, 3, 0, 1), (128, 3, 0, 2)]
DEEP_HITS_CONV = [(32, 4, 3, 1), (32, 3, 1, 2), (64, 3, 1, 1), (64, 3, 1, 1), (64, 3, 1, 2)]


def _logits(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 37, generator=g) * 2.0
    x[: n // 10] = -torch.rand(n // 10, 37, generator=g)  # every question dead
    x[n // 10 : n // 5] *= 1e6  # huge logits
    x[n // 5 : n // 5 + 10] = 1e-30  # tiny positive logits
    return x


# ------------------------------------------------------------------------------------------------ tree
def test_tree_outputs_satisfy_every_constraint_of_the_tree_for_random_inputs():
    out = layers.GalaxyZooTree()(_logits(4000, seed=0))
    assert out.shape == (4000, 37) and out.dtype == torch.float32
    problems = tree_violations(out.double().numpy(), tol=1e-6)
    bad = [(i, p) for i, p in enumerate(problems) if p]
    assert not bad, bad[:5]
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_tree_is_dieleman_relu_divide_then_multiply_by_the_parent():
    x = _logits(2000, seed=1)
    relu = np.maximum(x.double().numpy(), 0.0)
    live = (question_sums(relu) > 1e-3).all(axis=1)  # rows where no question is (nearly) all <= 0
    x, relu = x[torch.from_numpy(live)], relu[live]
    assert len(x) > 200
    sums = np.repeat(question_sums(relu), [len(q.answers) for q in QUESTIONS], axis=1)
    expected = cumulative_from_conditional(relu / (sums + 1e-12))
    np.testing.assert_allclose(layers.GalaxyZooTree()(x).double().numpy(), expected, atol=1e-6, rtol=0)


def test_tree_gives_a_dead_question_equal_answers_and_scales_its_children():
    x = torch.full((1, 37), 0.5)
    x[0, QUESTION_SLICES["Q1"]] = torch.tensor([-1.0, -2.0, 0.0])
    out = layers.GalaxyZooTree()(x)[0]
    np.testing.assert_allclose(out[QUESTION_SLICES["Q1"]].numpy(), [1 / 3] * 3, atol=1e-7)
    np.testing.assert_allclose(out[QUESTION_SLICES["Q2"]].numpy(), [1 / 6, 1 / 6], atol=1e-7)
    np.testing.assert_allclose(out[QUESTION_SLICES["Q7"]].numpy(), [1 / 9] * 3, atol=1e-7)


@pytest.mark.parametrize("fill", [0.0, 1e-30, -1.0])
def test_tree_gradients_are_finite_for_zero_tiny_and_negative_logits(fill):
    x = torch.full((4, 37), fill, requires_grad=True)
    out = layers.GalaxyZooTree()(x)
    (out * torch.arange(37.0)).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_tree_gradients_are_finite_and_nonzero_for_random_logits():
    x = _logits(200, seed=2).requires_grad_(True)
    layers.GalaxyZooTree()(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_warmup_output_is_the_clipped_logits_without_the_tree():
    x = torch.tensor([[-0.5, 0.25, 2.0] + [0.3] * 34])
    out = layers.GalaxyZooTree()(x, normalised=False)
    assert torch.equal(out, x.clamp(0, 1))
    assert tree_violations(out.double().numpy())[0]  # not a tree output


# ---------------------------------------------------------------------------------------------- dense
def test_maxout_takes_the_max_of_consecutive_linear_units():
    torch.manual_seed(0)
    layer = layers.Maxout(10, units=4, pieces=3)
    x = torch.randn(5, 10)
    linear = layer.linear(x).detach().numpy().reshape(5, 4, 3)
    np.testing.assert_allclose(layer(x).detach().numpy(), linear.max(axis=2), rtol=1e-6)
    assert layers.count_parameters(layer) == 10 * 12 + 12


# ------------------------------------------------------------------------------------------ conv stacks
@pytest.mark.parametrize(
    ("specs", "channels", "size", "expected"),
    [
        (DIELEMAN_CONV, 3, 45, (128, 2, 2)),
        (DEEP_HITS_CONV, 4, 21, (64, 6, 6)),
        (DIELEMAN_CONV, 3, 69, (128, 5, 5)),
    ],
)
def test_conv_output_shape_is_what_the_stack_produces(specs, channels, size, expected):
    assert layers.conv_output_shape(specs, channels, size) == expected
    stack = layers.conv_stack(channels, specs, in_size=size)
    assert tuple(stack(torch.zeros(2, channels, size, size)).shape[1:]) == expected


def test_untied_biases_have_one_value_per_channel_and_pixel():
    stack = layers.conv_stack(3, DIELEMAN_CONV, in_size=45, untied_biases=True)
    convs = [m for m in stack if isinstance(m, nn.Conv2d)]
    biases = [tuple(m.bias.shape) for m in stack if isinstance(m, layers.UntiedBias2d)]
    assert all(c.bias is None for c in convs)
    assert biases == [(32, 40, 40), (64, 16, 16), (128, 6, 6), (128, 4, 4)]
    tied = layers.count_parameters(layers.conv_stack(3, DIELEMAN_CONV))
    assert layers.count_parameters(stack) == tied - (32 + 64 + 128 + 128) + sum(
        int(np.prod(b)) for b in biases
    )


def test_conv_stack_refuses_inputs_too_small_for_it():
    with pytest.raises(ValueError, match="leaves nothing"):
        layers.conv_output_shape(DIELEMAN_CONV, 3, 30)
    with pytest.raises(ValueError, match="in_size"):
        layers.conv_stack(3, DIELEMAN_CONV, untied_biases=True)
    assert layers.ConvSpec.from_any([8, 3]) == layers.ConvSpec(8, 3, 0, 1)


def test_leaky_relu_activation_has_the_given_slope():
    act = layers.make_activation("leaky_relu", 0.01)
    assert torch.allclose(act(torch.tensor([-2.0, 3.0])), torch.tensor([-0.02, 3.0]))
    with pytest.raises(ValueError):
        layers.make_activation("tanh")


# ------------------------------------------------------------------------------------------------ cyclic
@pytest.mark.parametrize("pool", ["mean", "max", "rms"])
def test_cyclic_pool_is_invariant_to_permutations_within_each_group(pool):
    torch.manual_seed(3)
    x = torch.randn(2, 16, 5)
    perm = torch.tensor([1, 2, 3, 0, 4, 5, 6, 7, 11, 8, 9, 10, 14, 15, 12, 13])  # cycles within groups of 4
    layer = layers.CyclicPool(4, pool)
    out = layer(x)
    assert out.shape == (2, 4, 5)
    assert torch.allclose(out, layer(x[:, perm]), atol=1e-6)
    grouped = x.numpy().reshape(2, 4, 4, 5)
    ref = {"mean": grouped.mean(2), "max": grouped.max(2), "rms": np.sqrt((grouped**2).mean(2))}[pool]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, layer(x[:, torch.arange(15, -1, -1)]))  # across groups: changes


def test_cyclic_slice_stacks_the_four_rotations_along_the_batch():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).reshape(2, 1, 3, 3)
    out = layers.cyclic_slice(x).unflatten(0, (4, 2))
    for r in range(4):
        assert torch.equal(out[r], torch.rot90(x, r, dims=(-2, -1)))


def test_a_conv_stack_in_chunks_gives_the_whole_batch_values_and_gradients():
    from models.components.layers import conv_chunk_items, conv_stack, in_chunks

    specs = [(32, 4, 3, 1), (32, 3, 1, 2), (64, 3, 1, 2)]
    assert conv_chunk_items(specs, 63) == 16  # 32 x 66 x 66 float32 per item: 16 items per chunk
    assert conv_chunk_items(specs, 21) == 6 * 1024**2 // (32 * 24 * 24 * 4)
    torch.manual_seed(0)
    stack = conv_stack(3, specs, activation="leaky_relu")
    x = torch.randn(50, 3, 63, 63)
    whole = stack(x)
    whole.square().sum().backward()
    grads = [p.grad.clone() for p in stack.parameters()]
    stack.zero_grad()
    chunked = in_chunks(stack, x, 16)  # 4 chunks of 13, 13, 13 and 11 items
    chunked.square().sum().backward()
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    for got, want in zip((p.grad for p in stack.parameters()), grads, strict=True):
        # sums over 50 x 66 x 66 terms in another order: equal up to float32 rounding of the largest
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4 * float(want.abs().max()))
    stack.eval()  # inference takes the whole batch (no chunk size in traced graphs)
    assert torch.equal(in_chunks(stack, x, 16), stack(x))
