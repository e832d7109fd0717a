"""What the flow commands (``nightly``, ``simulate``, ``train``, ``serve``) share: declaring a subcommand
with its handler, and printing a flow's result as JSON or as a line of text, mapped to an exit code.
(No ``register`` here: :mod:`flows.cli` adds no subcommand for this module.)"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

#: A subcommand handler: the parsed options -> the process exit code.
Handler = Callable[[argparse.Namespace], int]


def add_command(
    subparsers: argparse._SubParsersAction, name: str, func: Handler, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` that runs ``func``; returns its parser (to add the options to)."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(func=func)
    return parser


def print_result(
    result: Any,
    *,
    as_json: bool = True,
    text: Callable[[Any], str] | None = None,
    failed: Callable[[Any], bool] | None = None,
) -> int:
    """Print ``result`` as indented JSON (``as_json`` or no ``text``) or as ``text(result)``.

    Returns:
        The exit code: 1 when ``failed(result)``, else 0.
    """
    print(json.dumps(result, indent=2, default=str) if as_json or text is None else text(result))
    return 1 if failed is not None and failed(result) else 0
