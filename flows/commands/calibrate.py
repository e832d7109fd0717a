"""``stampflow calibrate --model CKPT --store S --out NEW_DIR``: recalibrate a real-bogus model on a labelled
real set (a stamp store with ``/labels/real``) into a new model version.

Runs the calibrate flow (:func:`flows.train_flow.calibrate_flow`) over :mod:`models.calibration`: the
temperature and the threshold at ``--fpr`` are fitted on the store; NEW_DIR gets ``model.ckpt`` (the same
weights) and ``model_card.json`` recording the data's hash, the rule and the metrics before and after.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import EXIT_USAGE, CommandError, add_checkpoint_argument
from flows.commands._command import add_command, print_result

HELP = "recalibrate a real-bogus model on labelled real stamps (temperature, threshold) as a new version"
DESCRIPTION = """\
Fit the temperature and the operating threshold of a real-bogus checkpoint on a labelled stamp store
(/labels/real: 1 real, 0 bogus; e.g. your own alerts through `stampflow ingest-labelled`) and write a new
model version to NEW_DIR (model.ckpt with the same weights, model_card.json with the calibration data's
sha256, the threshold rule and NLL, ECE, ROC AUC and FPR/FNR at the threshold before and after). The
threshold is the lowest score whose false positive rate on these data is at most --fpr. Prints a JSON
summary.
"""


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value}")
    return value


def _calibrate(args: argparse.Namespace) -> int:
    from flows.train_flow import calibrate_flow
    from models.checkpoints import CheckpointError
    from pipeline.scoring import ModelInputMismatch
    from pipeline.store import StoreValidationError

    try:
        result = calibrate_flow(
            model=args.model, store=args.store, out=args.out, labels_column=args.labels_column, fpr=args.fpr
        )
    except (CheckpointError, ModelInputMismatch, StoreValidationError, KeyError) as err:
        raise CommandError(str(err), EXIT_USAGE) from err
    return print_result(result)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` subcommand."""
    parser = add_command(subparsers, "calibrate", _calibrate, help=HELP, description=DESCRIPTION)
    add_checkpoint_argument(parser, "real-bogus checkpoint")
    parser.add_argument(
        "--store", type=Path, required=True, help="labelled stamp store (the calibration set)"
    )
    parser.add_argument("--out", "-o", type=Path, required=True, help="folder of the new model version")
    parser.add_argument(
        "--labels-column",
        help="store label with the class index (default: the model's target, 'real': 1 real, 0 bogus)",
    )
    parser.add_argument(
        "--fpr",
        type=_fraction,
        help="target false positive rate of the threshold on these data (default: the card's threshold_fpr)",
    )
