"""The Kafka edge of alert scoring: the client library (optional), settings, messages in, records out,
offsets and lag.

- :func:`require_confluent_kafka`: the ``confluent_kafka`` module, or :class:`KafkaUnavailable` naming the
  extra to install (``pip install 'stampflow[kafka]'``).
- :class:`KafkaSettings`: brokers, topics, group, output topic, micro-batch size and the stop rules.
- :func:`decode_message`: one message (one Avro alert container, as ZTF and Rubin publish them) to a
  :class:`pipeline.alerts.decode.DecodedFile` whose packets are named ``kafka:TOPIC/PARTITION/OFFSET#i``.
- :class:`RecordProducer`: broker records to the output topic, one Avro container (published schema,
  one record) per message, keyed by ``candid``; :meth:`RecordProducer.flush` waits for every acknowledgement.
- :func:`partition_offsets`: per partition the committed offset, the end of the log and the lag.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fastavro

from pipeline.alerts.broker import parsed_classification_schema
from pipeline.alerts.decode import DecodedFile, decode_alert_bytes

log = logging.getLogger(__name__)

KAFKA_EXTRA = "pip install 'stampflow[kafka]'"


class KafkaUnavailable(RuntimeError):
    """Kafka was asked for and the ``confluent-kafka`` package is not installed."""


def require_confluent_kafka() -> Any:
    """The ``confluent_kafka`` module; :class:`KafkaUnavailable` naming the extra when it is missing."""
    try:
        import confluent_kafka
    except ImportError as err:
        raise KafkaUnavailable(
            f"Kafka input needs the confluent-kafka package, which cannot be imported ({err}); "
            f"install it with: {KAFKA_EXTRA}"
        ) from err
    return confluent_kafka


@dataclass
class KafkaSettings:
    """Where to read and write, and how to batch.

    Attributes:
        bootstrap: ``host:port[,host:port...]`` of the brokers.
        topics: topics of alert packets to consume.
        group: consumer group (its committed offsets are where a restart resumes).
        out_topic: topic for the classification records (None: the output folder only).
        batch_messages: messages per micro-batch at most.
        batch_timeout_s: a micro-batch is closed after this many seconds even when not full (latency bound).
        idle_exit_s: stop after this long with partitions assigned and no new message (None: never).
        max_batches: stop after this many published batches in this run (None: never).
        config: more librdkafka settings for the consumer and the producer (``security.protocol``, ...).
    """

    bootstrap: str
    topics: Sequence[str]
    group: str = "stampflow-alerts"
    out_topic: str | None = None
    batch_messages: int = 1000
    batch_timeout_s: float = 1.0
    idle_exit_s: float | None = None
    max_batches: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)

    def consumer_config(self) -> dict[str, Any]:
        """Offsets are committed by the scoring loop only, after the outputs are durable."""
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **self.config,
        }

    def producer_config(self) -> dict[str, Any]:
        """Idempotent producer: a retried send is not written twice."""
        consumer_only = ("session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "group.")
        extra = {k: v for k, v in self.config.items() if not k.startswith(consumer_only)}
        return {"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all", **extra}


def message_name(topic: str, partition: int, offset: int) -> str:
    """``kafka:TOPIC/PARTITION/OFFSET``: a message's name in sources and rejects."""
    return f"kafka:{topic}/{partition}/{offset}"


def decode_message(message: Any) -> DecodedFile:
    """Decode one Kafka message's value (an Avro alert container); a message that is not one (empty, not
    Avro, truncated) is a reject with its reason, like a bad file."""
    name = message_name(message.topic(), message.partition(), message.offset())
    return decode_alert_bytes(message.value() or b"", name)


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """One broker record as an Avro object container (the published schema embedded, one record)."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, parsed_classification_schema(), [record])
    return buffer.getvalue()


class RecordProducer:
    """Classification records to ``topic``, keyed by ``candid`` (a compacted topic keeps one per alert).

    Args:
        kafka: the ``confluent_kafka`` module.
        settings: brokers and extra client settings.
        topic: the output topic.
    """

    def __init__(self, kafka: Any, settings: KafkaSettings, topic: str):
        self.topic = topic
        self._producer = kafka.Producer(settings.producer_config())
        self._errors: list[str] = []
        self.n_produced = 0

    def _delivered(self, err: Any, message: Any) -> None:
        if err is not None:
            self._errors.append(f"{message.key()!r}: {err}")

    def produce(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Queue the records (call :meth:`flush` to wait for them); returns how many."""
        n = 0
        for record in records:
            key = str(record["candid"]).encode()
            while True:
                try:
                    self._producer.produce(self.topic, record_bytes(record), key, on_delivery=self._delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.5)
            n += 1
        return n

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every queued record is acknowledged; OSError naming the topic when one is not."""
        left = self._producer.flush(timeout_s)
        if left or self._errors:
            errors, self._errors = self._errors, []
            raise OSError(
                f"output topic {self.topic!r}: {left} records not acknowledged within {timeout_s:.0f} s, "
                f"{len(errors)} failed ({'; '.join(errors[:3])})"
            )


def partition_offsets(consumer: Any, kafka: Any, topics: Sequence[str]) -> list[dict[str, Any]]:
    """Per partition of ``topics``: ``committed`` offset of the group (None: nothing committed), ``start``
    (the oldest offset the broker still keeps), ``end`` (high watermark: the next offset to be written) and
    ``lag`` (end - committed, or end - start when nothing is committed). Empty when the cluster cannot be
    asked."""
    try:
        metadata = consumer.list_topics(timeout=10)
        parts = [
            kafka.TopicPartition(t, p)
            for t in topics
            if t in metadata.topics
            for p in sorted(metadata.topics[t].partitions)
        ]
        committed = consumer.committed(parts, timeout=10) if parts else []
        rows = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            offset = tp.offset if tp.offset >= 0 else None
            lag = high - (offset if offset is not None else low)
            rows.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": offset,
                    "start": low,
                    "end": high,
                    "lag": lag,
                }
            )
        return rows
    except kafka.KafkaException as err:
        log.warning("cannot read the committed offsets and lag: %s", err)
        return []
