"""Source kind -> reader: the one dispatch of every ingest (library, flows, command line).

:data:`READERS` names the reader class of each kind of :mod:`pipeline.ingest.sources` (imported on first
use, so that asking for one kind does not import the others' libraries). :func:`ingest_source` is the
whole ingest of a source: its reader through the driver (:func:`pipeline.ingest.driver.ingest`).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.ingest.reader import Reader
from pipeline.ingest.sources import SOURCES, SourceOptions
from pipeline.store import IngestReport

#: kind -> ``module:class`` of its reader (a :class:`pipeline.ingest.reader.Reader`).
READERS = {
    "fits": "pipeline.ingest.fits_stamps:FitsReader",
    "alerts": "pipeline.ingest.alert_packets:AlertReader",
    "labelled": "pipeline.ingest.labelled_triplets:LabelledReader",
    "cutouts": "pipeline.ingest.catalog_cutouts:CutoutReader",
    "galaxy_zoo": "pipeline.ingest.galaxy_zoo:GalaxyZooReader",
}


def reader_class(kind: str) -> type[Reader]:
    """The reader class of a source kind; ValueError naming the kinds for an unknown one."""
    try:
        module, name = READERS[kind].split(":")
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r}; kinds: {sorted(READERS)}") from None
    return getattr(importlib.import_module(module), name)


def open_reader(
    source: SourceOptions,
    files: Sequence[str | os.PathLike] | None = None,
    digests: Mapping[str, str | None] | None = None,
    **reader_options: Any,
) -> Reader:
    """The reader of ``source``.

    Args:
        source: the source options (any model of :data:`pipeline.ingest.sources.SOURCES`).
        files: for a chunked kind, the files of this chunk (default: all the source's files).
        digests: input name -> sha256 already computed (by the flow, for its cache key), so that no
            file is hashed twice (:class:`pipeline.ingest.inputs.InputFiles`).
        reader_options: further arguments of the kind's reader (e.g. a cutout catalog as a DataFrame).
    """
    return reader_class(source.kind)(source, files=files, digests=digests, **reader_options)


def ingest_source(
    source: SourceOptions,
    out: str | os.PathLike,
    *,
    files: Sequence[str | os.PathLike] | None = None,
    digests: Mapping[str, str | None] | None = None,
    **options: Any,
) -> IngestReport:
    """Ingest ``source`` into the store ``out``: :func:`open_reader` then the driver (``options``:
    ``rejects_path``, ``compression``, ``chunk_rows``, ``config_hash``, ``progress``)."""
    from pipeline.ingest.driver import ingest

    return ingest(open_reader(source, files, digests), out, **options)


def ingest_with(
    kind: str, out: str | os.PathLike, options: Mapping[str, Any], **reader_options: Any
) -> IngestReport:
    """The source of ``kind`` built from ``options`` (its fields; the other keys are the driver's)
    ingested into ``out``: the body of the keyword functions ``ingest_fits``, ``ingest_alerts``, ..."""
    from pipeline.ingest.driver import ingest

    model = SOURCES[kind]
    fields = {k: v for k, v in options.items() if k in model.model_fields}
    rest = {k: v for k, v in options.items() if k not in model.model_fields}
    return ingest(open_reader(model(**fields), **reader_options), out, **rest)
