"""The real alerts of the real-bogus benchmark (:mod:`benchmarks.realbogus_real`): which alerts, their
pseudo-labels, their nights, the folds of held-out nights, and stamp stores of any subset of them.

- :func:`load_manifest`: the ZTF rows of ``manifest.csv`` (sets A-C) and ``F_more_real/manifest.csv``, one per
  alert, with its night (the manifest's ``night``; sets A-C have none, so the UTC date of ``jd``: ZTF nights
  are UTC dates, observed from Palomar between about 03 and 13 UT).
- :func:`decode_alerts`: every ZTF alert file through :func:`pipeline.alerts.read_alerts`, each decoded
  packet matched to its manifest row by ``candid``; the counts of every format and reject add up.
- :func:`pseudo_label`: ``drb >= 0.5`` where the packet has ZTF's deep real-bogus score, else ``rb >= 0.5``.
- :func:`make_folds`: whole nights to K folds, balanced by alert (and bogus) count.
- :class:`DecodedAlertReader` / :func:`alert_store`: decoded alerts, with their labels, into a stamp store
  through the one ingest driver (:func:`pipeline.ingest.ingest`), exactly as ``stampflow alerts ingest``
  stores them (63x63 SCIENCE, TEMPLATE, DIFFERENCE, CCD-edge stamps padded and masked).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_catalogs.alert_schemas import ALERT_COLUMNS, CHANNELS, PIXEL_SCALE_ARCSEC, ZTF_CUTOUT_SIZE
from pipeline.alerts import Alert, conform, read_alerts
from pipeline.ingest import Reject, Stamp, StorePlan, ingest
from pipeline.io import StampRejected
from pipeline.store import IngestReport, StoreBuilder

ALERTS = Path(os.environ.get("STAMPFLOW_ZTF_ALERTS", "/work/shared/ztf_alerts"))
#: Julian date of 1970-01-01T00:00 UTC.
UNIX_EPOCH_JD = 2440587.5
#: Pseudo-label cut on ZTF's scores (drb, else rb): real when the score is at least this.
LABEL_CUT = 0.5
#: The two nights with most alerts; they must be held out in different folds.
BIG_NIGHTS = ("2021-11-22", "2019-09-03")


def file_format(path: str | os.PathLike) -> str:
    """``avro``, ``parquet``, ``json``, ... from a file name (``x.snappy.parquet`` is ``parquet``)."""
    return Path(str(path).split("#")[0]).suffix.lstrip(".").lower() or "none"


def load_manifest(root: Path = ALERTS) -> tuple[pd.DataFrame, dict[str, int]]:
    """The ZTF alerts of both manifests (columns ``set``, ``file`` (absolute), ``format``, ``candid``,
    ``objectId``, ``night``) and the counts of what was left out (``rubin_left_out``: Rubin alerts have no
    ``drb``/``rb`` and are not part of this ZTF benchmark)."""
    sets = pd.read_csv(root / "manifest.csv")
    sets["night"] = pd.to_datetime(sets["jd"] - UNIX_EPOCH_JD, unit="D").dt.strftime("%Y-%m-%d")
    sets["file"] = [str(root / f) for f in sets["file"]]
    more = pd.read_csv(root / "F_more_real" / "manifest.csv")
    rubin = int((more["survey"] != "ZTF").sum())
    more = more[more["survey"] == "ZTF"].copy()
    more["file"] = [str(root / "F_more_real" / f) for f in more["file"]]
    columns = ["set", "file", "candid", "objectId", "night"]
    table = pd.concat([sets[columns], more[columns]], ignore_index=True)
    table["candid"] = table["candid"].astype("int64")
    table["format"] = [file_format(f) for f in table["file"]]
    duplicates = int(table["candid"].duplicated().sum())
    table = table.drop_duplicates("candid").reset_index(drop=True)
    return table, {"rubin_left_out": rubin, "manifest_duplicate_candids": duplicates}


def pseudo_label(row: dict[str, Any]) -> tuple[int, str]:
    """``(label, source)``: 1 real / 0 bogus from the packet's ``drb`` (``drb >= 0.5``), else its ``rb``;
    ``(-1, "none")`` when the packet has neither."""
    for name in ("drb", "rb"):
        value = row.get(name)
        if value is not None and np.isfinite(float(value)):
            return int(float(value) >= LABEL_CUT), name
    return -1, "none"


def pixel_digest(alert: Alert) -> str:
    """sha256 of an alert's science, template and difference pixels (catches one alert under two ids)."""
    return hashlib.sha256(np.ascontiguousarray(alert.pixels, dtype=np.float32).tobytes()).hexdigest()


@dataclass
class RealAlerts:
    """The usable ZTF alerts, one per candid, and how every manifest alert was accounted for.

    Attributes:
        alerts: the decoded alerts, in manifest order of first appearance.
        table: one row per alert of ``alerts``: ``candid``, ``objectId``, ``night``, ``set``, ``format``,
            ``label``, ``label_source``, ``ztf_rb``, ``ztf_drb``, ``pixels_sha256``.
        counts: manifest alerts by format, decoded per format, unreadable per format, rejects by reason,
            duplicates, alerts not in the manifest, unlabelled; ``manifest = used + unreadable + unlabelled``.
    """

    alerts: list[Alert]
    table: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)


def decode_alerts(manifest: pd.DataFrame, *, workers: int = 1) -> RealAlerts:
    """Decode every file of ``manifest`` (:func:`pipeline.alerts.read_alerts`) and keep its ZTF alerts.

    A decoded packet that the manifest does not list, a second packet of one candid, or a packet with
    neither score is counted (never used silently); a manifest alert that no packet gave is counted as
    unreadable under its file's format, and the decoder's rejects are listed by format and reason.
    """
    files = sorted(set(manifest["file"]))
    decoded, rejects = read_alerts(files, workers=workers)
    by_candid = manifest.set_index("candid")
    kept: dict[int, Alert] = {}
    rows, extra, duplicates, unlabelled, not_ztf = [], 0, 0, 0, 0
    for alert in decoded:
        row = alert.row
        if row.get("survey") != "ztf":
            not_ztf += 1
            continue
        candid = int(row["candid"])
        if candid not in by_candid.index:
            extra += 1
            continue
        if candid in kept:
            duplicates += 1
            continue
        label, source = pseudo_label(row)
        if label < 0:
            unlabelled += 1
            continue
        kept[candid] = alert
        info = by_candid.loc[candid]
        rows.append(
            {
                "candid": candid,
                "objectId": str(row["objectId"]),
                "night": str(info["night"]),
                "set": str(info["set"]),
                "format": file_format(alert.source),
                "label": label,
                "label_source": source,
                "ztf_rb": _float(row.get("rb")),
                "ztf_drb": _float(row.get("drb")),
                "pixels_sha256": pixel_digest(alert),
            }
        )
    table = pd.DataFrame(rows)
    missing = manifest[~manifest["candid"].isin(kept)]
    counts = {
        "manifest_ztf_alerts": len(manifest),
        "manifest_by_format": _counts(manifest["format"]),
        "files": len(files),
        "used": len(kept),
        "used_by_format": _counts(table["format"]),
        "unreadable": len(missing) - unlabelled,
        "unreadable_by_format": _counts(missing["format"]),
        "unlabelled": unlabelled,
        "decoder_rejects": len(rejects),
        "decoder_rejects_by_format_and_reason": _counts(
            f"{file_format(r.source)}:{r.reason}" for r in rejects
        ),
        "duplicate_packets": duplicates,
        "decoded_not_in_manifest": extra,
        "decoded_not_ztf": not_ztf,
        "label_sources": _counts(table["label_source"]),
    }
    alerts = [kept[c] for c in table["candid"]]
    return RealAlerts(alerts, table, counts)


def _float(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def _counts(values: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(Counter(values).items())}


def make_folds(table: pd.DataFrame, k: int, seed: int) -> list[list[str]]:
    """Whole nights into ``k`` folds: the :data:`BIG_NIGHTS` first, then nights by decreasing alert count
    (ties in a seeded order), each to the fold with the smallest share of alerts plus share of bogus alerts
    so far; the folds' nights sorted.

    Raises:
        ValueError: fewer nights than folds, or the two :data:`BIG_NIGHTS` in one fold.
    """
    per_night = table.groupby("night").agg(
        n=("candid", "size"), bogus=("label", lambda s: int((s == 0).sum()))
    )
    if len(per_night) < k:
        raise ValueError(f"{len(per_night)} nights cannot make {k} folds")
    order = np.random.default_rng(seed).permutation(len(per_night))
    per_night = per_night.iloc[order].sort_values("n", ascending=False, kind="stable")
    big = [n for n in BIG_NIGHTS if n in per_night.index]  # first, so that each starts its own fold
    per_night = pd.concat([per_night.loc[big], per_night.drop(index=big)])
    total, bogus = max(1, int(per_night["n"].sum())), max(1, int(per_night["bogus"].sum()))
    folds: list[list[str]] = [[] for _ in range(k)]
    load = np.zeros(k)
    for night, r in per_night.iterrows():
        best = int(np.argmin(load))
        folds[best].append(str(night))
        load[best] += r["n"] / total + r["bogus"] / bogus
    for nights in folds:
        if all(n in nights for n in BIG_NIGHTS):
            raise ValueError(f"nights {BIG_NIGHTS} fell in one fold: {nights}")
    return [sorted(f) for f in folds]


class DecodedAlertReader:
    """An ingest reader (:class:`pipeline.ingest.Reader`) of alerts already decoded, each with its label
    (``/labels/real``): the rows and stamps are those of :class:`pipeline.ingest.AlertReader`."""

    progress = ("ingest alerts", "alert")
    chunked = False
    sources_are_files = False

    def __init__(self, alerts: Sequence[Alert], labels: Sequence[int]):
        self.alerts, self.labels = list(alerts), [int(v) for v in labels]

    def open(self) -> StorePlan:
        return StorePlan(
            catalog_columns=["object_id", *ALERT_COLUMNS],
            attrs={"ingest": "alerts"},
            channels=list(CHANNELS),
            stamp_shape=(ZTF_CUTOUT_SIZE, ZTF_CUTOUT_SIZE),
            size_policy="pad",
            pixel_scale_arcsec=PIXEL_SCALE_ARCSEC["ztf"],
        )

    def __len__(self) -> int:
        return len(self.alerts)

    def units(self) -> Iterator[int]:
        return iter(range(len(self.alerts)))

    def unit_source(self, unit: int) -> str:
        return self.alerts[unit].source

    def read(self, unit: int, store: StoreBuilder) -> Iterator[Stamp | Reject]:
        alert = self.alerts[unit]
        try:
            pixels, mask = conform(alert.pixels, alert.mask, store.stamp_shape, alert.row, alert.source)
        except StampRejected as err:
            yield Reject(alert.source, err.reason, str(err))
            return
        row = {**alert.row, "object_id": alert.row["objectId"]}
        labels = {"real": self.labels[unit]}
        yield Stamp(alert.source, pixels, mask, CHANNELS, row, labels=labels, sha256=pixel_digest(alert))


def alert_store(alerts: Sequence[Alert], labels: Sequence[int], out: Path) -> IngestReport:
    """Alerts and their 0/1 labels into the stamp store ``out`` (one row per alert, or a counted reject).

    Raises:
        RuntimeError: when the counts do not add up or nothing was stored.
    """
    report = ingest(DecodedAlertReader(alerts, labels), out)
    if report.n_ingested + report.n_rejected != len(alerts) or not report.n_ingested:
        raise RuntimeError(f"{out}: {len(alerts)} alerts, {report.summary()}")
    return report
