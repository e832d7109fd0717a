"""One decode, N models: two real checkpoints on real packets in one run give the scores of two single-model
runs, with each packet decoded once (counted by the run's report), one broker record per alert and model,
and the first model's columns under their usual names."""

from __future__ import annotations

import json
import math

import fastavro
import numpy as np
import pandas as pd
import pytest

from data_catalogs.alert_schemas import CUTOUT_FIELDS
from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint
from pipeline.alerts import AlertScorer, score_alert_files
from pipeline.scoring import Scorer
from tests.pipeline.alerts.alert_helpers import rubin_sample_files, write_ztf_checkpoint, ztf_sample_files

FILES = [*ztf_sample_files()[:20], *rubin_sample_files()[:4]]
BATCH = 16


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    first = write_ztf_checkpoint(folder / "a.ckpt", seed=0)
    second = write_ztf_checkpoint(folder / "b.ckpt", seed=1, model_name="second-rb")
    return first, second


def _scorer(path) -> Scorer:
    module, card = load_checkpoint(path)
    return Scorer(module, card)


@pytest.fixture(scope="module")
def runs(ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    a, b = (_scorer(p) for p in ckpts)
    both = score_alert_files(FILES, [a, b], out / "both", batch_alerts=BATCH)
    only_a = score_alert_files(FILES, a, out / "a", batch_alerts=BATCH)
    only_b = score_alert_files(FILES, b, out / "b", batch_alerts=BATCH)
    return out, both, only_a, only_b


def test_two_models_score_as_two_single_runs(runs):
    out, both, _, _ = runs
    table = pd.read_parquet(out / "both" / "scored.parquet").set_index("source")
    a = pd.read_parquet(out / "a" / "scored.parquet").set_index("source")
    b = pd.read_parquet(out / "b" / "scored.parquet").set_index("source")
    assert list(table.index) == list(a.index) == list(b.index) and len(table) == both.n_scored > 0
    for name in ("rb", "p_bogus", "p_real"):
        np.testing.assert_allclose(table[name], a[name], rtol=0, atol=1e-6)
        np.testing.assert_allclose(table[f"{name}_second_rb"], b[name], rtol=0, atol=1e-6)
    assert (table["label"] == a["label"]).all() and (table["label_second_rb"] == b["label"]).all()
    assert (table["rbversion_second_rb"] == "0.0.0+untrained.s1").all()
    assert (table["model_name"] == "stampflow-realbogus-ztf").all()  # the first model's, as with one model
    assert not np.allclose(table["rb"], table["rb_second_rb"])  # two different models
    # quality flags: once, equal to a single run's
    assert (table["quality_flags"] == a["quality_flags"]).all()


def test_each_packet_is_decoded_once(runs):
    _, both, only_a, only_b = runs
    n_batches = math.ceil(both.n_scored / BATCH)
    assert both.n_decoded == both.n_inputs == only_a.n_decoded == only_b.n_decoded == len(FILES)
    assert both.n_files == only_a.n_files == len(FILES)
    assert both.n_batches == only_a.n_batches == n_batches
    assert both.model_calls == {"stampflow_realbogus_ztf": n_batches, "second_rb": n_batches}
    assert [m["suffix"] for m in both.models] == ["", "second_rb"]


def test_one_broker_record_per_alert_and_model(runs):
    out, both, _, _ = runs
    with open(out / "both" / "classifications.avro", "rb") as fh:
        records = list(fastavro.reader(fh))
    assert len(records) == 2 * both.n_scored
    by_model = pd.DataFrame(
        {
            "name": [r["classifier_name"] for r in records],
            "candid": [r["candid"] for r in records],
            "p_real": [r["classifications"][1]["probability"] for r in records],
        }
    )
    assert by_model["name"].value_counts().to_dict() == {
        "stampflow-realbogus-ztf": both.n_scored,
        "second-rb": both.n_scored,
    }
    b = pd.read_parquet(out / "b" / "scored.parquet")
    second = by_model[by_model["name"] == "second-rb"]
    np.testing.assert_allclose(second["p_real"], b["p_real"], atol=1e-6)


def test_cli_repeated_model(ckpts, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["alerts", "score", *map(str, FILES[:3]), "--out", str(out), "--json"]
    assert cli_main([*args, "--model", str(ckpts[0]), "--model", str(ckpts[1])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in report["models"]] == ["stampflow-realbogus-ztf", "second-rb"]
    assert report["counts"] == {
        "inputs": 3,
        "scored": 3,
        "flagged": report["n_flagged"],
        "rejected": {},
        "duplicates": 0,
    }
    assert {"rb", "rb_second_rb"} <= set(pd.read_parquet(out / "scored.parquet").columns)


def test_models_of_different_stamp_sizes_are_refused(ckpts, tmp_path):
    other = write_ztf_checkpoint(tmp_path / "small.ckpt", stamp_shape=[31, 31])
    with pytest.raises(ValueError, match="different stamp sizes"):
        AlertScorer([_scorer(ckpts[0]), _scorer(other)])


def test_frame_of_packets_with_two_models_as_spark_gets_it(ckpts, runs):
    """``models.alert_scoring.score_alerts`` (what a Spark pandas UDF calls) on Fink-style rows of real ZTF
    packets with both models: the scores and quality flags of the file runs."""
    from models.alert_scoring import score_alerts

    out, _, _, _ = runs
    table = pd.read_parquet(out / "both" / "scored.parquet")
    ztf = table[table["survey"] == "ztf"].sort_values("quality_flags", ascending=False, kind="stable").head(5)
    assert (ztf["quality_flags"] > 0).any()  # flagged alerts among them (CCD edge, NaN...)
    rows = []
    for source in ztf["source"]:
        with open(source.split("#")[0], "rb") as fh:
            rec = next(fastavro.reader(fh))
        rows.append({k: rec[k] for k in ("objectId", "candid", "candidate", *CUTOUT_FIELDS)})
    result = score_alerts(pd.DataFrame(rows), [str(p) for p in ckpts])
    assert (result["reason"] == "").all() and list(result["candid"]) == list(ztf["candid"])
    for name in ("rb", "rb_second_rb", "p_real_second_rb", "nan_fraction"):
        np.testing.assert_allclose(result[name], ztf[name], rtol=0, atol=1e-6)
    assert list(result["quality_flags"]) == list(ztf["quality_flags"])
    assert list(result["label_second_rb"]) == list(ztf["label_second_rb"])
