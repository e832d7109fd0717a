"""Size and speed of the ``dieleman2015`` morphology preset: parameters and forward+backward time.

Builds :class:`models.morphology.MorphologyModel` with the paper's preset (Dieleman et al. 2015 report about
42 million parameters), then times ``--repeats`` training passes (forward, MSE loss against fixed targets,
backward) on a batch of raw 424x424 RGB images (crop, downsample, 16 viewpoints inside the model), after
one warm-up pass. Prints JSON: parameter counts per part of the network, the best and median seconds per
pass, and images per second.

Usage: python benchmarks/morphology_params.py [--batch 16] [--repeats 3] [--device cpu|cuda] [--preset P]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from models.components import count_parameters
from models.morphology import MorphologyModel


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dieleman2015")
    parser.add_argument("--batch", type=int, default=16, help="images per pass (Dieleman trained with 16)")
    parser.add_argument("--size", type=int, default=424, help="side of the raw RGB images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device(args.device)
    model = MorphologyModel(args.preset).to(device).train()
    net = model.net
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    target = torch.full((args.batch, 37), 0.1, device=device)
    times = []
    for i in range(args.repeats + 1):
        model.zero_grad(set_to_none=True)
        _sync(device)
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        _sync(device)
        if i > 0:  # the first pass is a warm-up
            times.append(time.perf_counter() - t0)
    result = {
        "preset": args.preset,
        "parameters": count_parameters(model),
        "parameters_paper": "about 42 million (Dieleman et al. 2015)",
        "parameters_by_part": {
            "conv": count_parameters(net.convs),
            "dense": count_parameters(net.dense),
            "output": count_parameters(net.head),
        },
        "input": [args.batch, 3, args.size, args.size],
        "frame": net.config.frame_size,
        "parts_per_image": 16 if net.config.viewpoints else 1,
        "forward_backward_s_best": round(min(times), 4),
        "forward_backward_s_median": round(statistics.median(times), 4),
        "images_per_s": round(args.batch / min(times), 1),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
