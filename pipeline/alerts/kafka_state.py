"""The state database of a Kafka scoring run (``kafka_state.sqlite`` in the output folder): which
micro-batches were claimed and published, the message offsets each one holds, and every alert published.

Tables (SQLite, ``synchronous=FULL``, one transaction per step):

- ``batches``: ``seq``, ``status`` (``pending`` until the batch folder is published, then ``done``),
  ``produced`` (1 once the batch's records are acknowledged by the output topic, or when there is none),
  ``summary`` (JSON counts);
- ``ranges``: ``(batch, topic, partition, first_offset, last_offset)``: the messages of a batch;
- ``alerts``: ``(survey, candid) -> batch``: every alert published, so that a copy that arrives later
  (another message, a redelivery) is the reject ``duplicate`` naming the batch that scored it.

:mod:`pipeline.alerts.kafka_stream` writes it; the offsets committed to Kafka may lag it (a crash between
publishing a batch and committing), never lead it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.alerts.follow import open_state_db

STATE_NAME = "kafka_state.sqlite"

#: ``(topic, partition)`` -> offset
Offsets = dict[tuple[str, int], int]


#: The tables (module docstring).
SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY, status TEXT NOT NULL, produced INTEGER NOT NULL DEFAULT 0,
    claimed_at REAL NOT NULL, done_at REAL, summary TEXT);
CREATE TABLE IF NOT EXISTS ranges (
    batch INTEGER NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    survey TEXT NOT NULL, candid INTEGER NOT NULL, batch INTEGER NOT NULL, PRIMARY KEY (survey, candid));
"""


class KafkaState:
    """Batches, their offset ranges and the alerts published, in the SQLite file ``path`` (its tables are
    created when absent; module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.db = open_state_db(self.path, SCHEMA)

    def close(self) -> None:
        self.db.close()

    def next_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM batches").fetchone()
        return int(row[0] or 0) + 1

    def claim(self, seq: int, ranges: Mapping[tuple[str, int], tuple[int, int]]) -> None:
        """Record batch ``seq`` as pending with its messages ``(topic, partition) -> (first, last offset)``."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO batches (seq, status, claimed_at) VALUES (?, 'pending', ?)", (seq, time.time())
            )
            self.db.executemany(
                "INSERT INTO ranges VALUES (?, ?, ?, ?, ?)",
                [(seq, t, p, first, last) for (t, p), (first, last) in ranges.items()],
            )

    def complete(
        self, seq: int, alerts: Iterable[tuple[str, int]], summary: Mapping[str, Any], *, produced: bool
    ) -> None:
        """Mark batch ``seq`` done (its folder is published) and remember its alerts ``(survey, candid)``."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)", [(s, int(c), seq) for s, c in alerts]
            )
            self.db.execute(
                "UPDATE batches SET status = 'done', produced = ?, done_at = ?, summary = ? WHERE seq = ?",
                (int(produced), time.time(), json.dumps(summary), seq),
            )

    def mark_produced(self, seq: int) -> None:
        """The output topic acknowledged every record of batch ``seq``."""
        with self.db:
            self.db.execute("UPDATE batches SET produced = 1 WHERE seq = ?", (seq,))

    def drop(self, seq: int) -> None:
        """Forget a pending batch whose folder was never published (its messages are read again)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM ranges WHERE batch = ?", (seq,))
            self.db.execute("DELETE FROM batches WHERE seq = ? AND status = 'pending'", (seq,))

    def pending(self) -> list[int]:
        """Batches claimed but not done, oldest first."""
        return [
            r[0] for r in self.db.execute("SELECT seq FROM batches WHERE status = 'pending' ORDER BY seq")
        ]

    def unproduced(self) -> list[int]:
        """Done batches whose records the output topic has not acknowledged, oldest first."""
        rows = self.db.execute("SELECT seq FROM batches WHERE status = 'done' AND produced = 0 ORDER BY seq")
        return [r[0] for r in rows]

    def published_offsets(self) -> Offsets:
        """``(topic, partition) -> last offset`` published (in a done batch), per partition."""
        rows = self.db.execute(
            "SELECT topic, partition, MAX(last_offset) FROM ranges JOIN batches ON batch = seq "
            "WHERE status = 'done' GROUP BY topic, partition"
        )
        return {(t, int(p)): int(last) for t, p, last in rows}

    def batch_of(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """``(survey, candid) -> batch`` of those alerts of ``keys`` already published."""
        out = {}
        for survey, candid in keys:
            row = self.db.execute(
                "SELECT batch FROM alerts WHERE survey = ? AND candid = ?", (survey, int(candid))
            ).fetchone()
            if row is not None:
                out[(survey, int(candid))] = int(row[0])
        return out

    def n_alerts(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
