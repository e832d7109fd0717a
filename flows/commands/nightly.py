"""``stampflow nightly INPUT... --model CKPT``: one night of the nightly flow (ingest -> score -> report),
as a cron deployment would run it (:mod:`flows.nightly`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.cli_common import (
    CommandError,
    add_checkpoint_argument,
    add_runner_arguments,
    add_size_arguments,
    is_tty,
    parse_csv_list,
    runner_options,
)
from flows.commands._command import add_command, print_result

#: The one-line help of ``stampflow nightly`` and its description.
HELP = "run one night: ingest new stamps or alerts, score them with a fixed model, report"
DESCRIPTION = """\
Check the model, the labels, RUN_DIR and the inputs, then ingest the night's FITS stamps or alert packets,
score them with a fixed checkpoint and write the report when labels are given, in a run folder of its own
(RUN_DIR/runs/<time>-<flow run id>/). When the night succeeds it is published: RUN_DIR/stamps.h5,
rejects.csv, scored.parquet, report/ and manifest.json are then this run's (RUN_DIR/current points to its
run folder); a failed run leaves the published night as it was. The counts are published as Prefect
artifacts either way. '{night}' in the inputs and RUN_DIR becomes the night (--night, default today in
--timezone). A rerun of the same night with the same files does no work twice. Exit 1 when nothing could be
ingested, an input is missing or a stage failed; 2 when the model does not fit the stamps or the labels do
not join; 3 when RUN_DIR cannot be written.
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
    from flows.night_run import NightFailed
    from flows.nightly import night_folder, nightly_flow, resolve_night, with_night
    from flows.nightly_checks import NightCheckError, check_night

    source = night_source(args)
    night = resolve_night(args.night, args.timezone)
    try:  # fail fast: before Prefect starts and anything is ingested
        check_night(
            with_night(source, night), args.model, night_folder(args.run_dir, night), args.labels, args.on
        )
    except NightCheckError as err:
        raise CommandError(str(err), err.exit_code) from err
    options = {name: getattr(args, name) for name in FLOW_OPTIONS}
    try:
        result = nightly_flow(
            source=source, label_on=args.on, runner=runner_options(args), progress=is_tty(), **options
        )
    except NightFailed as err:
        if err.result is not None:
            print_result(err.result, as_json=args.json, text=_summary)
        raise CommandError(
            f"{err} (run folder {err.result['run'] if err.result else '-'})", err.exit_code
        ) from err
    return print_result(result, as_json=args.json, text=_summary)


def _summary(result: dict) -> str:
    ingest, counts = result["ingest"] or {}, result["counts"] or {}
    lines = [
        f"night {result['night']} {result['status']}: inputs={ingest.get('n_inputs', 0)} "
        f"ingested={ingest.get('n_ingested', 0)} rejected={ingest.get('n_rejected', 0)} "
        f"scored={counts.get('n_scored', 0)} labels={counts.get('labels', {})}",
        f"run folder: {result['run']} (tasks: {result['tasks']})",
    ]
    if result["status"] == "completed":
        lines.append(f"published: {result['run_dir']} (current -> {result['run']})")
    if result["report"]:
        lines.append(f"report: {result['report']['index_html']}")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nightly`` subcommand."""
    parser = add_command(subparsers, "nightly", _nightly, help=HELP, description=DESCRIPTION)
    parser.add_argument("inputs", nargs="+", type=Path, help="files and/or folders of the night")
    add_checkpoint_argument(parser)
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
