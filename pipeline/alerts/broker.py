"""Broker output: one classification record per scored alert, as Avro (published schema) and JSON lines.

A record (schema :data:`data_catalogs.alert_schemas.CLASSIFICATION_SCHEMA_PATH`,
``data_catalogs/schemas/stampflow.classification.avsc``, record ``stampflow.classification``)::

    {"objectId": "ZTF18aagqxtf", "candid": 396522680015020000,
     "classifier_name": "stampflow-realbogus-ztf", "classifier_version": "0.1.0+1a2b3c4d.s0",
     "classifications": [{"class_name": "bogus", "probability": 0.91}, {"class_name": "real", "probability": 0.09}],
     "scored_at": <UTC time>}

``classifier_name``/``classifier_version`` are the model card's ``model_name``/``model_version``; the
probabilities are the calibrated class probabilities of the model (the scored catalog's ``p_<class>``
columns), in the order of the card's ``output_names``. In Avro ``scored_at`` is a ``timestamp-micros``; in
JSON lines an ISO 8601 UTC string (``2025-09-05T07:56:12.345678Z``).

:class:`BrokerWriter` streams records into ``classifications.avro`` (and ``classifications.jsonl`` on
request) under temporary names and renames them when closed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import fastavro
import numpy as np
from fastavro.write import Writer

from data_catalogs.alert_schemas import classification_schema
from pipeline.io.atomic import CommitOnSuccess, output_errors, publish, start_partial

AVRO_NAME = "classifications.avro"
JSONL_NAME = "classifications.jsonl"

_PARSED_SCHEMA: Any = None


def parsed_classification_schema() -> Any:
    """The broker schema parsed by fastavro (cached)."""
    global _PARSED_SCHEMA
    if _PARSED_SCHEMA is None:
        _PARSED_SCHEMA = fastavro.parse_schema(classification_schema())
    return _PARSED_SCHEMA


def utc_datetime() -> datetime:
    """The current time as a timezone-aware UTC ``datetime``, at microsecond resolution (a record's
    ``scored_at``)."""
    return datetime.now(timezone.utc)


def classification_records(
    columns: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    classifier_name: str,
    classifier_version: str,
    scored_at: datetime,
) -> list[dict[str, Any]]:
    """One broker record per row of scored-catalog columns (``objectId``, ``candid``, ``p_<class>``)."""
    object_ids = columns["objectId"]
    candids = np.asarray(columns["candid"], dtype=np.int64)
    probs = np.stack([np.asarray(columns[f"p_{c}"], dtype=np.float32) for c in class_names], axis=1)
    return [
        {
            "objectId": str(object_ids[i]),
            "candid": int(candids[i]),
            "classifier_name": classifier_name,
            "classifier_version": classifier_version,
            "classifications": [
                {"class_name": name, "probability": float(p)}
                for name, p in zip(class_names, probs[i], strict=True)
            ],
            "scored_at": scored_at,
        }
        for i in range(len(candids))
    ]


def json_line(record: Mapping[str, Any]) -> str:
    """A broker record as one line of JSON (``scored_at`` as ISO 8601 UTC)."""
    value = dict(record)
    when = value["scored_at"]
    value["scored_at"] = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(value, separators=(",", ":"))


class BrokerWriter(CommitOnSuccess):
    """Stream classification records to ``folder/classifications.avro`` (+ ``.jsonl`` with ``jsonl``).

    Use as a context manager: the files appear under their final names only when closed without error.
    """

    def __init__(
        self, folder: str | os.PathLike, *, jsonl: bool = False, metadata: Mapping[str, str] | None = None
    ):
        self.folder = Path(folder)
        self.avro_path = self.folder / AVRO_NAME
        self.jsonl_path = self.folder / JSONL_NAME if jsonl else None
        self.n_records = 0
        self._avro_tmp = start_partial(self.avro_path)
        self._jsonl_tmp = start_partial(self.jsonl_path) if self.jsonl_path else None
        self._avro_fh: BinaryIO | None = None
        self._jsonl_fh: TextIO | None = None
        try:
            self._open(metadata)
        except OSError:  # e.g. the header did not fit on the disk: nothing is left
            self.abort()
            raise

    def _open(self, metadata: Mapping[str, str] | None) -> None:
        with output_errors(self.avro_path):
            self._avro_fh = open(self._avro_tmp, "wb")
            self._writer = Writer(
                self._avro_fh,
                parsed_classification_schema(),
                metadata={k: str(v) for k, v in (metadata or {}).items()},
            )
        if self._jsonl_tmp is not None:
            with output_errors(self.jsonl_path):
                self._jsonl_fh = open(self._jsonl_tmp, "w")

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records (dicts of the broker schema)."""
        with output_errors(self.avro_path):
            for record in records:
                self._writer.write(record)
                if self._jsonl_fh is not None:
                    self._jsonl_fh.write(json_line(record) + "\n")
                self.n_records += 1

    def close(self) -> list[Path]:
        """Flush, fsync and rename the files to their final names; returns them."""
        with output_errors(self.avro_path):
            self._writer.flush()
            _close_synced(self._avro_fh)
            publish(self._avro_tmp, self.avro_path)
        paths = [self.avro_path]
        if self._jsonl_fh is not None and self._jsonl_tmp is not None and self.jsonl_path is not None:
            with output_errors(self.jsonl_path):
                _close_synced(self._jsonl_fh)
                publish(self._jsonl_tmp, self.jsonl_path)
            paths.append(self.jsonl_path)
        return paths

    def abort(self) -> None:
        """Close and remove the temporary files; the final names are left untouched."""
        for fh, tmp in ((self._avro_fh, self._avro_tmp), (self._jsonl_fh, self._jsonl_tmp)):
            try:
                if fh is not None:
                    fh.close()
            except OSError:  # its buffer could not be written (disk full): it is deleted anyway
                pass
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def _close_synced(fh: BinaryIO | TextIO) -> None:
    """Flush, fsync and close a file."""
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def read_classifications(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a ``classifications.avro`` (or ``.jsonl``) file."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    with open(path, "rb") as fh:
        return list(fastavro.reader(fh))
