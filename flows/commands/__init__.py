"""One module per ``stampflow`` subcommand (or group of them).

Each module defines ``register(subparsers) -> None``, which adds its subcommands to the argparse
subparsers object and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code) with ``parser.set_defaults(func=...)``. :mod:`flows.cli` discovers the modules here by name, so a
new command needs no edit anywhere else. Import heavy libraries (torch, prefect) inside ``func``, not at
module top, so that ``stampflow --help`` stays fast. :mod:`flows.commands._command` has what the flow
commands share (``add_command``, ``print_result``); it registers nothing.
"""
