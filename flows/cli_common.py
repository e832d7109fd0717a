"""Argument types, shared options and exit-code handling of the ``stampflow`` ingest-like commands, and
the options of a source generated from its model (:func:`add_model_arguments`, :func:`model_from_args`):
each option is defined once, as a field of :mod:`pipeline.ingest.sources`."""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

#: Exit codes of every ``stampflow`` command (docs/cli.md): 0 success, 1 the run failed or did nothing
#: (e.g. nothing ingested, an unusable input), 2 wrong usage (options, a model that does not fit the data),
#: 3 the output cannot be written.
EXIT_FAILED = 1
EXIT_NOTHING_INGESTED = EXIT_FAILED
EXIT_USAGE = 2
EXIT_CANNOT_WRITE = 3


def exit_code_of_failure(err: BaseException) -> int:
    """The exit code of a whole-run failure: the failure's own ``exit_code`` where it carries one
    (:class:`CommandError`, a night's check), 3 for an output that cannot be written
    (:class:`pipeline.io.OutputError`), else 1 (an unreadable input is never exit 3)."""
    from pipeline.io import OutputError

    code = getattr(err, "exit_code", None)
    if isinstance(code, int):
        return code
    return EXIT_CANNOT_WRITE if isinstance(err, OutputError) else EXIT_FAILED


class CommandError(Exception):
    """A whole-run failure that a command reports as one ``error:`` line and an exit code, without a
    traceback (:func:`flows.cli.main`; ``stampflow -v`` adds the traceback)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def parse_stamp_size(text: str) -> tuple[int, int]:
    """``"63"`` -> (63, 63); ``"63x53"`` or ``"63,53"`` -> (63, 53)."""
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"stamp size must be N or HxW, got {text!r}")
    return parts[0], parts[1]


def checkpoint_path(text: str) -> Path:
    """A ``--model`` value: a checkpoint file, or the name of a model that ships with stampflow
    (:func:`models.pretrained.resolve_checkpoint`; ``stampflow models`` lists them). Anything else is taken
    as a path, so a missing checkpoint is reported by the command that loads it (exit 2)."""
    from models.pretrained import UnknownModel, resolve_checkpoint

    try:
        return resolve_checkpoint(text)
    except UnknownModel:
        return Path(text)


def add_checkpoint_argument(parser: argparse.ArgumentParser, what: str = "checkpoint") -> None:
    """``--model``: a checkpoint path or a shipped model's name (:func:`checkpoint_path`), required."""
    parser.add_argument(
        "--model",
        type=checkpoint_path,
        required=True,
        help=f"{what} (model.ckpt), an exported model (.onnx, stampflow export) or a shipped model's name "
        "(stampflow models)",
    )


def parse_csv_list(text: str) -> list[str]:
    """``"A, B,C"`` -> ``["A", "B", "C"]``."""
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_int_or_str(text: str) -> int | str:
    """``"1"`` -> 1 (an index), anything else as given (a name, e.g. an EXTNAME)."""
    return int(text) if text.isdigit() else text


#: Option spellings of the store size fields (the field names say what they are, the options are older).
SIZE_FLAGS = {"stamp_shape": "--stamp-size", "size_policy": "--on-size-mismatch"}


def _argument_kind(annotation: Any) -> dict[str, Any]:
    """argparse ``type``/``choices`` of a field annotation (``X | None`` as ``X``); lists of words are
    comma-separated, ``(H, W)`` sizes are ``N`` or ``HxW``."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType):
        if set(args) == {int, str}:
            return {"type": parse_int_or_str}
        return _argument_kind(args[0])
    if get_origin(annotation) is Literal:
        return {"choices": list(args)}
    if get_origin(annotation) is list:
        return {"type": parse_csv_list} if args == [str] else {"type": args[0]}
    if get_origin(annotation) is tuple:
        return {"type": parse_stamp_size}
    return {} if annotation is str else {"type": annotation}


def add_model_arguments(
    parser: argparse.ArgumentParser,
    model: Any,
    *,
    flags: Mapping[str, str] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    skip: tuple[str, ...] = ("kind",),
) -> None:
    """One argument per field of the pydantic ``model`` (in field order), its destination the field name.

    A required field is positional (a list takes one or more values) unless ``flags`` spells it as an
    option; any other field is ``--field-name`` (or its spelling in ``flags``). Type, choices and default
    come from the field, the help from its description (``comma-separated`` added for lists of words);
    ``extra`` adds the argparse keywords that cannot be derived. ``skip``: fields with no option.
    """
    flags, extra = flags or {}, extra or {}
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        kwargs: dict[str, Any] = {**_argument_kind(field.annotation), "help": field.description}
        if kwargs.get("type") is parse_csv_list:
            kwargs["help"] = f"comma-separated {field.description}"
        kwargs.update(extra.get(name, {}))
        if field.is_required() and name not in flags:
            if get_origin(field.annotation) is list:
                kwargs["nargs"] = "+"
            parser.add_argument(name, **kwargs)
            continue
        if field.is_required():
            kwargs["required"] = True
        else:
            kwargs.setdefault("default", field.get_default(call_default_factory=True))
        option = flags.get(name, "--" + name.replace("_", "-"))
        if "choices" not in kwargs:  # named after the option, as argparse names an option's value
            kwargs.setdefault("metavar", option.lstrip("-").replace("-", "_").upper())
        parser.add_argument(option, dest=name, **kwargs)


def model_from_args(model: Any, args: argparse.Namespace) -> Any:
    """The ``model`` instance of the options :func:`add_model_arguments` added (fields without an
    option keep their defaults)."""
    return model(**{name: getattr(args, name) for name in model.model_fields if hasattr(args, name)})


def add_output_arguments(parser: argparse.ArgumentParser, default_out: Path | None = None) -> None:
    """``--out`` (the store), ``--rejects``, ``--compression``, ``--json``."""
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        required=default_out is None,
        default=default_out,
        help="stamp store to write (e.g. runs/x/stamps.h5)",
    )
    parser.add_argument("--rejects", type=Path, help="rejects CSV (default: rejects.csv beside the store)")
    parser.add_argument(
        "--compression", choices=["lzf", "gzip", "none"], default="lzf", help="HDF5 compression (default lzf)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def add_size_arguments(parser: argparse.ArgumentParser, what: str = "stamps") -> None:
    """``--stamp-size`` and ``--on-size-mismatch``."""
    parser.add_argument(
        "--stamp-size",
        type=parse_stamp_size,
        help=f"store stamp size N or HxW (default: the first of the {what})",
    )
    parser.add_argument(
        "--on-size-mismatch",
        choices=["reject", "pad"],
        default="reject",
        help=f"{what} of another size: reject them (default) or pad smaller ones with masked pixels",
    )


def run_ingest_and_report(
    work: Callable[[], object], as_json: bool, input_errors: tuple[type[BaseException], ...] = ()
) -> int:
    """Run an ingest, print its report, and map the outcome to the exit code.

    ``input_errors`` (an input that cannot be used at all: a missing catalog, missing columns...) give
    exit 1 with the message; a report with nothing ingested gives exit 1; otherwise 0. An output that
    cannot be written (:class:`pipeline.io.atomic.OutputError`, exit 3) and any other error go to
    :func:`flows.cli.run_command`.
    """
    try:
        report = work()
    except input_errors as err:
        raise CommandError(str(err), EXIT_NOTHING_INGESTED) from err
    print(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    if report.n_ingested == 0:
        print(f"error: nothing could be ingested; see {report.rejects}", file=sys.stderr)
        return EXIT_NOTHING_INGESTED
    return 0


def add_runner_arguments(parser: argparse.ArgumentParser, chunk: tuple[str, int, str] | None = None) -> None:
    """``--task-runner``, ``--dask-address``, ``--dask-workers`` and, when ``chunk`` = (option, default,
    what) is given, the chunk-size option of a chunked flow (e.g. ``("--chunk-files", 1000, "files")``)."""
    group = parser.add_argument_group("where tasks run")
    group.add_argument(
        "--task-runner",
        choices=["threads", "dask"],
        default="threads",
        help="threads in this process (default), or a Dask cluster",
    )
    group.add_argument(
        "--dask-address",
        help="scheduler of an existing Dask cluster, tcp://host:port (default with dask: a local cluster)",
    )
    group.add_argument(
        "--dask-workers", type=int, default=2, help="worker processes of a local Dask cluster (default 2)"
    )
    if chunk is not None:
        option, default, what = chunk
        group.add_argument(option, type=int, default=default, help=f"{what} per task (default {default})")


def runner_options(args: argparse.Namespace):
    """The :class:`flows.runners.RunnerOptions` of :func:`add_runner_arguments` options (``--dask-address``
    alone implies ``--task-runner dask``)."""
    from flows.runners import RunnerOptions

    address = getattr(args, "dask_address", None)
    runner = "dask" if address else getattr(args, "task_runner", "threads")
    return RunnerOptions(
        task_runner=runner, dask_address=address, dask_workers=getattr(args, "dask_workers", 2)
    )


def extra_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, known: set[str]) -> list[str]:
    """Command-line options of ``parser`` set in ``args`` to a non-default value, except the ``known``
    destinations, written back as arguments (to hand them on to a subprocess verbatim)."""
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in known or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        option = (
            action.option_strings[-1]
            if action.option_strings[-1].startswith("--")
            else action.option_strings[0]
        )
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            out.append(option)
        elif isinstance(value, list):
            for item in value:
                out += [option, str(item)]
        else:
            out += [option, str(value)]
    return out


def is_tty() -> bool:
    """Whether progress bars can be drawn (stderr is a terminal)."""
    return sys.stderr.isatty()
