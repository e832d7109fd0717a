"""``stampflow alerts score`` (alert packets straight through a real-bogus model into broker output, once or
following a folder) and ``stampflow alerts ingest`` (packets into a stamp store).

Exit codes: 0 done (``score``: something was scored or there was nothing to score; ``ingest``: something was
ingested); 1 nothing could be scored/ingested; 2 the model cannot be used (missing or unsafe checkpoint,
not a real-bogus model, models of different stamp sizes) or the ``--quality-config`` is invalid; 3 the output
cannot be written.

For Spark pandas UDFs: :func:`models.alert_scoring.score_alerts` (the model named by ``model=`` or
``$STAMPFLOW_ALERT_MODEL``, loaded once per process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flows.cli_common import (
    EXIT_NOTHING_INGESTED,
    add_runner_arguments,
    checkpoint_path,
    parse_stamp_size,
    run_ingest_and_report,
)
from flows.commands._command import add_command
from flows.commands.alerts_kafka import add_kafka_arguments, score_kafka, stop_on_signals

if TYPE_CHECKING:
    from pipeline.alerts import AlertScoreReport, QualityThresholds
    from pipeline.scoring import Scorer

EXIT_BAD_MODEL = 2

SCORE_HELP = "score alert packets with a real-bogus model: Parquet catalog + Avro broker records"
SCORE_DESCRIPTION = (
    "Decode the packets, pad CCD-edge stamps (candidate centred, padding masked), score them in "
    "micro-batches and write OUT/scored.parquet (alert fields verbatim + rb, p_<class>, label, model "
    "name/version), OUT/classifications.avro (one record per alert, schema "
    "data_catalogs/schemas/stampflow.classification.avsc; --jsonl adds classifications.jsonl), "
    "OUT/rejects.csv, OUT/summary.json and OUT/manifest.json (the run's record: models, thresholds, "
    "counts). Every scored alert carries quality flags as columns (flag_masked, "
    "flag_edge, nan_fraction/flag_nan, core_peak/flag_saturated_core, flag_nbad, quality_flags bits; "
    "thresholds from --quality-config, default the shipped quality_defaults.toml): no alert is dropped for "
    "quality. --model repeated: each batch is decoded once and scored by every model (the first model's "
    "columns as with one model, the others' as rb_<name>, p_<class>_<name>, label_<name>; one broker "
    "record per alert and model). With --follow, watch the INPUT folders and score new "
    "files as they land into OUT/batches/NNNNNN/, each file exactly once across restarts "
    "(state in OUT/follow_state.sqlite); stop with Ctrl-C/SIGTERM (the current batch is finished)."
)

INGEST_HELP = (
    "ingest alert packets into a stamp store (SCIENCE, TEMPLATE, DIFFERENCE; alert fields as catalog)"
)
INGEST_DESCRIPTION = (
    "Read alert packets into an HDF5 stamp store (channels SCIENCE, TEMPLATE, DIFFERENCE, 63x63 by "
    "default; CCD-edge stamps padded with the candidate centred and the padding masked; NaN and blank "
    "pixels masked) with the alert fields (objectId, candid, ra, dec, jd, fid, magpsf, isdiffpos, "
    "diff_sign, nbad, rb, drb, ...) as catalog, and rejects.csv. One survey per store."
)


# --------------------------------------------------------------------------------------------- score
def _score_once(args: argparse.Namespace, scorer: list[Scorer], quality: QualityThresholds) -> int:
    from pipeline.alerts import score_alert_files

    report = score_alert_files(
        args.inputs,
        scorer,
        args.out,
        quality=quality,
        jsonl=args.jsonl,
        batch_alerts=args.batch_alerts,
        workers=args.workers,
        progress=sys.stderr.isatty(),
    )
    _record_score(args, report)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    if report.n_inputs and not report.n_scored:
        print(f"error: nothing could be scored; see {args.out / 'rejects.csv'}", file=sys.stderr)
        return EXIT_NOTHING_INGESTED
    return 0


def _record_score(args: argparse.Namespace, report: AlertScoreReport) -> None:
    """The run's record: stage ``alerts_score`` of ``OUT/manifest.json`` with the models, the quality
    thresholds and the counts (inputs = scored + rejected, duplicates among the rejected; flagged among the
    scored), checked (:func:`flows.stages.stage_counts`)."""
    from flows.stages import StageRecorder, stage_counts
    from pipeline.runs import MANIFEST_NAME

    counts = stage_counts(
        report.n_inputs,
        report.n_scored,
        rejected=report.n_rejected,
        flagged=report.n_flagged,
        reject_reasons=report.reject_reasons,
        stage="alerts_score",
        duplicates=report.n_duplicates,
        flag_counts=report.flag_counts,
    )
    config = {
        "inputs": [str(p) for p in args.inputs],
        "models": report.models,
        "quality_thresholds": report.quality_thresholds,
        "batch_alerts": args.batch_alerts,
    }
    StageRecorder(Path(args.out) / MANIFEST_NAME).record(
        "alerts_score",
        [],
        config=config,
        outputs={"folder": report.folder},
        seconds=report.seconds,
        counts=counts,
    )


def _score_follow(args: argparse.Namespace, scorer: list[Scorer], quality: QualityThresholds) -> int:
    from pipeline.alerts import FollowSettings, follow_alerts

    with stop_on_signals() as stop:
        result = follow_alerts(
            args.inputs,
            scorer,
            args.out,
            settings=FollowSettings(
                poll_s=args.poll,
                settle_s=args.settle,
                max_batch_files=args.max_batch_files,
                truncated_grace_s=args.truncated_grace,
                idle_exit_s=args.idle_exit,
                max_batches=args.max_batches,
            ),
            quality=quality,
            jsonl=args.jsonl,
            batch_alerts=args.batch_alerts,
            workers=args.workers,
            stop=stop,
        )
    summary = {k: v for k, v in result.to_dict().items() if k != "batch_summaries"}
    print(json.dumps(summary, indent=2) if args.json else f"follow: {summary}")
    return 0


def _alert_scorer(model: Path, device: str) -> Scorer:
    """The real-bogus scorer of one ``--model``: an exported ``.onnx`` (ONNX Runtime alone, no torch) or a
    checkpoint. Raises ValueError (CheckpointError, OnnxModelError) for a model that cannot be used."""
    from pipeline.alerts import require_real_bogus
    from pipeline.scoring.onnx_model import is_onnx_model, load_onnx_scorer

    if is_onnx_model(model):
        return require_real_bogus(load_onnx_scorer(model))
    from models.alert_scoring import load_alert_scorer

    return load_alert_scorer(model, device)  # refuses a model that is not real-bogus


def _score(args: argparse.Namespace) -> int:
    from pipeline.alerts import AlertScorer, load_quality_config

    try:
        quality = load_quality_config(args.quality_config)
        scorer = [_alert_scorer(model, args.device) for model in args.model]
        AlertScorer(scorer, quality=quality)  # models of different stamp sizes are refused here
    except (ValueError, FileNotFoundError) as err:  # QualityConfigError is a ValueError naming file and key
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_MODEL
    if args.kafka:
        return score_kafka(args, scorer, quality)
    if not args.inputs:
        print("error: give alert files/folders, or --kafka BOOTSTRAP --topic T", file=sys.stderr)
        return EXIT_NOTHING_INGESTED
    if args.follow:
        missing = [str(p) for p in args.inputs if not Path(p).is_dir()]
        if missing:
            print(f"error: --follow watches folders; not folders: {missing}", file=sys.stderr)
            return EXIT_NOTHING_INGESTED
    # an output that cannot be written is an OutputError: exit 3 (flows.cli.run_command)
    return _score_follow(args, scorer, quality) if args.follow else _score_once(args, scorer, quality)


def _ingest(args: argparse.Namespace) -> int:
    """``stampflow alerts ingest``: the ingest flow on an :class:`flows.params.AlertSource` (in chunks of
    ``--chunk-files`` files, cached, on threads or Dask), like ``stampflow ingest`` for FITS files."""
    from flows.commands.ingest import run_ingest_flow
    from flows.params import AlertSource

    source = AlertSource(inputs=args.inputs, stamp_shape=args.stamp_size, size_policy=args.on_size_mismatch)
    return run_ingest_and_report(lambda: run_ingest_flow(source, args, chunked=True), args.json)


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes decoding packets (default 0: one per usable CPU when there are at least 32 files; "
        "1: decode in this process)",
    )


def _add_score_parser(sub: argparse._SubParsersAction) -> None:
    score = add_command(sub, "score", _score, help=SCORE_HELP, description=SCORE_DESCRIPTION)
    score.add_argument(
        "inputs",
        nargs="*",
        type=Path,
        help="Avro files and/or folders (folders with --follow; none with --kafka)",
    )
    score.add_argument(
        "--model",
        type=checkpoint_path,
        action="append",
        required=True,
        help="real-bogus checkpoint (model.ckpt), an exported model (.onnx) or a shipped model's name; "
        "repeat to score every batch with several models (decoded once)",
    )
    score.add_argument(
        "--quality-config",
        type=Path,
        help="TOML file of quality-flag thresholds over the shipped defaults "
        "(pipeline/alerts/quality_defaults.toml; docs/alerts.md, 'Quality flags')",
    )
    score.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    score.add_argument("--jsonl", action="store_true", help="also write classifications.jsonl")
    score.add_argument("--batch-alerts", type=int, default=1024, help="alerts per model call (default 1024)")
    score.add_argument("--device", default="cpu", help="torch device (default cpu)")
    _add_workers(score)
    score.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_follow_arguments(score)
    add_kafka_arguments(score)


def _add_follow_arguments(score: argparse.ArgumentParser) -> None:
    score.add_argument("--follow", action="store_true", help="watch the INPUT folders and score new files")
    score.add_argument("--poll", type=float, default=1.0, help="--follow: seconds between scans (default 1)")
    score.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="--follow: a file is taken once unchanged for this many seconds (default 2)",
    )
    score.add_argument(
        "--max-batch-files", type=int, default=1000, help="--follow: files per batch at most (default 1000)"
    )
    score.add_argument(
        "--truncated-grace",
        type=float,
        default=60.0,
        help="--follow: a truncated file younger than this is retried later (default 60 s)",
    )
    score.add_argument("--idle-exit", type=float, help="--follow: stop after this many idle seconds")
    score.add_argument("--max-batches", type=int, help="--follow: stop after this many batches")


def _add_ingest_parser(sub: argparse._SubParsersAction) -> None:
    ingest = add_command(sub, "ingest", _ingest, help=INGEST_HELP, description=INGEST_DESCRIPTION)
    ingest.add_argument("inputs", nargs="+", type=Path, help="Avro files and/or folders")
    ingest.add_argument("--out", "-o", type=Path, required=True, help="stamp store to write")
    ingest.add_argument("--rejects", type=Path, help="rejects CSV (default: rejects.csv beside the store)")
    ingest.add_argument(
        "--compression", choices=["lzf", "gzip", "none"], default="lzf", help="HDF5 compression (default lzf)"
    )
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.add_argument(
        "--stamp-size", type=parse_stamp_size, default=(63, 63), help="store stamp size N or HxW (default 63)"
    )
    ingest.add_argument(
        "--on-size-mismatch",
        choices=["pad", "reject"],
        default="pad",
        help="smaller stamps: pad them, candidate centred, padding masked (default), or reject them",
    )
    add_runner_arguments(ingest, chunk=("--chunk-files", 1000, "files"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``alerts`` with the ``score`` and ``ingest`` subcommands."""
    alerts = subparsers.add_parser(
        "alerts",
        help="alert packets (ZTF, Rubin): score them for brokers, or ingest them into a stamp store",
        description=(
            "Read Avro alert packets (ZTF every schema version, Rubin lsst.v9_0; one or many per file; files "
            "or folders) and either score them with a real-bogus checkpoint into broker output, or ingest "
            "them into a stamp store."
        ),
    )
    sub = alerts.add_subparsers(
        title="subcommands", dest="alerts_command", metavar="SUBCOMMAND", required=True
    )
    _add_score_parser(sub)
    _add_ingest_parser(sub)
