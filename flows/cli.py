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
from flows.cli_common import EXIT_FAILED, EXIT_USAGE, CommandError, exit_code_of_failure
from pipeline import __version__

#: Loggers kept at WARNING unless ``--verbose``.
QUIET_LOGGERS = ("httpx", "httpcore", "onnx_ir", "onnxscript", "distributed")
# No telemetry from the Prefect server a flow starts (no network at run time).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


class WithoutTraceback(logging.Filter):
    """Console filter of a run without ``-v``: a record's traceback is left out (Prefect logs one for every
    failed flow or task run, "Encountered exception during execution"), its message kept and, where it
    does not say it already, the exception's one line added. The record goes to the other handlers (and
    Prefect's API, which has it first: the traceback stays in the flow run's logs) unchanged otherwise."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None or record.exc_text:
            message = record.getMessage()
            if exc is not None and str(exc) not in message:
                message = f"{message} ({type(exc).__name__}: {exc})"
            record.msg, record.args = message, None
            record.exc_info = record.exc_text = None
        record.stack_info = None
        return True


def setup_logging(verbose: bool) -> None:
    """Log to stderr (DEBUG with ``verbose``, else INFO, tracebacks left out: :class:`WithoutTraceback`)."""
    handler = logging.StreamHandler()
    if not verbose:
        handler.addFilter(WithoutTraceback())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    if not verbose:  # libraries that log every request or pass at INFO
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


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
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; a whole-run failure is one ``error:`` line on stderr and its exit code,
    with the traceback only under ``-v``: :class:`flows.cli_common.CommandError` its own code, an output
    that cannot be written (:class:`pipeline.io.atomic.OutputError`) 3, any other OSError (an input that
    cannot be read at all) and anything unexpected 1."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (CommandError, OSError) as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return exit_code_of_failure(err)
    except Exception as err:  # an unexpected failure still ends in one line; -v shows where it came from
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (stampflow -v ... shows the traceback)"
        print(f"error: {type(err).__name__}: {err}{hint}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
