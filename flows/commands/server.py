"""``stampflow server``: start Prefect's server (API, UI, scheduler) for ``stampflow serve`` with the UI
working on any port and no telemetry (:func:`server_environment`)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping

from flows.commands._command import add_command

#: The one-line help of ``stampflow server`` and its description.
HELP = "start the Prefect server (API, UI and scheduler) that `serve` registers deployments with"
DESCRIPTION = """\
Start Prefect's server on HOST:PORT (`prefect server start`) with what an offline survey machine needs: the
UI talks to the API on the port given here (PREFECT_UI_API_URL; without it every UI page fails on any port
but 4200) and sends no telemetry (PREFECT_SERVER_ANALYTICS_ENABLED=false, no promotional content). The
database is the one of PREFECT_HOME (default ~/.prefect/prefect.db). Clients (`stampflow serve`,
`prefect deployment run`) then use it with PREFECT_API_URL=http://HOST:PORT/api. Stop it with Ctrl-C, or
`prefect server stop` after --background.
"""

#: Hosts that mean "every interface": a browser cannot use them, so the UI gets this machine's name.
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def server_environment(
    host: str, port: int, ui_api_url: str | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """``environ`` plus the settings of a Prefect server on ``host:port`` whose UI works and that sends
    no telemetry.

    Args:
        host: the interface the server listens on (``0.0.0.0``: all).
        port: its TCP port.
        ui_api_url: the API address the browser uses (default ``http://HOST:PORT/api``, this machine's
            name for a wildcard host).
    """
    browser_host = socket.getfqdn() if host in WILDCARD_HOSTS else host
    return {
        **environ,
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        # The UI reads the API address from the server's /ui-settings, which defaults to port 4200.
        "PREFECT_UI_API_URL": ui_api_url or f"http://{browser_host}:{port}/api",
        # No network on survey machines: the telemetry service would log an error at every start.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }


def _server(args: argparse.Namespace) -> int:
    env = server_environment(args.host, args.port, args.ui_api_url)
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    if args.background:
        command.append("--background")
    print(f"UI: {env['PREFECT_UI_API_URL'].removesuffix('/api')}", flush=True)
    print(f"clients: export PREFECT_API_URL={env['PREFECT_UI_API_URL']}", flush=True)
    # Prefect's own process from here on: Ctrl-C and `prefect server stop` reach it directly.
    os.execve(sys.executable, command, env)
    return 0  # not reached


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``server`` subcommand."""
    parser = add_command(subparsers, "server", _server, help=HELP, description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=4200, help="TCP port (default %(default)s)")
    parser.add_argument(
        "--ui-api-url", help="API address the browser uses (default http://HOST:PORT/api)", metavar="URL"
    )
    parser.add_argument(
        "--background", action="store_true", help="run in the background (stop: prefect server stop)"
    )
