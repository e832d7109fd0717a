"""Alert throughput: packets decoded per second (ours against a plain fastavro + gzip + astropy loop, side
by side), and decode + score latency of 1,000-alert micro-batches with the ``ztf`` real-bogus model.

Inputs are real: ``--n`` files cycling through the 97 real ZTF packets of ``tests/data/ztf_alerts`` (one
packet per file, as ZTF writes them), copied to a temporary folder (so both readers read from the page
cache). Decoding alternates ``--repeats`` rounds between

- ``plain_loop``: ``fastavro.reader`` per file, ``gzip.decompress`` + ``astropy.io.fits.open`` per cutout,
  the primary HDU's data (what a user would write first); it reads ``--n-plain`` files per round;
- ``stampflow_1_process``: :class:`pipeline.alerts.decode.AlertDecoder` in this process (cached schema, reader
  schema skipping the previous candidates, gzip inflated in C (ISA-L when installed, else zlib), simple FITS
  headers read without astropy) - the pixels, masks and fields are the plain loop's (checked here on the
  first 97 files, and in tests/pipeline/alerts/test_decode.py);
- ``stampflow_<w>_processes``: the same decoder with ``--workers`` worker processes (default: one per
  usable CPU, what ``stampflow alerts score`` uses); each worker sends a task's alerts back as two flat
  arrays (:class:`pipeline.alerts.decode.PackedFiles`).

The ratios are computed per round (same machine load) and their median reported; ``ours_vs_plain_loop`` is
the default configuration's (``--workers``) and ``at_least_5x`` whether it is >= 5. Then ``--batches``
micro-batches of ``--batch`` alerts are decoded (with ``--workers``) and scored by the ``ztf`` preset of
models/realbogus.py (seeded untrained weights saved as a real checkpoint; speed does not depend on the
weights) on ``--device``: alerts/s and p50/p99 latency per micro-batch.

Then, per core (one ONNX Runtime/torch thread, decoding in this process), decode + score alerts/s of the
shipped ``ztf_fast`` model on ``--per-core-n`` distinct alerts (the real packets re-encoded with their own
``candid`` each, so none is a duplicate), in three modes side by side: ``folder`` (``stampflow alerts
score`` on files: :func:`pipeline.alerts.score_alert_files`), ``kafka`` (micro-batches of ``--batch``
messages from librdkafka's mock cluster in this process: :func:`pipeline.alerts.score_kafka_stream`; rate
over the time spent on batches, group join and idle wait apart; the mock keeps 5 MB per partition, so
``--per-core-n`` stays at 250 at most) and ``spark_udf`` (benchmarks/spark_udf.py in a subprocess,
``local[1]``; needs pyspark and Java 17, else the reason is reported).

Usage: python benchmarks/alerts.py [--n 3000] [--n-plain 1000] [--repeats 3] [--workers 0] [--batch 1000]
       [--batches 5] [--device cpu] [--threads 0] [--seed 0] [--per-core-n 200] [--skip-per-core]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import torch
from astropy.io import fits

from data_catalogs.alert_schemas import CHANNELS, CUTOUT_FIELDS
from pipeline.alerts import AlertDecoder, AlertScorer, utc_datetime
from pipeline.alerts import cutouts as alert_cutouts
from pipeline.cpus import usable_cpus
from pipeline.scoring import Scorer

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data" / "ztf_alerts"


def sample_packets() -> list[Path]:
    """The 97 real ZTF packets listed in the samples' manifest.csv."""
    import csv

    with open(SAMPLES / "manifest.csv", newline="") as fh:
        return [SAMPLES / row["file"] for row in csv.DictReader(fh)]


def make_inputs(folder: Path, n: int) -> list[Path]:
    """``n`` files cycling through the real packets."""
    packets = sample_packets()
    files = []
    for i in range(n):
        dst = folder / f"{i:06d}_{packets[i % len(packets)].name}"
        shutil.copyfile(packets[i % len(packets)], dst)
        files.append(dst)
    return files


def plain_loop(files: list[Path]) -> list[tuple[dict, list[np.ndarray]]]:
    """The baseline: fastavro.reader per file; gzip + astropy per cutout."""
    out = []
    for path in files:
        with open(path, "rb") as fh:
            for record in fastavro.reader(fh):
                planes = []
                for field in CUTOUT_FIELDS:
                    with fits.open(io.BytesIO(gzip.decompress(record[field]["stampData"]))) as hdul:
                        planes.append(hdul[0].data)
                out.append((record["candidate"], planes))
    return out


def same_as_plain(files: list[Path]) -> bool:
    """Whether our decode gives the plain loop's pixels (NaN/blank masked), masks and fields."""
    plain = plain_loop(files)
    ours = [a for d in AlertDecoder(1).decode(files) for a in d.alerts]
    if len(ours) != len(plain):
        return False
    for alert, (candidate, planes) in zip(ours, plain, strict=True):
        for c, data in enumerate(planes):
            data = data.astype(np.float32)
            bad = ~np.isfinite(data) | (np.abs(data) >= 1e30)
            if not (np.array_equal(alert.mask[c], bad) and np.array_equal(alert.pixels[c][~bad], data[~bad])):
                return False
        if alert.row["candid"] != candidate["candid"] or alert.row["magpsf"] != candidate["magpsf"]:
            return False
    return True


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1)


def decode_benchmark(files: list[Path], n_plain: int, repeats: int, workers: int) -> dict[str, Any]:
    """Alternating rounds of the plain loop and our decoder (1 and ``workers`` processes)."""
    names = ["plain_loop", "stampflow_1_process", f"stampflow_{workers}_processes"]
    rates: dict[str, list[float]] = {name: [] for name in names}
    with AlertDecoder(1) as serial, AlertDecoder(workers).start() as pooled:
        list(serial.decode(files[:50]))  # warm the schema cache
        list(pooled.decode(files[: 4 * 32]))
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = len(plain_loop(files[:n_plain]))
            rates["plain_loop"].append(_rate(n, time.perf_counter() - t0))
            for name, decoder in ((names[1], serial), (names[2], pooled)):
                t0 = time.perf_counter()
                n = sum(len(d.alerts) for d in decoder.decode(files))
                rates[name].append(_rate(n, time.perf_counter() - t0))
    ratios = {
        f"{name}_vs_plain": round(
            statistics.median(r / p for r, p in zip(rates[name], rates["plain_loop"], strict=True)), 2
        )
        for name in names[1:]
    }
    ours = ratios[f"{names[2]}_vs_plain"]
    return {
        "ours_vs_plain_loop": ours,
        "at_least_5x": ours >= 5,
        "alerts_per_s_best": {name: max(v) for name, v in rates.items()},
        "alerts_per_s_rounds": rates,
        "median_ratio_per_round": ratios,
        "n_files_ours": len(files),
        "n_files_plain": n_plain,
        "identical_to_plain_loop": same_as_plain(files[:97]),
    }


def ztf_scorer(folder: Path, device: str, seed: int) -> Scorer:
    """The ``ztf`` preset with seeded untrained weights, through a real checkpoint (save + safe load)."""
    from models.checkpoints import load_checkpoint, save_checkpoint
    from models.realbogus import RealBogusModel

    torch.manual_seed(seed)
    model = RealBogusModel("ztf").eval()
    card = {
        "task": "realbogus",
        "model_name": "stampflow-realbogus-ztf",
        "model_version": f"benchmark-untrained.s{seed}",
        "channels": list(CHANNELS),
        "stamp_shape": [63, 63],
        "threshold": 0.5,
        "data_config": {"fill": "zero", "keep_mask": "none"},
        **model.card_fields(),
    }
    module, card = load_checkpoint(save_checkpoint(model, folder / "model.ckpt", card), map_location=device)
    return Scorer(module, card, device)


def latency_benchmark(
    files: list[Path], scorer: Scorer, batch: int, batches: int, workers: int
) -> dict[str, Any]:
    """Decode + score of ``batches`` micro-batches of ``batch`` alerts (one file per alert)."""
    alert_scorer = AlertScorer(scorer)
    latencies, decode_s, score_s = [], [], []
    with AlertDecoder(workers).start() as decoder:
        warm = [a for d in decoder.decode(files[:64]) for a in d.alerts]
        alert_scorer.columns(warm, utc_datetime())
        for k in range(batches):
            chunk = [files[(k * batch + i) % len(files)] for i in range(batch)]
            t0 = time.perf_counter()
            alerts = [a for d in decoder.decode(chunk) for a in d.alerts]
            t1 = time.perf_counter()
            cols, rejects = alert_scorer.columns(alerts, utc_datetime())
            t2 = time.perf_counter()
            assert len(cols["rb"]) == batch and not rejects
            latencies.append(t2 - t0)
            decode_s.append(t1 - t0)
            score_s.append(t2 - t1)
    return {
        "batch_alerts": batch,
        "n_batches": batches,
        "alerts_per_s": round(batch * batches / sum(latencies), 1),
        "latency_s_p50": round(float(np.percentile(latencies, 50)), 3),
        "latency_s_p99": round(float(np.percentile(latencies, 99)), 3),
        "latency_s_max": round(max(latencies), 3),
        "decode_s_median": round(statistics.median(decode_s), 3),
        "score_s_median": round(statistics.median(score_s), 3),
        "latencies_s": [round(v, 3) for v in latencies],
    }


def unique_packets(n: int) -> list[bytes]:
    """``n`` Avro packets cycling through the real ones, each re-encoded with its own ``candid`` (1..n)."""
    records = []
    for path in sample_packets():
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            records.append((reader.writer_schema, next(iter(reader))))
    out = []
    for i in range(n):
        schema, record = records[i % len(records)]
        record = {**record, "candid": i + 1, "candidate": {**record["candidate"], "candid": i + 1}}
        buffer = io.BytesIO()
        fastavro.writer(buffer, schema, [record])
        out.append(buffer.getvalue())
    return out


def kafka_rate(packets: list[bytes], alert_scorer: Any, batch: int, out: Path) -> dict[str, Any]:
    """Micro-batches from a mock Kafka cluster (4 partitions) scored into ``out``."""
    import confluent_kafka

    from pipeline.alerts import KafkaSettings, score_kafka_stream

    producer = confluent_kafka.Producer({"test.mock.num.brokers": 1, "log_level": 3})
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in producer.list_topics(timeout=10).brokers.values())
    for i, value in enumerate(packets):
        producer.produce("alerts", value, key=str(i).encode())
    producer.flush(30)
    settings = KafkaSettings(
        bootstrap, ["alerts"], batch_messages=batch, batch_timeout_s=1.0, idle_exit_s=1.0
    )
    report = score_kafka_stream(settings, alert_scorer, out)
    return {
        "alerts_per_s_per_core": report.alerts_per_s,
        "n_scored": report.n_scored,
        "batches": report.batches,
        "batch_messages": batch,
        "busy_s": report.busy_seconds,
        "run_s_with_group_join_and_idle": report.seconds,
    }


def spark_rate(n: int, repeats: int = 3) -> dict[str, Any]:
    """benchmarks/spark_udf.py (``local[1]``) in a subprocess on ``n`` alerts, best of ``repeats`` passes
    after its warm-up: its alerts/s per core, or why it did not run."""
    import subprocess
    import sys

    script = str(REPO / "benchmarks" / "spark_udf.py")
    cmd = [sys.executable, script, "--n", str(n), "--repeats", str(repeats)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"skipped": f"benchmarks/spark_udf.py exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    spark = json.loads(done.stdout[done.stdout.index("{") :])
    return {"alerts_per_s_per_core": spark["spark_udf_alerts_per_s_per_core"], **spark}


def per_core_benchmark(n: int, batch: int, spark_n: int = 2000) -> dict[str, Any]:
    """Decode + score alerts/s on one core, folder mode beside Kafka micro-batches and the Spark UDF."""
    from models.alert_scoring import load_alert_scorer
    from models.pretrained import resolve_checkpoint
    from pipeline.alerts import score_alert_files

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ONNX Runtime session takes torch's thread count
    scorer = load_alert_scorer(str(resolve_checkpoint("ztf_fast")))
    packets = unique_packets(n)
    result: dict[str, Any] = {"model": "ztf_fast (shipped)", "n_alerts": n, "threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        files = [tmp / "in" / f"{i:06d}.avro" for i in range(n)]
        for path, data in zip(files, packets, strict=True):
            path.write_bytes(data)
        score_alert_files(files[:20], scorer, tmp / "warm", workers=1)
        folder = score_alert_files(files, scorer, tmp / "folder", batch_alerts=batch, workers=1)
        result["folder"] = {
            "alerts_per_s_per_core": round(folder.n_scored / folder.seconds, 1),
            "n_scored": folder.n_scored,
        }
        try:
            result["kafka"] = kafka_rate(packets, AlertScorer(scorer), batch, tmp / "kafka")
        except ImportError as err:
            result["kafka"] = {
                "skipped": f"confluent-kafka is not installed ({err}): pip install 'stampflow[kafka]'"
            }
    torch.set_num_threads(threads)
    result["spark_udf"] = spark_rate(spark_n)  # not bound by the mock broker's 5 MB per partition
    return result


def run(
    n: int = 3000,
    n_plain: int = 1000,
    repeats: int = 3,
    workers: int = 0,
    batch: int = 1000,
    batches: int = 5,
    device: str = "cpu",
    threads: int = 0,
    seed: int = 0,
    skip_latency: bool = False,
    per_core_n: int = 200,
    spark_n: int = 2000,
) -> dict[str, Any]:
    """Measure and return the figures (see the module docstring); ``threads`` > 0 sets torch's threads;
    ``workers`` 0 is one decoding process per usable CPU; ``per_core_n`` 0 skips the per-core modes."""
    workers = workers or usable_cpus()
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    result: dict[str, Any] = {
        "benchmark": "alerts",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in os.getloadavg()],
            "inflate": alert_cutouts._inflate_lib.__name__,
            "torch_threads": torch.get_num_threads(),
            "device": device,
        },
        "inputs": f"{n} files cycling through the {len(sample_packets())} real ZTF packets of tests/data/ztf_alerts",
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "alerts"
        folder.mkdir()
        files = make_inputs(folder, n)
        result["decode"] = decode_benchmark(files, min(n_plain, n), repeats, workers)
        if not skip_latency:
            scorer = ztf_scorer(tmp, device, seed)
            result["decode_and_score"] = latency_benchmark(files, scorer, batch, batches, workers)
            result["decode_and_score"]["model"] = (
                "ztf preset (models/realbogus.py), 3x63x63, 4.3 M parameters"
            )
    if per_core_n:
        result["decode_and_score_per_core"] = per_core_benchmark(per_core_n, batch, spark_n)
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="alert files decoded by our reader per round")
    parser.add_argument("--n-plain", type=int, default=1000, help="files read by the plain loop per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=0, help="decoding processes (default 0: one per usable CPU)"
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-latency", action="store_true", help="only the decode figures")
    parser.add_argument(
        "--per-core-n", type=int, default=200, help="alerts of the per-core folder/Kafka/Spark rows (<= 250)"
    )
    parser.add_argument(
        "--spark-n",
        type=int,
        default=2000,
        help="alerts of the per-core Spark UDF row (its start-up excluded)",
    )
    parser.add_argument("--skip-per-core", action="store_true", help="no folder/Kafka/Spark per-core rows")
    args = parser.parse_args(argv)
    result = run(
        args.n,
        args.n_plain,
        args.repeats,
        args.workers,
        args.batch,
        args.batches,
        args.device,
        args.threads,
        args.seed,
        args.skip_latency,
        0 if args.skip_per_core else args.per_core_n,
        args.spark_n,
    )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
