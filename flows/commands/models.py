"""``stampflow models``: the models that ship with stampflow (usable as ``--model NAME``), with their cards'
real-data metrics."""

from __future__ import annotations

import argparse

from flows.commands._command import add_command, print_result

HELP = "list the models that ship with stampflow (use one with --model NAME)"
DESCRIPTION = """\
List the pretrained models in the package (models/pretrained/<name>/model.ckpt + model_card.json): name,
task, preset, version, operating threshold, the metrics measured on real alerts that did not touch their
training, the command that trained them, and the checkpoint path. Any command's --model takes such a name
in place of a checkpoint path. Prints JSON (--text for one line per model).
"""


def _text(rows: list[dict]) -> str:
    if not rows:
        return "no shipped models"
    return "\n".join(
        f"{r['name']}: {r['task']} {r['preset']} v{r['model_version']} threshold={r['threshold']} "
        f"real-data={r['real_data_metrics']} ({r['checkpoint']})"
        for r in rows
    )


def _models(args: argparse.Namespace) -> int:
    from models.pretrained import describe_shipped

    return print_result(describe_shipped(), as_json=not args.text, text=_text)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand."""
    parser = add_command(subparsers, "models", _models, help=HELP, description=DESCRIPTION)
    parser.add_argument("--text", action="store_true", help="one line per model instead of JSON")
