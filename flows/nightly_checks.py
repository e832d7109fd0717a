"""What a night checks before it ingests anything (:func:`check_night`), and the exit code of each way a
night can fail (:func:`exit_code_of`), the same as ``stampflow score`` and ``report`` give for the same
error.

Checked before ingest: the model (its card loads; its channels and stamp size against what the ingest will
produce, where the options fix them: FITS ``extensions`` and ``stamp_shape``, alert packets' channels and
size), the label join (the labels exist; a label table has the join column and a label column, and the
night's catalog will have the join column), the output location (the run folder can be written) and the
inputs (each named file or folder exists).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flows.cli_common import EXIT_CANNOT_WRITE, EXIT_FAILED, EXIT_USAGE, exit_code_of_failure

#: Catalog columns of every scored night (besides the store's own catalog columns).
SCORED_ID_COLUMNS = ("object_id", "store_row")


class NightCheckError(ValueError):
    """A night that cannot run as asked; ``exit_code`` is the CLI's (:mod:`flows.cli_common`)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):  # picklable with its exit code (Prefect may persist a failed run's exception)
        return (type(self), (str(self), self.exit_code))


def exit_code_of(err: BaseException) -> int:
    """The exit code of a night that failed with ``err``: a check's own; 2 for a model that does not fit
    the stamps, a checkpoint or store that cannot be read, labels that do not join (as ``score`` and
    ``report``); 3 when an output cannot be written; else 1."""
    from models.checkpoints import CheckpointError
    from pipeline.scoring import ModelInputMismatch
    from pipeline.store import StoreValidationError

    if isinstance(err, (ModelInputMismatch, CheckpointError, StoreValidationError)):
        return EXIT_USAGE
    return exit_code_of_failure(err)  # a check's own code, 3 for an output, else 1


def expected_stamps(source: Any) -> tuple[list[str] | None, tuple[int, int] | None]:
    """The channel names and stamp size ``(H, W)`` the ingest of ``source`` will produce, each None where
    the options leave it to the files."""
    if source.kind == "alerts":
        from data_catalogs.alert_schemas import CHANNELS

        return list(CHANNELS), tuple(source.stamp_shape) if source.stamp_shape else None
    extensions = getattr(source, "extensions", None)
    channels = [e.upper() for e in extensions] if extensions else None
    shape = getattr(source, "stamp_shape", None)
    return channels, tuple(shape) if shape else None


def catalog_columns(source: Any) -> set[str] | None:
    """The id columns the night's scored catalog will have (None when unknown for this kind)."""
    if source.kind == "alerts":
        from data_catalogs.alert_schemas import ALERT_COLUMNS

        return {*ALERT_COLUMNS, *SCORED_ID_COLUMNS}
    if source.kind == "fits":
        return {*SCORED_ID_COLUMNS, "ra", "dec", *(k.lower() for k in source.header_keys)}
    return None


def check_model(model: Path, source: Any) -> dict[str, Any]:
    """The model card of ``model``, checked against the stamps ``source`` will give; returns the card."""
    from models.checkpoints import CheckpointError, read_card
    from pipeline.scoring import UNKNOWN_FRAME, ModelInputMismatch, plan_inputs

    if not Path(model).is_file():
        raise NightCheckError(f"model {model}: no such checkpoint")
    try:
        card = read_card(model)
    except CheckpointError as err:
        raise NightCheckError(f"model {err}") from err
    channels, shape = expected_stamps(source)
    if shape is not None or channels is not None:
        card_shape = card.get("stamp_shape")
        try:
            # what scoring will accept: channels in another order are reordered by name
            plan_inputs(
                card, channels, shape or tuple(card_shape or (1, 1)), UNKNOWN_FRAME, "the night's stamps"
            )
        except ModelInputMismatch as err:
            raise NightCheckError(str(err)) from err
    return card


def check_labels(labels: Path, on: str | None, source: Any, task: str | None) -> None:
    """The labels exist; a label table has the join column (``on``, else one of the default id columns),
    a label column for ``task`` and the night's catalog will have the join column."""
    from pipeline.evaluation import ID_COLUMNS, is_store

    if not Path(labels).is_file():
        raise NightCheckError(f"labels {labels}: no such file")
    if is_store(labels):
        return
    columns = _table_columns(Path(labels))
    catalog = catalog_columns(source)
    if on is not None:
        if on not in columns:
            raise NightCheckError(f"--on {on}: {labels} has no column {on!r} (it has {sorted(columns)})")
        if catalog is not None and on not in catalog:
            hint = (
                f"; add --header-keys {on.upper()} to copy that FITS header key"
                if source.kind == "fits"
                else ""
            )
            raise NightCheckError(
                f"--on {on}: the night's catalog will have no column {on!r} (it will have {sorted(catalog)}){hint}"
            )
    elif catalog is not None and not any(c in columns and c in catalog for c in ID_COLUMNS):
        raise NightCheckError(
            f"labels {labels}: no id column shared with the night's catalog ({sorted(catalog)}); give one with --on"
        )
    if task == "realbogus" and not {"real", "label"} & columns:
        raise NightCheckError(f"labels {labels}: a real-bogus label table needs a column 'real' or 'label'")


def _table_columns(path: Path) -> set[str]:
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return set(pq.ParquetFile(path).schema_arrow.names)
        return set(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError) as err:
        raise NightCheckError(f"labels {path}: cannot be read as a table ({err})") from err


def check_output(run_dir: Path) -> None:
    """The run folder can be made and written (its nearest existing folder is a writable folder)."""
    existing = Path(run_dir).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NightCheckError(f"run folder {run_dir}: {existing} is not a folder", EXIT_CANNOT_WRITE)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NightCheckError(f"run folder {run_dir}: {existing} is not writable", EXIT_CANNOT_WRITE)


def check_inputs_exist(source: Any) -> None:
    """Every file or folder the night names exists."""
    missing = [str(p) for p in source.inputs if not Path(p).exists()]
    if missing:
        raise NightCheckError(f"input {', '.join(missing)}: no such file or folder", EXIT_FAILED)


def check_night(
    source: Any, model: Path, run_dir: Path, labels: Path | None = None, on: str | None = None
) -> dict[str, Any]:
    """Every check of the module docstring, in that order; returns the model card.

    Raises:
        NightCheckError: the first problem found, with its exit code.
    """
    card = check_model(model, source)
    if labels is not None:
        check_labels(labels, on, source, card.get("task"))
    check_output(run_dir)
    check_inputs_exist(source)
    return card
