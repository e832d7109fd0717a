"""Command-line options of training, shared by ``python -m models.train`` and ``stampflow train``.

Kept free of heavy imports (torch, lightning) so that ``stampflow --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options shared by ``python -m models.train`` and ``stampflow train``."""
    parser.add_argument("--store", action="append", required=True, type=Path, help="stamp store (repeatable)")
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder for model.ckpt and model_card.json"
    )
    parser.add_argument("--preset", required=True, help="model preset")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--max-minutes", type=float, help="wall-time limit for fitting, minutes")
    parser.add_argument(
        "--max-cpu-minutes",
        type=float,
        help="limit on the CPU time of training (all threads), CPU-minutes: the same compute whatever "
        "else runs on the machine ('5 minutes on 2 cores' = 10)",
    )
    parser.add_argument("--max-steps", type=int, help="optimiser-step limit (reproducible)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu, auto (default cpu)")
    parser.add_argument("--devices", default="1", help="number of devices or 'auto'")
    parser.add_argument("--num-nodes", type=int, default=1)
    parser.add_argument("--strategy", default="auto", help="e.g. ddp for several GPUs")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--init-from",
        type=Path,
        metavar="CKPT",
        help="fine-tune: start from this checkpoint's weights (same task, preset, channels and stamp size); "
        "the new model has its own seed, split, calibration and threshold, and its card names the parent",
    )
