"""``stampflow alerts score --kafka BOOTSTRAP --topic T``: score alert packets from Kafka topics in
micro-batches (:mod:`pipeline.alerts.kafka_stream`), writing ``OUT/batches/NNNNNN/`` and, with
``--out-topic``, the classification records to a topic; offsets are committed only once the outputs are
durable. Needs the ``kafka`` extra (confluent-kafka); without it the command exits 2 naming the extra.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.cli_common import EXIT_FAILED, EXIT_USAGE

if TYPE_CHECKING:
    from pipeline.alerts import KafkaReport, KafkaSettings, QualityThresholds
    from pipeline.scoring import Scorer


def _config_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (a librdkafka setting), got {text!r}")
    return key.strip(), value.strip()


#: :class:`pipeline.alerts.kafka_io.KafkaSettings` field -> the argument that sets it
SETTINGS_ARGS = {
    "bootstrap": "kafka",
    "topics": "topic",
    "group": "group",
    "out_topic": "out_topic",
    "batch_messages": "batch_messages",
    "batch_timeout_s": "batch_timeout",
    "idle_exit_s": "idle_exit",
    "max_batches": "max_batches",
}


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event that SIGINT/SIGTERM set (``--follow`` and ``--kafka`` finish the current batch, then stop);
    the previous handlers are restored on exit."""
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        print(f"signal {signum}: stopping after the current batch", file=sys.stderr)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--kafka`` options of ``stampflow alerts score`` (``--idle-exit``/``--max-batches`` are shared
    with ``--follow``)."""
    group = parser.add_argument_group("Kafka input (needs the kafka extra: pip install 'stampflow[kafka]')")
    group.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="consume alert packets from these brokers (host:port,...)"
    )
    group.add_argument("--topic", action="append", default=[], help="--kafka: topic to consume (repeatable)")
    group.add_argument(
        "--group", default="stampflow-alerts", help="--kafka: consumer group (default stampflow-alerts)"
    )
    group.add_argument("--out-topic", help="--kafka: also publish the classification records to this topic")
    group.add_argument(
        "--batch-messages",
        type=int,
        default=1000,
        help="--kafka: messages per micro-batch at most (default 1000)",
    )
    group.add_argument(
        "--batch-timeout",
        type=float,
        default=1.0,
        help="--kafka: close a micro-batch after this many seconds even when not full (default 1)",
    )
    group.add_argument(
        "--kafka-config",
        action="append",
        type=_config_pair,
        default=[],
        metavar="KEY=VALUE",
        help="--kafka: a librdkafka setting for the consumer and producer (repeatable), e.g. security.protocol=SSL",
    )


def record_kafka_stage(args: argparse.Namespace, settings: KafkaSettings, report: KafkaReport) -> None:
    """The run's record: stage ``alerts_kafka`` of ``OUT/manifest.json`` (one per run, the last replacing
    the one before) with the brokers, topics and group, and counts checked by
    :func:`flows.stages.stage_counts`: inputs = scored + rejected (duplicates among the rejected), flagged
    among the scored, plus the messages and each partition's committed offset and lag at the end."""
    from flows.stages import StageRecorder, stage_counts
    from pipeline.runs import MANIFEST_NAME

    counts = stage_counts(
        report.n_inputs,
        report.n_scored,
        rejected=report.n_rejected + report.n_duplicates,
        flagged=report.n_flagged,
        reject_reasons=report.reject_reasons,
        stage="alerts_kafka",
        duplicates=report.n_duplicates,
        messages=report.messages,
        messages_redelivered=report.messages_redelivered,
        partitions=report.partitions,
    )
    config = {"bootstrap": settings.bootstrap, "topics": list(settings.topics), "group": settings.group}
    outputs = {"folder": str(args.out), "out_topic": settings.out_topic, "batches": report.batches}
    StageRecorder(Path(args.out) / MANIFEST_NAME).record(
        "alerts_kafka", [], config=config, outputs=outputs, seconds=report.seconds, counts=counts
    )


def score_kafka(
    args: argparse.Namespace, scorer: Sequence[Scorer], quality: QualityThresholds | None = None
) -> int:
    """Run the Kafka scoring loop until Ctrl-C/SIGTERM (the current batch is finished), ``--idle-exit``
    or ``--max-batches``; print the run's report (counts, per-partition committed offsets and lag).
    ``scorer`` (the models) and ``quality`` (the flags' thresholds; None: the defaults) are what
    :class:`pipeline.alerts.AlertScorer` takes."""
    from pipeline.alerts import AlertScorer
    from pipeline.alerts.kafka_io import KafkaSettings, KafkaUnavailable
    from pipeline.alerts.kafka_stream import score_kafka_stream

    if not args.topic or args.inputs or args.follow:
        what = "needs at least one --topic" if not args.topic else "reads topics, not INPUTS or --follow"
        print(f"error: --kafka {what}", file=sys.stderr)
        return EXIT_USAGE
    values = {field: getattr(args, name) for field, name in SETTINGS_ARGS.items()}
    settings = KafkaSettings(**values, config=dict(args.kafka_config))
    alert_scorer = AlertScorer(scorer, quality=quality)
    try:
        with stop_on_signals() as stop:
            report = score_kafka_stream(
                settings, alert_scorer, args.out, jsonl=args.jsonl, batch_alerts=args.batch_alerts, stop=stop
            )
    except KafkaUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    record_kafka_stage(args, settings, report)
    summary = report.to_dict()
    print(json.dumps(summary, indent=2) if args.json else f"kafka: {summary}")
    if report.n_inputs and not report.n_scored:
        print(f"error: nothing could be scored; see {args.out}/batches/*/rejects.csv", file=sys.stderr)
        return EXIT_FAILED
    return 0
