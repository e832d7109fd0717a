"""``stampflow train morphology|realbogus``: train a model on stamp stores, write model.ckpt + model_card.json.

Runs the train flow (:mod:`flows.train_flow`): ``python -m models.train`` as a subprocess (so that Lightning
DDP works: ``--accelerator gpu --devices 4 --strategy ddp``), cached on the options and the stores' sha256.
"""

from __future__ import annotations

import argparse
import json

from flows.cli_common import extra_argv
from models.train_options import add_train_arguments

TASK_HELP = {
    "morphology": "Dieleman et al. 2015 galaxy morphology CNN on /labels/gz_answers (presets: small, dieleman2015)",
    "realbogus": "Cabrera-Vives et al. 2017 Deep-HiTS real-bogus CNN on /labels/real (presets: hits, ztf)",
}


#: Options of ``add_train_arguments`` that :class:`flows.params.TrainParams` has fields for.
KNOWN = {
    "store",
    "out",
    "preset",
    "max_epochs",
    "max_minutes",
    "batch_size",
    "seed",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "threads",
}


def train_params(task: str, args: argparse.Namespace, parser: argparse.ArgumentParser):
    """:class:`flows.params.TrainParams` of parsed options; options it has no field for are passed on verbatim."""
    from flows.params import TrainParams

    return TrainParams(
        task=task,
        stores=args.store,
        out=args.out,
        preset=args.preset,
        max_epochs=args.max_epochs,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        seed=args.seed,
        accelerator=args.accelerator,
        devices=str(args.devices),
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        threads=args.threads,
        extra_args=extra_argv(parser, args, KNOWN),
    )


def _train(args: argparse.Namespace) -> int:
    from flows.train_flow import train_flow

    result = train_flow(params=train_params(args.task, args, args.train_parser))
    print(json.dumps(result, indent=2))
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
        sub.set_defaults(func=_train, task=task, train_parser=sub)
