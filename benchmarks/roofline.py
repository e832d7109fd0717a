"""The machine's own reference for model throughput: torch's fp32 matmul rate, model FLOPs counted by torch,
and throughput measured interleaved with the reference so that both see the same machine load.

- :func:`matmul_gflops`: GFLOP/s of ``a @ b`` for two ``n x n`` float32 matrices (2 n^3 FLOPs per product;
  n = 2048), best of ``repeats`` products, with torch's current thread count.
- :func:`flops_per_item`: FLOPs per stamp of a function on a batch, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, forward and, when the
  function runs a backward pass, backward; 1 multiply-add = 2 FLOPs; elementwise work is not counted).
- :func:`interleaved`: rounds of (reference, then every case): the best rate of each case over all its calls
  and the best reference over all rounds, so a ratio is of two best-cases taken minutes apart at most
  (the machine is shared: other processes may load it).
- :func:`fraction`: ``rate * flops / reference``.

Usage: python benchmarks/roofline.py [--n 2048] [--repeats 5] [--threads 2]   (prints JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

#: Side of the matrices of the reference product.
MATMUL_N = 2048


def matmul_gflops(n: int = MATMUL_N, repeats: int = 5, seed: int = 0) -> float:
    """fp32 GFLOP/s of ``torch.mm`` on ``n x n`` matrices: ``2 n^3`` FLOPs over the best of ``repeats``
    products (after 2 warm-up products), with torch's current number of threads."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    out = torch.empty(n, n)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def flops_per_item(fn: Callable[[], Any], items: int) -> float:
    """FLOPs of one call of ``fn`` per item (``FlopCounterMode``: conv and matmul, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / items


def best_rate(fn: Callable[[], Any], items: int, min_seconds: float = 1.0, min_calls: int = 2) -> float:
    """Items/s of the fastest call of ``fn`` among at least ``min_calls`` calls and ``min_seconds`` s."""
    best, calls, start = float("inf"), 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return items / best


def interleaved(
    cases: Mapping[str, tuple[Callable[[], Any], int]],
    rounds: int = 2,
    min_seconds: float = 1.0,
    warmup: bool = True,
) -> dict[str, Any]:
    """Measure ``cases`` (name -> (function, items per call)) and the matmul reference in alternation.

    Each round measures the reference, then each case (:func:`best_rate`); a last reference closes the
    run. Returns ``{"reference_gflops": best, "reference_all": [...], "rates": {name: best items/s},
    "rates_all": {name: [per round]}}``.
    """
    if warmup:
        for fn, _ in cases.values():
            fn()
    reference, rates = [], {name: [] for name in cases}
    for _ in range(rounds):
        reference.append(matmul_gflops())
        for name, (fn, items) in cases.items():
            rates[name].append(best_rate(fn, items, min_seconds))
    reference.append(matmul_gflops())
    return {
        "reference_gflops": max(reference),
        "reference_all": [round(v, 1) for v in reference],
        "rates": {name: max(values) for name, values in rates.items()},
        "rates_all": {name: [round(v, 1) for v in values] for name, values in rates.items()},
    }


def fraction(rate: float, flops: float, reference_gflops: float) -> float:
    """Fraction of the reference reached by ``rate`` items/s of ``flops`` FLOPs each."""
    return rate * flops / 1e9 / reference_gflops


def run(n: int = MATMUL_N, repeats: int = 5, threads: int | None = None) -> dict[str, Any]:
    """The reference alone: fp32 matmul GFLOP/s of torch on this machine."""
    if threads:
        torch.set_num_threads(threads)
    return {
        "benchmark": "roofline",
        "matmul_n": n,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "matmul_fp32_gflops": round(matmul_gflops(n, repeats), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=MATMUL_N)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.repeats, args.threads), indent=2))


if __name__ == "__main__":
    main()
