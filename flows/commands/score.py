"""``stampflow score`` (a stamp store through a checkpoint into a scored catalog) and ``stampflow report``
(a scored catalog against labels into a report folder).

Exit codes: 0 done; 2 the inputs do not fit (a model card that does not match the store, a checkpoint or
catalog that cannot be read, labels that do not cover the catalog), with the reason on stderr. Both run
their flow (:mod:`flows.score_flow`): scoring in chunks of ``--chunk-rows`` stamps on threads or a Dask
cluster, cached on the sha256 of the checkpoint and the store; the report publishes Prefect artifacts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.cli_common import (
    add_checkpoint_argument,
    add_runner_arguments,
    is_tty,
    parse_csv_list,
    runner_options,
)
from flows.commands._command import add_command, print_result

EXIT_BAD_INPUT = 2

SCORE_HELP = "score a stamp store with a checkpoint (or an exported .onnx) into a scored catalog"
SCORE_DESCRIPTION = (
    "Load a checkpoint (model.ckpt with model_card.json; never runs code), check that its channels, "
    "stamp size and ingest frame match the store (channels in another order are reordered by name; a "
    "store ingested without a frame gets the card's frame applied in memory), and score every stamp in "
    "batches (constant memory) into a catalog: "
    "the store's ids verbatim, one score column per class or Galaxy Zoo answer, the predicted label "
    "(real-bogus: rb, label at the card's threshold, rbversion; morphology: derived classes), a "
    "flag for stamps with masked pixels, model name and version. Parquet (units and meta kept), or "
    "FITS/CSV by the output suffix or --format."
)

REPORT_HELP = "write an evaluation report (confusion matrices, curves, gallery) of a scored catalog"
REPORT_DESCRIPTION = (
    "Compare a scored catalog with labels and write OUT/index.html (self-contained), metrics.json, "
    "summary.md and PNGs: raw and row-normalised confusion matrices, ROC and precision-recall with "
    "the operating point and the missed-real fraction at fixed false positive rates (real-bogus), "
    "RMSE per question and derived-class confusion matrices (morphology), and a gallery of the most "
    "confident mistakes."
)


def _run_flow(run: Callable[[], Any], errors: tuple[type[Exception], ...]) -> int:
    """Run a flow and print its result as JSON; ``errors`` are bad inputs: the reason on stderr, exit 2."""
    try:
        result = run()
    except errors as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return print_result(result)


def _score(args: argparse.Namespace) -> int:
    from flows.score_flow import score_flow
    from pipeline.scoring import ModelInputMismatch
    from pipeline.scoring.onnx_model import OnnxModelError, is_onnx_model
    from pipeline.store import StoreValidationError

    errors: tuple[type[Exception], ...] = (OnnxModelError, ModelInputMismatch, StoreValidationError)
    if not is_onnx_model(args.model):  # an exported .onnx scores without torch, which checkpoints need
        from models.checkpoints import CheckpointError

        errors = (CheckpointError, *errors)

    return _run_flow(
        lambda: score_flow(
            model=args.model,
            store=args.store,
            out=args.out,
            format=args.format,
            batch_size=args.batch_size,
            columns=args.columns,
            device=args.device,
            chunk_rows=args.chunk_rows,
            threads=args.threads,
            backend=args.backend,
            runner=runner_options(args),
            progress=is_tty(),
        ),
        (*errors, FileNotFoundError, KeyError),
    )


def _report(args: argparse.Namespace) -> int:
    from flows.score_flow import report_flow

    options = {"store": args.store, "on": args.on, "n_gallery": args.gallery}
    return _run_flow(
        lambda: report_flow(scored=args.scored, labels=args.labels, out=args.out, **options),
        (ValueError, KeyError, FileNotFoundError),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` and ``report`` subcommands."""
    score = add_command(subparsers, "score", _score, help=SCORE_HELP, description=SCORE_DESCRIPTION)
    add_checkpoint_argument(score)
    score.add_argument("--store", type=Path, required=True, help="stamp store to score")
    score.add_argument("--out", "-o", type=Path, required=True, help="scored catalog (.parquet, .fits, .csv)")
    score.add_argument("--format", choices=["parquet", "fits", "csv"], help="output format (default: suffix)")
    score.add_argument("--batch-size", type=int, default=256, help="stamps per batch (default 256)")
    score.add_argument(
        "--columns", type=parse_csv_list, help="comma-separated store catalog columns to keep (default all)"
    )
    score.add_argument("--device", default="cpu", help="torch device (default cpu)")
    score.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads per scoring task (default: 1 when the store is scored in several chunks "
        "side by side, else torch's default)",
    )
    score.add_argument(
        "--backend",
        choices=["auto", "onnxruntime", "eager"],
        default="auto",
        help="how the model runs: auto (ONNX Runtime on CPU when it matches PyTorch within 1e-4, else "
        "PyTorch; PyTorch for stores under 20,000 stamps, where the export costs more than it saves; "
        "default), onnxruntime, eager (PyTorch)",
    )
    add_runner_arguments(score, chunk=("--chunk-rows", 8192, "stamps"))

    report = add_command(subparsers, "report", _report, help=REPORT_HELP, description=REPORT_DESCRIPTION)
    report.add_argument("--scored", type=Path, required=True, help="scored catalog from stampflow score")
    report.add_argument(
        "--labels",
        type=Path,
        required=True,
        help="the labelled stamp store (.h5), or a CSV/Parquet label table (e.g. Kaggle training_solutions)",
    )
    report.add_argument("--out", "-o", type=Path, required=True, help="report folder")
    report.add_argument(
        "--store",
        type=Path,
        help="stamp store for the gallery (default: --labels if a store, else the catalog's)",
    )
    report.add_argument(
        "--on", help="id column joining a label table (default: objectId, candid, GalaxyID...)"
    )
    report.add_argument("--gallery", type=int, default=12, help="stamps in the mistakes gallery (default 12)")
