"""Quality flags of scored alerts on real ZTF and Rubin packets: columns beside the score (no alert dropped
for quality), computed on the batch as a per-alert recomputation from the decoded packets gives them, with
thresholds from a TOML config written into summary.json and the table meta; a bad config names file and key
(exit 2 on the command line)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from data_catalogs.alert_schemas import QUALITY_BITS, QUALITY_COLUMNS
from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint
from pipeline.alerts import (
    QualityConfigError,
    decode_alert_file,
    load_quality_config,
    score_alert_files,
)
from pipeline.scoring import Scorer
from tests.pipeline.alerts.alert_helpers import rubin_sample_files, write_ztf_checkpoint, ztf_sample_files

FILES = [*ztf_sample_files(), *rubin_sample_files()]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_ztf_checkpoint(tmp_path_factory.mktemp("model") / "model.ckpt")


@pytest.fixture(scope="module")
def scorer(ckpt):
    module, card = load_checkpoint(ckpt)
    return Scorer(module, card)


@pytest.fixture(scope="module")
def scored(scorer, tmp_path_factory):
    """Every real packet (97 ZTF, 10 Rubin), thresholds: the shipped defaults."""
    out = tmp_path_factory.mktemp("scored")
    report = score_alert_files(FILES, scorer, out, batch_alerts=32)
    return report, out, pd.read_parquet(out / "scored.parquet")


def test_flags_are_columns_and_nothing_is_dropped_for_quality(scored):
    report, out, table = scored
    # only the two Rubin stamps larger than 63x63 are refused (wrong_shape): flagged alerts are scored
    assert report.reject_reasons == {"wrong_shape": 2} and report.n_scored == len(table) == 105
    assert {*QUALITY_COLUMNS, "flag_masked", "n_masked"} <= set(table.columns)
    bits = sum(np.where(table[name], bit, 0) for name, bit in QUALITY_BITS.items())
    np.testing.assert_array_equal(table["quality_flags"], bits)
    assert report.n_flagged == int((table["quality_flags"] > 0).sum()) > 0
    assert report.flag_counts == {
        **{name: int(table[name].sum()) for name in QUALITY_BITS},
        "any": report.n_flagged,
    }
    # the three ZTF stamps cut by the CCD edge (41x63, 45x63, 63x53) and no Rubin stamp, whatever its size
    edge = table[table["flag_edge"]]
    assert len(edge) == 3 and set(edge["survey"]) == {"ztf"}
    assert ((edge["cutout_height"] < 63) | (edge["cutout_width"] < 63)).all()
    assert not table.loc[table["survey"] == "rubin", "flag_edge"].any()
    assert (table["flag_nbad"] == (table["nbad"] > 0)).all() and table["flag_nbad"].any()
    meta = Table.read(out / "scored.parquet").meta
    assert meta["quality_thresholds"]["nbad"] == {"max": 0}
    assert Table.read(out / "scored.parquet")["nan_fraction"].description.startswith("Fraction of the pixels")


def test_batch_flags_equal_a_per_alert_recomputation(scored):
    """nan_fraction from the mask of each packet as received (padding never counts) and core_peak from its
    science stamp's central box, one alert at a time."""
    _, _, table = scored
    by_source = table.set_index("source")
    checked = 0
    for path in FILES:
        for alert in decode_alert_file(path).alerts:
            if alert.source not in by_source.index:
                continue
            row = by_source.loc[alert.source]
            assert row["nan_fraction"] == pytest.approx(alert.mask.mean(), abs=1e-6)
            h, w = alert.pixels.shape[1:]
            if (h, w) == (63, 63):  # as received = as scored: the candidate at the centre pixel (31, 31)
                box = np.where(alert.mask[0, 29:34, 29:34], -np.inf, alert.pixels[0, 29:34, 29:34])
                assert row["core_peak"] == pytest.approx(box.max(), rel=1e-6)
            checked += 1
    assert checked == 105


def test_thresholds_from_a_config_file(scorer, scored, tmp_path):
    _, _, default = scored
    config = tmp_path / "quality.toml"
    config.write_text(
        "[saturation]\nztf = 1000.0\nrubin = 2000.0\n\n[nbad]\nmax = 5\n\n[nan]\nmax_fraction = 0.5\n"
    )
    out = tmp_path / "out"
    report = score_alert_files(FILES, scorer, out, quality=load_quality_config(config), batch_alerts=32)
    table = pd.read_parquet(out / "scored.parquet")
    level = table["survey"].map({"ztf": 1000.0, "rubin": 2000.0})
    expected = table["core_peak"] >= level
    assert 0 < expected.sum() < len(table) and (table["flag_saturated_core"] == expected).all()
    assert not table["flag_nbad"].any() and not table["flag_saturated_core"].equals(
        default["flag_saturated_core"]
    )
    assert (table["flag_nan"] == (table["nan_fraction"] > 0.5)).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quality_thresholds"]["saturation"] == {
        "core_half_width": 2,
        "ztf": 1000.0,
        "rubin": 2000.0,
    }
    assert summary["quality_thresholds"]["masked"] == {"max_pixels": 0}  # a key left out keeps the default
    assert summary["quality_thresholds"]["source"][-1] == str(config)
    assert report.n_scored == 105  # thresholds change flags, never what is scored


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[nan]\nmax_fraction = 2.0\n", "nan.max_fraction"),
        ("[nbad]\nmax = 'zero'\n", "nbad.max"),
        ("[nbad]\nlimit = 3\n", "nbad.limit"),
        ("[saturation]\nhsc = 100.0\n", "saturation.hsc"),
        ("[stamps]\nsize = 3\n", "[stamps]"),
        ("[nan\nmax_fraction = 0.1\n", "not valid TOML"),
    ],
)
def test_invalid_config_names_the_file_and_key(tmp_path, text, named):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(QualityConfigError) as err:
        load_quality_config(config)
    assert str(config) in str(err.value) and named in str(err.value)


def test_cli_invalid_config_exits_2(ckpt, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[masked]\nmax_pixels = -1\n")
    args = ["alerts", "score", str(FILES[0]), "--model", str(ckpt), "--out", str(tmp_path / "out")]
    assert cli_main([*args, "--quality-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        str(config) in err and "masked.max_pixels" in err and not (tmp_path / "out" / "summary.json").exists()
    )
    assert cli_main([*args, "--quality-config", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_packets_own_saturation_flag_is_used(scorer, tmp_path):
    """A real Rubin packet whose diaSource says its centre is saturated (pixelFlags_saturatedCenter set in
    a copy; no level is configured for Rubin) is flagged; the packet as sent is not."""
    import fastavro

    path = rubin_sample_files()[0]
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        schema, records = reader.writer_schema, list(reader)
    records[0]["diaSource"]["pixelFlags_saturatedCenter"] = True
    records[0]["diaSourceId"] += 1  # another alert, not a duplicate of the packet as sent
    records[0]["diaSource"]["diaSourceId"] += 1
    with open(tmp_path / "saturated.avro", "wb") as fh:
        fastavro.writer(fh, schema, records)
    report = score_alert_files([path, tmp_path / "saturated.avro"], scorer, tmp_path / "out")
    table = pd.read_parquet(tmp_path / "out" / "scored.parquet").sort_values("candid")
    assert report.n_scored == 2 and list(table["saturated_center"]) == [0, 1]
    assert list(table["flag_saturated_core"]) == [False, True]
    assert list(table["quality_flags"] & QUALITY_BITS["flag_saturated_core"]) == [0, 8]
