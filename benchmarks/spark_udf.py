"""Cost per core of stampflow's Spark ``pandas_udf`` (:func:`models.alert_scoring.alert_score_udf`): alerts/s of
decode + score with the shipped ``ztf_fast`` model in a local Spark session with one core (``local[1]``, one
Python worker, one torch thread), beside the same frames scored by
:func:`models.alert_scoring.score_alerts` in this process (one torch thread: the UDF's work without Spark).

Inputs are real: ``--n`` rows cycling through the 97 real ZTF packets of ``tests/data/ztf_alerts`` (read by
fastavro into rows with Fink's columns); each copy gets its own ``candid`` so none is scored as a duplicate.
The rows are cached in Spark and counted before timing; a warm-up batch loads the model in the worker.
Spark start-up and the warm-up are reported apart, not in alerts/s.

Usage: python benchmarks/spark_udf.py [--n 2000] [--repeats 3] [--batch 10000]   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def real_rows(n: int) -> list[dict]:
    """``n`` rows cycling through the 97 real ZTF packets, each with a distinct ``candid``."""
    from data_catalogs.alert_schemas import CUTOUT_FIELDS
    from tests.conftest import read_alert
    from tests.pipeline.alerts.alert_helpers import ztf_sample_files

    keep = ("objectId", "candid", "candidate", *CUTOUT_FIELDS)
    records = [{k: rec[k] for k in keep} for rec in map(read_alert, ztf_sample_files())]
    rows = []
    for i in range(n):
        rec = records[i % len(records)]
        rows.append({**rec, "candid": i + 1, "candidate": {**rec["candidate"], "candid": i + 1}})
    return rows


def spark_session(arrow_batch: int):
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    return (
        SparkSession.builder.master("local[1]")
        .appName("stampflow-bench-spark-udf")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        .config("spark.sql.pyspark.inferNestedDictAsStruct.enabled", "true")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")  # one torch thread in the Python worker
        .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(sys.path))
        .getOrCreate()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="rows (alerts) per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (median reported)")
    parser.add_argument("--batch", type=int, default=10000, help="Arrow records per UDF batch")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from data_catalogs.alert_schemas import CUTOUT_FIELDS
    from models.alert_scoring import alert_score_udf, score_alerts
    from models.pretrained import resolve_checkpoint

    torch.set_num_threads(1)
    model = str(resolve_checkpoint("ztf_fast"))
    rows = real_rows(args.n)
    t0 = time.perf_counter()
    spark = spark_session(args.batch)
    start_s = time.perf_counter() - t0
    frame = spark.createDataFrame(rows).cache()
    assert frame.count() == args.n
    udf = alert_score_udf(model)
    cutouts = [f"{name}.stampData" for name in CUTOUT_FIELDS]
    scored = frame.select(udf("objectId", "candid", "candidate", *cutouts).alias("s")).select("s.*")
    t0 = time.perf_counter()
    frame.limit(10).select(udf("objectId", "candid", "candidate", *cutouts)).write.format("noop").mode(
        "overwrite"
    ).save()
    warmup_s = time.perf_counter() - t0
    spark_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        scored.write.format("noop").mode("overwrite").save()
        spark_s.append(time.perf_counter() - t0)
    n_scored = scored.filter("reason = ''").count()
    spark.stop()

    pandas_frame = pd.DataFrame(rows)
    score_alerts(pandas_frame.head(10), model)  # load the model once, as the worker did
    local_s = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = score_alerts(pandas_frame, model)
        local_s.append(time.perf_counter() - t0)
    spark_med, local_med = sorted(spark_s)[len(spark_s) // 2], sorted(local_s)[len(local_s) // 2]
    result = {
        "n_alerts": args.n,
        "n_scored_spark": int(n_scored),
        "n_scored_in_process": int((out["reason"] == "").sum()),
        "spark_master": "local[1]",
        "torch_threads": 1,
        "spark_start_s": round(start_s, 2),
        "spark_warmup_s": round(warmup_s, 2),
        "spark_udf_s": [round(s, 3) for s in spark_s],
        "spark_udf_alerts_per_s_per_core": round(args.n / spark_med, 1),
        "in_process_alerts_per_s_per_core": round(args.n / local_med, 1),
        "spark_overhead_fraction": round(1 - local_med / spark_med, 3),
        "load_avg_1min_before": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
