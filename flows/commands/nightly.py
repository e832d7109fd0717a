"""``stampflow nightly INPUT... --model CKPT``: one night of the nightly flow (ingest -> score -> report),
as a cron deployment would run it (:mod:`flows.nightly`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import add_runner_arguments, add_size_arguments, is_tty, parse_csv_list, runner_options
from flows.commands._command import add_command, print_result

#: The one-line help of ``stampflow nightly`` and its description.
HELP = "run one night: ingest new stamps or alerts, score them with a fixed model, report"
DESCRIPTION = """\
Ingest the night's FITS stamps or alert packets into RUN_DIR/stamps.h5 (+ rejects.csv), score them with a
fixed checkpoint into RUN_DIR/scored.parquet, write RUN_DIR/report when labels are given, publish the
counts as Prefect artifacts and write RUN_DIR/manifest.json. '{night}' in the inputs and RUN_DIR becomes
the night (--night, default today in --timezone). A rerun of the same night with the same files does no
work twice. Exit 1 when nothing could be ingested.
"""
#: Options handed to :func:`flows.nightly.nightly_flow` under their own names.
FLOW_OPTIONS = ("model", "run_dir", "labels", "night", "timezone", "chunk_files", "chunk_rows")


def night_source(args: argparse.Namespace):
    """The ingest source of the options: alert packets (``--kind alerts``) or FITS stamps."""
    from flows.params import AlertSource, FitsSource

    if args.kind == "alerts":
        return AlertSource(inputs=args.inputs, stamp_shape=args.stamp_size or (63, 63))
    fits = {
        "extensions": args.extensions,
        "stamp_shape": args.stamp_size,
        "header_keys": args.header_keys or [],
    }
    return FitsSource(inputs=args.inputs, size_policy=args.on_size_mismatch, **fits)


def _nightly(args: argparse.Namespace) -> int:
    from flows.nightly import nightly_flow

    result = nightly_flow(
        source=night_source(args),
        label_on=args.on,
        runner=runner_options(args),
        progress=is_tty(),
        **{name: getattr(args, name) for name in FLOW_OPTIONS},
    )
    return print_result(result, as_json=args.json, text=_summary, failed=_nothing_ingested)


def _nothing_ingested(result: dict) -> bool:
    ingest = result["ingest"]
    return bool(ingest["n_inputs"]) and not ingest["n_ingested"]


def _summary(result: dict) -> str:
    ingest, counts = result["ingest"], result["counts"] or {}
    lines = [
        f"night {result['night']}: inputs={ingest['n_inputs']} ingested={ingest['n_ingested']} "
        f"rejected={ingest['n_rejected']} scored={counts.get('n_scored', 0)} labels={counts.get('labels', {})}",
        f"run folder: {result['run_dir']} (tasks: {result['tasks']})",
    ]
    if result["report"]:
        lines.append(f"report: {result['report']['index_html']}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nightly`` subcommand."""
    parser = add_command(subparsers, "nightly", _nightly, help=HELP, description=DESCRIPTION)
    parser.add_argument("inputs", nargs="+", type=Path, help="files and/or folders of the night")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint (model.ckpt)")
    parser.add_argument(
        "--kind", choices=["fits", "alerts"], default="fits", help="input kind (default fits)"
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path("runs/nightly/{night}"),
        help="run folder (default runs/nightly/{night})",
    )
    parser.add_argument("--night", help="the night, e.g. 2026-03-02 (default: today in --timezone)")
    parser.add_argument("--timezone", default="UTC", help="time zone of the night (default UTC)")
    parser.add_argument(
        "--labels", type=Path, help="labels for a report: a labelled store or a CSV/Parquet table"
    )
    parser.add_argument("--on", help="id column joining a label table")
    parser.add_argument(
        "--extensions", type=parse_csv_list, help="FITS EXTNAMEs to read as channels, in order"
    )
    parser.add_argument("--header-keys", type=parse_csv_list, help="FITS header keys copied to the catalog")
    add_size_arguments(parser, "stamps")
    parser.add_argument("--chunk-rows", type=int, default=8192, help="stamps per scoring task (default 8192)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_runner_arguments(parser, chunk=("--chunk-files", 1000, "files"))
