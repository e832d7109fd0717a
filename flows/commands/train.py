"""``stampflow train morphology|realbogus``: train a model on stamp stores, write model.ckpt + model_card.json."""

from __future__ import annotations

import argparse
import json

from models.train_options import add_train_arguments

TASK_HELP = {
    "morphology": "Dieleman et al. 2015 galaxy morphology CNN on /labels/gz_answers (presets: small, dieleman2015)",
    "realbogus": "Cabrera-Vives et al. 2017 Deep-HiTS real-bogus CNN on /labels/real (presets: hits, ztf)",
}


def _train(args: argparse.Namespace) -> int:
    from models.train import run_from_args

    result = run_from_args(args.task, args)
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` with one sub-subcommand per task."""
    train = subparsers.add_parser(
        "train",
        help="train a CNN on stamp stores (morphology, realbogus)",
        description=(
            "Train a model on one or more stamp stores (split by object id, seeded) and write "
            "OUT/model.ckpt with OUT/model_card.json (task, preset, channels, stamp size, normalisation, "
            "output names, training data hash, seed, test metrics)."
        ),
    )
    tasks = train.add_subparsers(title="tasks", dest="task", metavar="TASK", required=True)
    for task, text in TASK_HELP.items():
        sub = tasks.add_parser(task, help=text, description=text)
        add_train_arguments(sub)
        sub.set_defaults(func=_train, task=task)
