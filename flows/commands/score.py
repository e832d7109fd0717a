"""``stampflow score`` (a stamp store through a checkpoint into a scored catalog) and ``stampflow report``
(a scored catalog against labels into a report folder).

Exit codes: 0 done; 2 the inputs do not fit (a model card that does not match the store, a checkpoint or
catalog that cannot be read, labels that do not cover the catalog), with the reason on stderr. Both run
their flow (:mod:`flows.score_flow`): scoring in chunks of ``--chunk-rows`` stamps on threads or a Dask
cluster, cached on the sha256 of the checkpoint and the store; the report publishes Prefect artifacts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flows.cli_common import add_runner_arguments, is_tty, runner_options

EXIT_BAD_INPUT = 2


def _csv_list(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _score(args: argparse.Namespace) -> int:
    from flows.score_flow import score_flow
    from models.checkpoints import CheckpointError
    from pipeline.scoring import ModelInputMismatch
    from pipeline.store import StoreValidationError

    try:
        result = score_flow(
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
        )
    except (CheckpointError, ModelInputMismatch, StoreValidationError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(result, indent=2))
    return 0


def _report(args: argparse.Namespace) -> int:
    from flows.score_flow import report_flow

    try:
        summary = report_flow(
            scored=args.scored,
            labels=args.labels,
            out=args.out,
            store=args.store,
            on=args.on,
            n_gallery=args.gallery,
        )
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(summary, indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``score`` and ``report`` subcommands."""
    score = subparsers.add_parser(
        "score",
        help="score a stamp store with a checkpoint into a scored catalog",
        description=(
            "Load a checkpoint (model.ckpt with model_card.json; never runs code), check that its channels and "
            "stamp size match the store, and score every stamp in batches (constant memory) into a catalog: "
            "the store's ids verbatim, one score column per class or Galaxy Zoo answer, the predicted label "
            "(real-bogus: rb, label at the card's threshold, rbversion; morphology: derived classes), a "
            "flag for stamps with masked pixels, model name and version. Parquet (units and meta kept), or "
            "FITS/CSV by the output suffix or --format."
        ),
    )
    score.add_argument("--model", type=Path, required=True, help="checkpoint (model.ckpt)")
    score.add_argument("--store", type=Path, required=True, help="stamp store to score")
    score.add_argument("--out", "-o", type=Path, required=True, help="scored catalog (.parquet, .fits, .csv)")
    score.add_argument("--format", choices=["parquet", "fits", "csv"], help="output format (default: suffix)")
    score.add_argument("--batch-size", type=int, default=256, help="stamps per batch (default 256)")
    score.add_argument(
        "--columns", type=_csv_list, help="comma-separated store catalog columns to keep (default all)"
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
        "PyTorch; default), onnxruntime, eager (PyTorch)",
    )
    add_runner_arguments(score, chunk=("--chunk-rows", 8192, "stamps"))
    score.set_defaults(func=_score)

    report = subparsers.add_parser(
        "report",
        help="write an evaluation report (confusion matrices, curves, gallery) of a scored catalog",
        description=(
            "Compare a scored catalog with labels and write OUT/index.html (self-contained), metrics.json, "
            "summary.md and PNGs: raw and row-normalised confusion matrices, ROC and precision-recall with "
            "the operating point and the missed-real fraction at fixed false positive rates (real-bogus), "
            "RMSE per question and derived-class confusion matrices (morphology), and a gallery of the most "
            "confident mistakes."
        ),
    )
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
    report.set_defaults(func=_report)
