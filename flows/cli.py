"""The ``stampflow`` command line: ``stampflow --help`` lists the subcommands, ``stampflow CMD --help``
explains one. Subcommands live in :mod:`flows.commands` (one module each, discovered by name)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence

import flows.commands
from flows.cli_common import EXIT_FAILED, EXIT_USAGE, CommandError
from pipeline import __version__

#: Loggers kept at WARNING unless ``--verbose``.
QUIET_LOGGERS = ("httpx", "httpcore", "onnx_ir", "onnxscript", "distributed")
# No telemetry from the Prefect server a flow starts (no network at run time).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand module of :mod:`flows.commands` registered."""
    parser = argparse.ArgumentParser(
        prog="stampflow",
        description=(
            "Classify astronomy image stamps: ingest FITS stamps, alert packets and Galaxy Zoo catalogs into "
            "HDF5 stamp stores, simulate training data, train and score CNNs, write reports."
        ),
    )
    parser.add_argument("--version", action="version", version=f"stampflow {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG level and show tracebacks of failures"
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(flows.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"flows.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stampflow`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # libraries that log every request or pass at INFO
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; a whole-run failure is one ``error:`` line on stderr and its exit code
    (:class:`flows.cli_common.CommandError`; anything unexpected: 1), with the traceback only under ``-v``."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except CommandError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # an unexpected failure still ends in one line; -v shows where it came from
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (stampflow -v ... shows the traceback)"
        print(f"error: {type(err).__name__}: {err}{hint}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
