"""Prefect flows whose parameters Prefect can always store: a file name that is not valid UTF-8.

Prefect records a flow run's parameters as JSON (UTF-8) when the run is created; a path given on the command
line whose name is not UTF-8 (Python holds its bad bytes as surrogates) cannot be encoded, and the run
would end before it starts. :func:`printable_flow` makes a flow whose recorded parameters spell such a
name as :func:`pipeline.ingest.inputs.input_name` does (the bad bytes as ``\\xNN``); the flow itself still
gets the real path, so that the input is found and rejected by its reader (``bad_name``) like any other
bad input, and the rest of the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prefect import Flow

from pipeline.ingest import input_name


def printable(value: Any) -> Any:
    """``value`` (JSON-able: dicts, lists, strings, numbers) with every string that is not valid UTF-8
    written as :func:`pipeline.ingest.inputs.input_name` writes it."""
    if isinstance(value, str):
        return input_name(value)
    if isinstance(value, Mapping):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


class PrintableFlow(Flow):
    """A Prefect :class:`~prefect.Flow` whose run parameters are recorded with :func:`printable` names."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        return printable(super().serialize_parameters(parameters))


def printable_flow(**options: Any) -> Callable[[Callable[..., Any]], PrintableFlow]:
    """Like ``@prefect.flow(**options)``, making a :class:`PrintableFlow`."""

    def decorate(fn: Callable[..., Any]) -> PrintableFlow:
        return PrintableFlow(fn, **options)

    return decorate
