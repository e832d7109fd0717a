"""The headline counts of a run (what a nightly run publishes even without labels): inputs, ingested,
rejected by reason, stamps scored, stamps flagged for masked pixels and predicted labels.

:func:`catalog_counts` reads only the columns it needs from a scored catalog (Parquet), so it stays cheap
for nightly catalogs of millions of rows; :func:`summary_rows` and :func:`summary_markdown` turn the counts
into the rows of a table and a markdown page (the flows publish both as Prefect artifacts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.io import output_format, read_scored_table

#: Catalog columns the counts are made of (read when present).
COUNT_COLUMNS = ("label", "flag_masked")


def catalog_counts(path: str | os.PathLike) -> dict[str, Any]:
    """``{"n_scored", "n_flagged_masked", "labels": {label: count}}`` of a scored catalog.

    Parquet catalogs are read column by column (only :data:`COUNT_COLUMNS`); FITS and CSV whole.
    """
    if output_format(path) == "parquet":
        names = pq.ParquetFile(path).schema_arrow.names
        table = pq.read_table(path, columns=[c for c in COUNT_COLUMNS if c in names]).to_pandas()
        n = pq.ParquetFile(path).metadata.num_rows
    else:
        full = read_scored_table(path)
        table = pd.DataFrame({c: np.asarray(full[c]) for c in COUNT_COLUMNS if c in full.colnames})
        n = len(full)
    labels = table["label"].astype(str).value_counts().sort_index() if "label" in table else pd.Series()
    flagged = int(table["flag_masked"].astype(bool).sum()) if "flag_masked" in table else 0
    return {
        "n_scored": int(n),
        "n_flagged_masked": flagged,
        "labels": {str(k): int(v) for k, v in labels.items()},
    }


def summary_rows(
    ingest: Mapping[str, Any] | None = None,
    counts: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> list[tuple[str, Any]]:
    """``(quantity, value)`` rows of a run.

    Args:
        ingest: an :class:`pipeline.store.builder.IngestReport` as a dict (``n_inputs``, ``n_ingested``,
            ``n_rejected``, ``reject_reasons``).
        counts: :func:`catalog_counts` of the scored catalog.
        metrics: headline numbers of an evaluation report (name -> value), when there were labels.
    """
    rows: list[tuple[str, Any]] = []
    if ingest is not None:
        rows += [
            ("inputs", int(ingest["n_inputs"])),
            ("ingested", int(ingest["n_ingested"])),
            ("rejected", int(ingest["n_rejected"])),
        ]
        rows += [(f"rejected: {k}", int(v)) for k, v in sorted(ingest.get("reject_reasons", {}).items())]
    if counts is not None:
        rows += [("scored", counts["n_scored"]), ("flagged (masked pixels)", counts["n_flagged_masked"])]
        rows += [(f"label: {k}", v) for k, v in counts.get("labels", {}).items()]
    rows += [(str(k), v) for k, v in (metrics or {}).items()]
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_markdown(
    title: str, rows: Sequence[tuple[str, Any]], links: Mapping[str, Any] | None = None
) -> str:
    """A markdown page: ``# title``, a two-column table of ``rows``, then ``links`` (name -> path) as a list
    of links (``file://`` URIs of the absolute paths)."""
    lines = [f"# {title}", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    if links:
        lines += [""] + [f"- {name}: {path_link(path)}" for name, path in links.items() if path]
    return "\n".join(lines) + "\n"


def path_link(path: str | os.PathLike) -> str:
    """A markdown link to a file or folder: the path as its text, its ``file://`` URI as the target."""
    absolute = Path(path).absolute()
    return f"[`{Path(path)}`]({absolute.as_uri()})"


def headline_metrics(task: str, metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The headline ``(quantity, value)`` rows of an evaluation report's metrics
    (:func:`pipeline.evaluation.report.write_report`): accuracy, ROC AUC, average precision, threshold, false positive
    rate and missed-real fraction for real-bogus; RMSE and the derived-class accuracies for morphology."""
    if task == "realbogus":
        op = metrics.get("operating_point", {})
        return [
            ("accuracy", metrics.get("accuracy")),
            ("ROC AUC", metrics.get("roc_auc")),
            ("average precision", metrics.get("average_precision")),
            ("threshold", metrics.get("threshold")),
            ("false positive rate", op.get("fpr")),
            ("missed-real fraction", op.get("missed_real_fraction")),
        ]
    rows: list[tuple[str, Any]] = [("RMSE (37 answers)", metrics.get("rmse"))]
    rows += [(f"accuracy {k}", d.get("accuracy")) for k, d in metrics.get("derived", {}).items()]
    return rows
