"""Duplicate packets: the same alert (one ``candid``) received more than once is used once.

Brokers keep alerts in several places and formats (a stream's Avro files, a night's Parquet, a test set
that copies both), so one alert often arrives twice. Scoring or ingesting it twice would count it twice and
write two rows for one alert; dropping the copy silently would break ``inputs = used + rejected``. The copy
is therefore its own reject, ``duplicate``, whose message names the source that was used: counts add up
and nothing is hidden.

An alert is known by ``(survey, candid)`` (ZTF ``candid``; Rubin ``diaSourceId``): a candidate id names one
detection, whatever the packet's schema version, format or file. A row without a candid (-1) is never
taken for a copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

#: Reject reason of a packet whose alert was already read.
DUPLICATE_REASONS = {
    "duplicate": "the alert (survey and candid) was already read from another packet; the message names it",
}


class _AlertLike(Protocol):
    source: str
    row: dict[str, Any]


def alert_key(row: dict[str, Any]) -> tuple[str, int]:
    """``(survey, candid)`` of an alert row."""
    return str(row.get("survey", "")), int(row["candid"])


class DuplicateFilter:
    """Remembers the alerts seen (``(survey, candid)`` -> first source) and tells copies apart.

    One filter per run (a scoring run, an ingest): its memory grows by one small entry per alert.
    """

    def __init__(self) -> None:
        self.first: dict[tuple[str, int], str] = {}
        self.n_duplicates = 0

    def first_source(self, source: str, row: dict[str, Any]) -> str | None:
        """None when the alert of ``row`` is new (it is remembered as read from ``source``), else the
        source it was first read from."""
        key = alert_key(row)
        if key[1] < 0:  # no candid (-1: a frame row without one): nothing to match it by
            return None
        seen = self.first.get(key)
        if seen is None:
            self.first[key] = source
            return None
        self.n_duplicates += 1
        return seen

    def message(self, source: str, row: dict[str, Any], first: str) -> str:
        """The ``duplicate`` reject message of ``source``."""
        survey, candid = alert_key(row)
        return f"{source}: duplicate of {first} ({survey} candid {candid} was already read there)"

    def split(self, alerts: Iterable[_AlertLike]) -> tuple[list[Any], list[tuple[str, str]]]:
        """``(new alerts, [(source, message), ...] of the duplicates)``, in order."""
        kept: list[Any] = []
        copies: list[tuple[str, str]] = []
        for alert in alerts:
            first = self.first_source(alert.source, alert.row)
            if first is None:
                kept.append(alert)
            else:
                copies.append((alert.source, self.message(alert.source, alert.row, first)))
        return kept, copies
