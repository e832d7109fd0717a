"""``stampflow train morphology|realbogus``: train a model on stamp stores, write model.ckpt + model_card.json.

Runs the train flow (:mod:`flows.train_flow`): ``python -m models.train`` as a subprocess (so that Lightning
DDP works: ``--accelerator gpu --devices 4 --strategy ddp``), cached on the options and the stores' sha256.
"""

from __future__ import annotations

import argparse

from flows.cli_common import extra_argv
from flows.commands._command import add_command, print_result
from models.train_options import add_train_arguments

TASK_HELP = {
    "morphology": "Dieleman et al. 2015 galaxy morphology CNN on /labels/gz_answers (presets: small, dieleman2015; "
    "ResNet backbone: resnet18)",
    "realbogus": "Cabrera-Vives et al. 2017 Deep-HiTS real-bogus CNN on /labels/real (presets: hits, ztf, ztf_fast)",
}


#: Options of ``add_train_arguments`` that :class:`flows.params.TrainParams` has fields for (of the same
#: name, but ``store`` -> ``stores``).
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
    "init_from",
}


#: The one-line help of ``stampflow train`` and its description.
HELP = "train a CNN on stamp stores (morphology, realbogus)"
DESCRIPTION = """\
Train a model on one or more stamp stores (split by object id, seeded) and write OUT/model.ckpt with
OUT/model_card.json (task, preset, channels, stamp size, normalisation, output names, training data hash,
seed, test metrics).
"""


def train_params(task: str, args: argparse.Namespace, parser: argparse.ArgumentParser):
    """:class:`flows.params.TrainParams` of parsed options; options it has no field for are passed on verbatim."""
    from flows.params import TrainParams

    same_name = {name: getattr(args, name) for name in KNOWN - {"store", "devices"}}
    return TrainParams(
        task=task,
        stores=args.store,
        devices=str(args.devices),
        extra_args=extra_argv(parser, args, KNOWN),
        **same_name,
    )


def _train(args: argparse.Namespace) -> int:
    from flows.train_flow import train_flow

    return print_result(train_flow(params=train_params(args.task, args, args.train_parser)))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` with one sub-subcommand per task."""
    train = add_command(subparsers, "train", _train, help=HELP, description=DESCRIPTION)
    tasks = train.add_subparsers(title="tasks", dest="task", metavar="TASK", required=True)
    for task, text in TASK_HELP.items():
        sub = tasks.add_parser(task, help=text, description=text)
        add_train_arguments(sub)
        sub.set_defaults(func=_train, task=task, train_parser=sub)
