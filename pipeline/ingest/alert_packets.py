"""Ingest alert packets (ZTF, Rubin) into a stamp store, with rejects (the alert branch of the ingest flow).

Each packet becomes one row: ``object_id`` (= ``objectId``), ``source`` (``path#index``) and the columns of
:data:`data_catalogs.alert_schemas.ALERT_COLUMNS` (``objectId``, ``candid``, ``ra``, ``dec``, ``jd``, ``fid``,
``magpsf``, ``isdiffpos``, ``diff_sign``, ``nbad``, ``rb``, ``drb``, ``reliability``, ...) verbatim; the stamps
are ``SCIENCE``, ``TEMPLATE``, ``DIFFERENCE`` (:mod:`pipeline.alerts.stamps`). Stamps smaller than the
store's (ZTF stamps cut by the CCD edge) are padded so that the candidate stays centred, the padding masked;
NaN and blank-sentinel pixels are masked. A packet that cannot be ingested becomes a row of ``rejects.csv``
(reasons in :data:`pipeline.alerts.decode.REASONS` and :data:`pipeline.io.rejects.REASONS`); packets = ingested +
rejected, where a file that cannot be split into packets counts as one.

One store holds one survey: the first packet fixes it (and the pixel scale, 1.01" ZTF, 0.2" Rubin);
packets of the other survey are rejected (``wrong_survey``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tqdm import tqdm

from data_catalogs.alert_schemas import ALERT_COLUMNS, CHANNELS, PIXEL_SCALE_ARCSEC
from pipeline.alerts import Alert, AlertDecoder, conform, expand_alert_inputs
from pipeline.io import StampRejected
from pipeline.store import IngestReport, StoreBuilder


def _add_alert(builder: StoreBuilder, alert: Alert, survey: str) -> None:
    row = alert.row
    if row["survey"] != survey:
        builder.reject(
            alert.source,
            "wrong_survey",
            f"{alert.source}: a {row['survey']} packet; the store holds {survey} packets (one survey per store)",
        )
        return
    pixels, mask = alert.pixels, alert.mask
    if builder.stamp_shape is not None and builder.size_policy == "pad":
        try:
            pixels, mask = conform(pixels, mask, builder.stamp_shape, row, alert.source)
        except StampRejected as err:
            builder.reject(alert.source, err.reason, err)
            return
    builder.add(alert.source, pixels, mask, CHANNELS, {**row, "object_id": row["objectId"]})


def ingest_alerts(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    stamp_shape: tuple[int, int] | None = (63, 63),
    size_policy: str = "pad",
    pixel_scale_arcsec: float | None = None,
    rejects_path: str | os.PathLike | None = None,
    compression: str = "lzf",
    chunk_rows: int = 512,
    config_hash: str = "",
    workers: int = 1,
    progress: bool = False,
) -> IngestReport:
    """Read alert packets from files and folders and write them to one stamp store.

    Args:
        inputs: Avro files and/or folders (searched recursively for ``*.avro``; hidden and temporary names
            such as ``x.avro.partial`` are skipped).
        out: store path; ``rejects.csv`` is written beside it unless ``rejects_path`` is given.
        stamp_shape: ``(H, W)`` of the store (default 63x63, ZTF's cutout size); None: the first packet's.
        size_policy: ``"pad"`` smaller stamps (candidate-centred, masked; default) or ``"reject"`` them.
            Larger stamps are always rejected (``wrong_shape``).
        pixel_scale_arcsec: store pixel scale; None: the first packet's survey's (1.01 ZTF, 0.2 Rubin).
        rejects_path, compression, chunk_rows, config_hash: as :func:`pipeline.ingest.fits_stamps.ingest_fits`.
        workers: processes decoding packets (1: this process; see :class:`pipeline.alerts.decode.AlertDecoder`).
        progress: show a progress bar (files).

    Returns:
        The :class:`IngestReport` (ingested + rejected = packets, a file that cannot be split into packets
        counting as one).
    """
    files = expand_alert_inputs(inputs)
    builder = StoreBuilder(
        out,
        catalog_columns=["object_id", *ALERT_COLUMNS],
        channels=list(CHANNELS),
        stamp_shape=stamp_shape,
        size_policy=size_policy,
        rejects_path=rejects_path,
        pixel_scale_arcsec=pixel_scale_arcsec,
        config_hash=config_hash,
        chunk_rows=chunk_rows,
        compression=compression,
        attrs={"ingest": "alerts"},
    )
    survey: str | None = None
    try:
        with AlertDecoder(workers, digest=True) as decoder:
            decoded_files = decoder.decode(files)
            for decoded in tqdm(
                decoded_files, total=len(files), desc="ingest alerts", unit="file", disable=not progress
            ):
                for reject in decoded.rejects:
                    builder.reject(reject.source, reject.reason, reject.error)
                for alert in decoded.alerts:
                    if survey is None:
                        survey = str(alert.row["survey"])
                        if builder.pixel_scale_arcsec is None:
                            builder.pixel_scale_arcsec = PIXEL_SCALE_ARCSEC[survey]
                    _add_alert(builder, alert, survey)
                if decoded.alerts:
                    builder.add_source_digest(decoded.sha256)
    except BaseException:
        builder.abort()
        raise
    return builder.finish()
