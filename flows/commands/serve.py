"""``stampflow serve --config deployments.json``: register scheduled deployments (cron + time zone) with a
Prefect server and run them when due (:mod:`flows.serve`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flows.commands._command import add_command

#: The one-line help of ``stampflow serve`` and its description.
HELP = "register scheduled deployments (cron, time zone) with a Prefect server and run them"
DESCRIPTION = """\
Register the deployments of a JSON file with the Prefect server named by PREFECT_API_URL (each: a flow
among nightly, ingest, score, report, train, simulate; a name; a cron schedule and its time zone; fixed
parameters; a collision strategy) and run their flow runs in this process when they are due or triggered
(`prefect deployment run FLOW/NAME`), until interrupted (that pauses the schedules). A deployment runs one
night at a time: a run due while one runs waits (collision_strategy ENQUEUE, the default) or is cancelled
(CANCEL_NEW). Runs are named FLOW-NAME-NIGHT and tagged night:NIGHT. Example file: {"deployments":
[{"flow": "nightly", "name": "ztf", "cron": "0 9 * * *", "timezone": "America/Santiago", "parameters":
{"source": {"kind": "fits", "inputs": ["/data/{night}"]}, "model": "runs/rb/model/model.ckpt"}}]}
"""


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.serve import load_specs, serve

    try:
        specs = load_specs(args.config)
    except (OSError, ValueError, ValidationError) as err:
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return 2
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "warning: PREFECT_API_URL is not set: the deployments go to a temporary server that lives only as "
            "long as this process, and no schedule fires (start one with `stampflow server` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api)",
            file=sys.stderr,
        )
    for spec in specs:
        when = f"cron '{spec.cron}' ({spec.timezone})" if spec.cron else "on demand"
        print(f"serving {spec.flow}/{spec.name}: {when}", flush=True)
    serve(specs, limit=args.limit)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    parser = add_command(subparsers, "serve", _serve, help=HELP, description=DESCRIPTION)
    parser.add_argument("--config", type=Path, required=True, help="deployments file (JSON)")
    parser.add_argument(
        "--limit",
        type=int,
        help="at most this many flow runs at once in this process, all deployments together",
    )
