"""Kafka in and out, against a real Kafka-protocol broker: librdkafka's mock cluster (``test.mock.num.brokers``),
started inside this test process by a producer and reached over TCP by the consumers, in threads and in
``stampflow`` subprocesses. Real ZTF packets, the shipped ``ztf_fast`` model (exported to ONNX once).

- the acceptance round trip: produce the 97 real packets (plus a poison message and a re-sent packet),
  score them with ``stampflow alerts score --kafka``, SIGKILL the consumer after its first published
  batch, restart it: every alert scored exactly once, records equal to the folder mode's;
- redeliveries (committed offsets lost) are skipped, copies of published alerts are ``duplicate`` rejects;
- a missing confluent-kafka is a named reason.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import fastavro
import pandas as pd
import pytest

from flows.cli import main as cli_main
from pipeline.scoring.onnx_model import load_onnx_scorer
from tests.conftest import REPO
from tests.pipeline.alerts.alert_helpers import ztf_sample_files

confluent_kafka = pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")

pytestmark = pytest.mark.slow

#: the mock cluster's group coordinator accepts 6 s at least; a killed member is dropped after it
FAST_GROUP = [
    *("--kafka-config", "session.timeout.ms=6000", "--kafka-config", "heartbeat.interval.ms=1000"),
    *("--kafka-config", "group.instance.id=scorer-1"),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """The shipped ``ztf_fast`` model exported to ONNX once: each ``stampflow`` process then loads it in about
    a second, without torch (folder mode and Kafka mode score with the same file)."""
    path = tmp_path_factory.mktemp("model") / "ztf_fast.onnx"
    assert cli_main(["export", "--model", "ztf_fast", "--onnx", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def cluster():
    """``(producer, bootstrap)``: a mock cluster living in this process (topics auto-created, 4 partitions)."""
    producer = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = producer.list_topics(timeout=10).brokers.values()
    yield producer, ",".join(f"{b.host}:{b.port}" for b in brokers)
    producer.flush(5)


def _produce(producer, topic: str, values: list[bytes]) -> None:
    """Keyed, so the messages spread over the 4 partitions: the mock cluster keeps at most 5 MB per
    partition (older segments are deleted), about 75 real packets."""
    for i, value in enumerate(values):
        producer.produce(topic, value, key=str(i).encode())
    assert producer.flush(10) == 0


def _batches(out: Path) -> list[Path]:
    return sorted((out / "batches").glob("[0-9]*"))


def _scored(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(b / "scored.parquet") for b in _batches(out)], ignore_index=True)


def _batch_summaries(out: Path) -> list[dict]:
    return [json.loads((b / "summary.json").read_text()) for b in _batches(out)]


def _read_topic(bootstrap: str, topic: str, n: int) -> list[dict]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    records, t0 = [], time.monotonic()
    while len(records) < n and time.monotonic() - t0 < 30:
        for m in consumer.consume(n, timeout=1):
            assert m.error() is None and m.key() == str(_one(m.value())["candid"]).encode()
            records.append(_one(m.value()))
    consumer.close()
    return records


def _one(value: bytes) -> dict:
    (record,) = list(fastavro.reader(io.BytesIO(value)))
    return record


def _kafka_command(model: str, bootstrap: str, out: Path, idle_exit: float = 3) -> list[str]:
    return [
        *(sys.executable, "-m", "flows.cli", "alerts", "score", "--model", model, "--out", str(out)),
        *("--kafka", bootstrap, "--topic", "ztf", "--group", "scorers", "--out-topic", "ztf-scored"),
        *(
            "--batch-messages",
            "5",
            "--batch-timeout",
            "0.3",
            "--idle-exit",
            str(idle_exit),
            "--json",
            *FAST_GROUP,
        ),
    ]


def test_kafka_round_trip_kill_restart_exactly_once(model, cluster, tmp_path):
    producer, bootstrap = cluster
    files = ztf_sample_files()
    assert (
        cli_main(["alerts", "score", *map(str, files), "--model", model, "--out", str(tmp_path / "folder")])
        == 0
    )
    folder = pd.read_parquet(tmp_path / "folder" / "scored.parquet").set_index("candid")

    packets = [f.read_bytes() for f in files]
    _produce(producer, "ztf", [*packets, b"not an alert packet", packets[0]])  # poison + a re-sent packet
    n_messages = len(packets) + 2
    out = tmp_path / "kafka"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        _kafka_command(model, bootstrap, out), cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    t0 = time.monotonic()
    while not _batches(out) and first.poll() is None and time.monotonic() - t0 < 90:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # hard, mid-stream: after the first published batch
    first.wait(10)
    assert 1 <= len(_batches(out)) < n_messages / 5
    # idle longer than the session timeout: the killed member's partitions come to this one meanwhile
    second = subprocess.run(
        _kafka_command(model, bootstrap, out, idle_exit=3),
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    report = json.loads(second.stdout)

    # every message in exactly one published batch, every alert scored exactly once
    summaries = _batch_summaries(out)
    assert sum(s["n_inputs"] for s in summaries) == n_messages, json.dumps(report)
    kafka = _scored(out)
    assert kafka["candid"].is_unique and set(kafka["candid"]) == set(folder.index)
    rb = kafka.set_index("candid")["rb"]
    assert (rb - folder["rb"].reindex(rb.index)).abs().max() < 1e-6
    reasons = pd.concat([pd.read_csv(b / "rejects.csv") for b in _batches(out)])["reason"]
    assert sorted(reasons) == ["duplicate", "not_avro"]

    # the restart's report: balanced, everything committed, no lag
    assert report["balanced"] and report["batches"] >= 1
    assert report["messages"] == report["messages_redelivered"] + report["messages_in_batches"]
    assert {p["partition"] for p in report["partitions"]} == {0, 1, 2, 3}
    assert all(p["lag"] == 0 and p["committed"] == p["end"] for p in report["partitions"]), report
    assert sum(p["end"] for p in report["partitions"]) == n_messages
    stage = json.loads((out / "manifest.json").read_text())["stages"]["alerts_kafka"]
    counts = stage["counts"]
    assert counts["inputs"] == counts["outputs"] + counts["rejected"] == report["n_inputs"]
    assert (
        counts["reject_reasons"] == report["reject_reasons"] and counts["partitions"] == report["partitions"]
    )

    # the output topic: one record per alert (a repeat only for a batch cut between publish and ack)
    records = _read_topic(bootstrap, "ztf-scored", len(folder))
    assert {r["candid"] for r in records} == set(folder.index)


def _run_thread(model: str, bootstrap: str, out: Path, topics: list[str], group: str):
    from pipeline.alerts import AlertScorer
    from pipeline.alerts.kafka_io import KafkaSettings
    from pipeline.alerts.kafka_stream import score_kafka_stream

    settings = KafkaSettings(
        bootstrap, topics, group=group, batch_messages=8, batch_timeout_s=0.3, idle_exit_s=1.5
    )
    alert_scorer = AlertScorer(load_onnx_scorer(model))
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(report=score_kafka_stream(settings, alert_scorer, out))
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    return result["report"]


def test_redeliveries_are_skipped_and_copies_are_duplicates(model, cluster, tmp_path):
    producer, bootstrap = cluster
    packets = [f.read_bytes() for f in ztf_sample_files()[:12]]
    _produce(producer, "once", packets)
    out = tmp_path / "out"
    first = _run_thread(model, bootstrap, out, ["once"], "g1")
    assert first.n_scored == 12 and first.balanced and first.messages_redelivered == 0

    # a new group (its offsets are not committed: as if every commit had been lost) on the same folder,
    # and a second topic carrying the same packets again
    _produce(producer, "again", packets[:5])
    second = _run_thread(model, bootstrap, out, ["once", "again"], "g2")
    assert second.messages_redelivered == 12 and second.messages_in_batches == 5
    assert second.n_scored == 0 and second.n_duplicates == 5 and second.balanced
    assert _scored(out)["candid"].is_unique and len(_scored(out)) == 12
    assert all(p["lag"] == 0 for p in second.partitions)


def test_missing_confluent_kafka_is_a_named_reason(model, monkeypatch, tmp_path, capsys):
    from pipeline.alerts.kafka_io import KafkaUnavailable, require_confluent_kafka

    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if not installed
    with pytest.raises(KafkaUnavailable, match=r"stampflow\[kafka\]"):
        require_confluent_kafka()
    argv = [
        "alerts",
        "score",
        "--model",
        model,
        "--out",
        str(tmp_path),
        "--kafka",
        "localhost:1",
        "--topic",
        "t",
    ]
    assert cli_main(argv) == 2
    assert "pip install 'stampflow[kafka]'" in capsys.readouterr().err
    assert not (tmp_path / "batches").exists()
    assert cli_main([*argv, "--follow"]) == 2
    assert "not INPUTS or --follow" in capsys.readouterr().err
