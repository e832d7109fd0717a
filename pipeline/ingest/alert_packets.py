"""Reader of alert packets (ZTF, Rubin), :class:`~pipeline.ingest.sources.AlertSource`.

Each packet becomes one row: ``object_id`` (= ``objectId``), ``source`` (``path#index``) and the columns of
:data:`data_catalogs.alert_schemas.ALERT_COLUMNS` (``objectId``, ``candid``, ``ra``, ``dec``, ``jd``, ``fid``,
``magpsf``, ``isdiffpos``, ``diff_sign``, ``nbad``, ``rb``, ``drb``, ``reliability``, ...) verbatim; the stamps
are ``SCIENCE``, ``TEMPLATE``, ``DIFFERENCE`` (:mod:`pipeline.alerts.stamps`). Stamps smaller than the
store's (ZTF stamps cut by the CCD edge) are padded so that the candidate stays centred, the padding masked;
NaN and blank-sentinel pixels are masked. A packet that cannot be ingested becomes a row of ``rejects.csv``
(reasons in :data:`pipeline.alerts.decode.REASONS` and :data:`pipeline.io.rejects.REASONS`); packets = ingested +
rejected, where a file that cannot be split into packets counts as one.

One store holds one survey: the first packet fixes it (and the pixel scale, 1.01" ZTF, 0.2" Rubin);
packets of the other survey are rejected (``wrong_survey``). A second packet of an alert already ingested
(same survey and ``candid``, within one reader: a chunk of a chunked ingest) is rejected as ``duplicate``,
naming the first (:mod:`pipeline.alerts.duplicates`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from data_catalogs.alert_schemas import ALERT_COLUMNS, CHANNELS, PIXEL_SCALE_ARCSEC
from pipeline.alerts import Alert, AlertDecoder, conform, is_alert_name
from pipeline.alerts.decode import DecodedFile
from pipeline.alerts.duplicates import DuplicateFilter
from pipeline.ingest.inputs import check_name
from pipeline.ingest.reader import Item, Reject, SourceReader, Stamp, StorePlan, rejected
from pipeline.ingest.registry import ingest_with
from pipeline.io import StampRejected
from pipeline.store import IngestReport, StoreBuilder


class AlertReader(SourceReader):
    """Reads an :class:`AlertSource` file by file (chunked), decoding packets in ``workers`` processes."""

    progress = ("ingest alerts", "file")
    chunked = True
    wanted = staticmethod(is_alert_name)  # hidden and temporary names are skipped

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.survey: str | None = None  # the first packet's; the store holds that survey only
        self.seen = DuplicateFilter()

    def open(self) -> StorePlan:
        source = self.source
        return StorePlan(
            catalog_columns=["object_id", *ALERT_COLUMNS],
            attrs={"ingest": "alerts"},
            channels=list(CHANNELS),
            stamp_shape=source.stamp_shape,
            size_policy=source.size_policy,
            pixel_scale_arcsec=source.pixel_scale_arcsec,
        )

    def units(self) -> Iterator[DecodedFile | Reject]:
        """Each file decoded (in order), or the reject of a name that cannot be stored."""
        named, bad = [], {}
        for path in self.files:
            try:
                named.append(check_name(path))
            except StampRejected as err:
                bad[path] = rejected(path, err)
        hash_here = not all(self.inputs.known(name) for name in named)
        with AlertDecoder(self.source.workers, digest=hash_here) as decoder:
            decoded = decoder.decode(named)
            for path in self.files:
                yield bad[path] if path in bad else next(decoded)

    def unit_source(self, unit: DecodedFile | Reject) -> str:
        return unit.source if isinstance(unit, Reject) else unit.path

    def read(self, unit: DecodedFile | Reject, store: StoreBuilder) -> Iterator[Item]:
        if isinstance(unit, Reject):
            yield unit
            return
        for reject in unit.rejects:
            yield Reject(reject.source, reject.reason, reject.error)
        sha256 = self.inputs.known(unit.path) or unit.sha256
        for alert in unit.alerts:
            yield self._stamp(alert, store, sha256)

    def _stamp(self, alert: Alert, store: StoreBuilder, sha256: str) -> Item:
        row = alert.row
        self.survey = self.survey or str(row["survey"])
        if row["survey"] != self.survey:
            return Reject(
                alert.source,
                "wrong_survey",
                f"{alert.source}: a {row['survey']} packet; the store holds {self.survey} packets "
                "(one survey per store)",
            )
        pixels, mask = alert.pixels, alert.mask
        if store.stamp_shape is not None and store.size_policy == "pad":
            try:
                pixels, mask = conform(pixels, mask, store.stamp_shape, row, alert.source)
            except StampRejected as err:
                return Reject(alert.source, err.reason, str(err))
        if (first := self.seen.first_source(alert.source, row)) is not None:
            return Reject(alert.source, "duplicate", self.seen.message(alert.source, row, first))
        return Stamp(
            alert.source,
            pixels,
            mask,
            CHANNELS,
            {**row, "object_id": row["objectId"]},
            sha256=sha256,
            pixel_scale_arcsec=PIXEL_SCALE_ARCSEC[self.survey],
        )


def ingest_alerts(
    inputs: Sequence[str | os.PathLike], out: str | os.PathLike, **options: Any
) -> IngestReport:
    """Ingest alert packets: :class:`AlertSource` ``(inputs=inputs, **options)`` into the store ``out``
    (``options``: the source's fields and the driver's keywords, :func:`pipeline.ingest.driver.ingest`)."""
    return ingest_with("alerts", out, {"inputs": inputs, **options})
