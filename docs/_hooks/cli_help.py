"""MkDocs hook: the ``stampflow`` help texts in the docs come from the parser itself, so they cannot drift.

A line ``<!-- stampflow-help: alerts score -->`` in a page becomes a code block with the output of
``stampflow alerts score --help`` (``<!-- stampflow-help: -->`` for ``stampflow --help``). On the page that
uses any marker, every subcommand (and sub-subcommand) of :func:`flows.cli.build_parser` must have one:
a missing one is a warning, which ``mkdocs build --strict`` turns into a failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!-- stampflow-help:(?P<command>[^>]*)-->[ \t]*$", re.MULTILINE)
#: Width of the help text in the docs (argparse reads it from COLUMNS).
HELP_COLUMNS = "100"

log = logging.getLogger("mkdocs.hooks.cli_help")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = []
    for name, sub in _subcommands(parser).items():
        commands.append((*prefix, name))
        commands.extend(_all_commands(sub, (*prefix, name)))
    return commands


def _find(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> argparse.ArgumentParser:
    for word in words:
        choices = _subcommands(parser)
        if word not in choices:
            raise KeyError(f"no command 'stampflow {' '.join(words)}'")
        parser = choices[word]
    return parser


def _help(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    markers = list(MARKER.finditer(markdown))
    if not markers:
        return markdown
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
    from flows.cli import build_parser

    parser = build_parser()
    documented = set()

    def replace(match: re.Match) -> str:
        words = tuple(match.group("command").split())
        documented.add(words)
        try:
            text = _help(_find(parser, words))
        except KeyError as error:
            log.warning("%s: %s", page.file.src_path, error.args[0])
            return match.group(0)
        return f"```text\n{text}\n```"

    markdown = MARKER.sub(replace, markdown)
    for words in _all_commands(parser):
        if words not in documented:
            log.warning(
                "%s: 'stampflow %s' has no stampflow-help marker", page.file.src_path, " ".join(words)
            )
    return markdown
