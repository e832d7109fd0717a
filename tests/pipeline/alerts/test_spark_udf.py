"""Stampflow's Spark ``pandas_udf`` (``models.alert_scoring.alert_score_udf``) in a real local Spark session,
with the shipped ``ztf_fast`` model, on real ZTF packets: the scores equal ``stampflow alerts score`` on the
same packets (same candids, ``rb`` within 1e-6), both for rows read from the Avro packets and for Fink's
Parquet alert layout read by ``spark.read.parquet``.

pyspark is a test dependency (the ``test`` extra): a missing pyspark fails here with its reason, never skips.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from data_catalogs.alert_schemas import CUTOUT_FIELDS
from flows.cli import main as cli_main
from models.alert_scoring import alert_score_udf
from models.pretrained import resolve_checkpoint
from tests.conftest import ZTF_ALERTS, read_alert

#: The real ZTF packets of ztf-avro-alert (normal and CCD-edge stamps, NaN and blank pixels).
AVRO_PACKETS = sorted((ZTF_ALERTS / "A_ztf-avro-alert").glob("*.avro"))
#: Fink's Parquet alert layout: two real ZTF alerts from fink-filters and fink-science tests.
FINK_PARQUET = [
    ZTF_ALERTS / "F_formats" / "fink-filters_841e040a_dwarf_agn.parquet",
    ZTF_ALERTS / "F_formats" / "fink-science_2439886a_superluminous_test_alerts_row18.parquet",
]
CUTOUTS = [f"{name}.stampData" for name in CUTOUT_FIELDS]


@pytest.fixture(scope="module")
def spark():
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:  # CI installs the test extra, which has pyspark: fail loudly, never skip
        pytest.fail(f"pyspark is not installed ({err}); install the test extra: pip install -e '.[test]'")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors' Python workers: this venv
    session = (
        SparkSession.builder.master("local[2]")
        .appName("stampflow-test-spark-udf")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.pyspark.inferNestedDictAsStruct.enabled", "true")
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")  # Fink's timestamp[ns] column
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .config("spark.ui.enabled", "false")
        .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(sys.path))
        .getOrCreate()
    )
    yield session
    session.stop()


def _cli_scores(paths, tmp_path) -> pd.DataFrame:
    """``stampflow alerts score FOLDER --model ztf_fast``'s catalog of ``paths`` (copied into a folder)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in paths:
        shutil.copy(path, inbox)
    out = tmp_path / "out"
    assert cli_main(["alerts", "score", str(inbox), "--model", "ztf_fast", "--out", str(out)]) == 0
    return pd.read_parquet(out / "scored.parquet")


def _udf_scores(frame) -> pd.DataFrame:
    """The UDF's struct, one row per alert, collected to pandas."""
    udf = alert_score_udf(str(resolve_checkpoint("ztf_fast")))
    scored = frame.select(udf("objectId", "candid", "candidate", *CUTOUTS).alias("s")).select("s.*")
    # an unscored alert's rb is a Spark null (not NaN): as many nulls as rows with a reason
    assert scored.filter("rb IS NULL").count() == scored.filter("reason != ''").count()
    return scored.toPandas()


def _assert_equal_scores(udf: pd.DataFrame, cli: pd.DataFrame, n: int) -> None:
    assert len(udf) == len(cli) == n
    assert (udf["reason"] == "").all() and udf["rb"].notna().all()
    udf, cli = udf.set_index("candid").sort_index(), cli.set_index("candid").sort_index()
    assert list(udf.index) == list(cli.index)
    assert list(udf["objectId"]) == list(cli["objectId"])
    np.testing.assert_allclose(udf["rb"], cli["rb"], rtol=0, atol=1e-6)
    assert list(udf["label"]) == list(cli["label"])
    assert udf["rb"].std() > 0  # real, different alerts: not one constant score


@pytest.mark.prefect
def test_udf_on_rows_of_avro_packets_equals_the_cli(spark, tmp_path):
    records = [
        {k: rec[k] for k in ("objectId", "candid", "candidate", *CUTOUT_FIELDS)}
        for rec in map(read_alert, AVRO_PACKETS)
    ]
    # a packet that lost its template: kept, with its reason and a null score, never dropped
    records.append({**records[0], "candid": 1, "cutoutTemplate": None})
    scores = _udf_scores(spark.createDataFrame(records))
    broken = scores[scores["candid"] == 1]
    assert list(broken["reason"]) == ["no_cutouts"] and broken["rb"].isna().all()
    _assert_equal_scores(
        scores[scores["candid"] != 1], _cli_scores(AVRO_PACKETS, tmp_path), len(AVRO_PACKETS)
    )


@pytest.mark.prefect
def test_udf_on_fink_parquet_equals_the_cli(spark, tmp_path):
    # one read per file: the two files' candidate structs differ in integer widths (fid int32 / int64)
    udf = pd.concat([_udf_scores(spark.read.parquet(str(p))) for p in FINK_PARQUET], ignore_index=True)
    _assert_equal_scores(udf, _cli_scores(FINK_PARQUET, tmp_path), 2)
