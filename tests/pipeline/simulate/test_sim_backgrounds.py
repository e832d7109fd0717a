"""Training candidates on real ZTF backgrounds (``simulate transients --backgrounds``): injected point sources
and artefacts in real alert triplets, labelled alerts, mixing with the simulator, byte reproducibility, the
CLI and ``ingest-labelled``. Seven real packets of tests/data/ztf_alerts (edge-cut stamps, NaN, isdiffpos t
and f) with explicit labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from pipeline.alerts import conform, read_alerts
from pipeline.simulate.transients import (
    BACKGROUND_MIX,
    SURVEYS,
    background_mix,
    background_triplet,
    load_backgrounds,
    read_background_labels,
    simulate_transients,
)
from pipeline.simulate.transients.scene import unit_psf
from pipeline.store import open_store, sha256_file

ZTF = SURVEYS["ztf"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, ztf_alert_paths):
    """The seven packets and a labels CSV: the first four real, the rest bogus."""
    alerts, rejects = read_alerts(ztf_alert_paths)
    assert len(alerts) == 7 and not rejects
    candids = sorted(int(a.row["candid"]) for a in alerts)
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    pd.DataFrame({"candid": candids, "real": [1, 1, 1, 1, 0, 0, 0]}).to_csv(path, index=False)
    return ztf_alert_paths, path, {int(a.row["candid"]): a for a in alerts}


@pytest.fixture(scope="module")
def backgrounds(labelled):
    paths, labels_csv, _ = labelled
    return load_backgrounds(paths, labels_csv)


def _packet_stamps(alert):
    """The packet's own (63, 63) science, template, difference (its orientation) and mask."""
    pixels, mask = conform(alert.pixels, alert.mask, (63, 63), alert.row, alert.source)
    return pixels.astype(np.float64), mask


def test_backgrounds_are_read_with_labels_hashes_and_seeing(backgrounds, labelled):
    paths, labels_csv, alerts = labelled
    assert [bg.candid for bg in backgrounds.backgrounds] == sorted(alerts)
    assert backgrounds.inputs == 7 and not backgrounds.rejects and backgrounds.duplicates == 0
    assert {bg.label_source for bg in backgrounds.backgrounds} == {"labels"}
    truth = read_background_labels(labels_csv)
    assert all(bg.label == truth[bg.candid] for bg in backgrounds.backgrounds)
    assert backgrounds.files[str(paths[0])] == sha256_file(paths[0])
    assert backgrounds.files[str(labels_csv)] == sha256_file(labels_csv)
    widths = [bg.fwhm_science for bg in backgrounds.backgrounds]
    assert all(1.0 < w < 6.0 for w in widths)  # Moffat FWHM, arcsec
    edge = [bg for bg in backgrounds.backgrounds if bg.mask.any()]
    assert edge, "the CCD-edge packets keep their masked pixels"


def test_injected_point_is_added_to_science_and_difference_exactly(backgrounds, labelled):
    alerts = labelled[2]
    mix = background_mix(backgrounds)
    seen_signs = set()
    for index in range(12):
        triplet = background_triplet(ZTF, backgrounds, mix, seed=5, index=index, kind="injected_point")
        truth = triplet.truth
        assert truth["real"] == 1 and truth["background_label"] == 1
        alert = alerts[int(truth["background"])]
        pixels, mask = _packet_stamps(alert)
        sign = -1 if alert.row["diff_sign"] < 0 else 1
        seen_signs.add(sign)
        psf = abs(truth["flux"]) * unit_psf(ZTF, truth["fwhm_science"], 63, truth["dx"], truth["dy"])
        assert abs(truth["dx"]) <= 0.5 and abs(truth["dy"]) <= 0.5
        science = triplet.stamps["SCIENCE"].astype(np.float64)
        difference = triplet.stamps["DIFFERENCE"].astype(np.float64)
        good = ~mask[2]
        assert np.isnan(difference[~good]).all()  # masked areas stay masked, as NaN
        assert truth["isdiffpos"] == ("t" if sign > 0 else "f")
        # in the alert's own orientation the difference gains +P, the science +P (fading: -P)
        tol = 1e-6 * np.abs(pixels[2]).max() + 1e-3
        np.testing.assert_allclose((difference - pixels[2])[good], psf[good], atol=tol)
        np.testing.assert_allclose((science - pixels[0])[good], sign * psf[good], atol=tol)
        np.testing.assert_array_equal(triplet.stamps["TEMPLATE"][good], pixels[1][good].astype(np.float32))
        # away from the source (> 15 px) the real noise is left as it was: changes << its sigma
        yy, xx = np.mgrid[:63, :63] - 31
        far = good & (np.hypot(xx, yy) > 15)
        assert far.sum() > 1000
        noise = np.std(pixels[2][far])
        assert np.abs(difference - pixels[2])[far].max() < 0.01 * noise
        assert truth["flux"] * sign > 0 and ZTF.snr_range[0] <= abs(truth["snr"]) + 1e-6
    assert seen_signs == {1, -1}  # isdiffpos t and f backgrounds both used


@pytest.mark.parametrize("kind", [k for k in BACKGROUND_MIX if k != "injected_point"])
def test_every_kind_has_its_label_and_a_background_of_that_class(backgrounds, labelled, kind):
    alerts = labelled[2]
    mix = background_mix(backgrounds)
    triplet = background_triplet(ZTF, backgrounds, mix, seed=1, index=3, kind=kind)
    truth = triplet.truth
    real = int(kind in ("injected_point", "labelled_real"))
    assert truth["real"] == real and truth["background_label"] == real and truth["injected_kind"] == kind
    pixels, mask = _packet_stamps(alerts[int(truth["background"])])
    science = triplet.stamps["SCIENCE"]
    if kind.startswith("labelled"):  # the alert itself
        np.testing.assert_array_equal(science[~mask[0]], pixels[0][~mask[0]].astype(np.float32))
    elif kind == "edge_nan":
        assert np.isnan(science).sum() > mask[0].sum()  # a new masked block near the centre
    else:
        assert not np.array_equal(science[~mask[0]], pixels[0][~mask[0]].astype(np.float32))


@pytest.mark.prefect
def test_mixed_set_is_byte_reproducible_and_ingests(tmp_path, labelled, capsys):
    paths, labels_csv, _ = labelled
    a, b = tmp_path / "a", tmp_path / "b"
    kwargs = {
        "survey": "ztf",
        "seed": 7,
        "backgrounds": paths,
        "labels_csv": labels_csv,
        "real_fraction": 0.5,
    }
    labels = simulate_transients(10, a, workers=1, chunk_size=10, **kwargs)
    simulate_transients(10, b, workers=2, chunk_size=5, **kwargs)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    on_bg = labels["background"].notna()
    assert on_bg.sum() == 5 and on_bg.tolist() == [i % 2 == 1 for i in range(10)]
    assert (labels.loc[~on_bg, "injected_kind"].isna()).all()
    meta = json.loads((a / "simulation.json").read_text())["backgrounds"]
    assert meta["files_sha256"][str(paths[0])] == sha256_file(paths[0])
    assert meta["inputs"] == meta["used"] == 7 and meta["real_fraction"] == 0.5
    out = tmp_path / "store.h5"
    assert main(["ingest-labelled", str(a), "--out", str(out)]) == 0
    assert "inputs=10 ingested=10 rejected=0" in capsys.readouterr().out
    with open_store(out) as store:
        ids = store.catalog()["object_id"].tolist()
        truth = labels.set_index("id")["real"]
        assert store.labels("real").tolist() == [int(truth[i]) for i in ids]


def test_backgrounds_need_ztf_and_both_classes(tmp_path, labelled):
    paths, _, _ = labelled
    with pytest.raises(ValueError, match="need --survey ztf"):
        simulate_transients(2, tmp_path / "h", survey="hits", backgrounds=paths, workers=1)
    only_real = tmp_path / "real.csv"
    candids = sorted(labelled[2])
    pd.DataFrame({"candid": candids, "real": [1] * 7}).to_csv(only_real, index=False)
    with pytest.raises(ValueError, match="bogus centre candidate"):
        simulate_transients(
            2, tmp_path / "z", survey="ztf", backgrounds=paths, labels_csv=only_real, workers=1
        )
    bad = tmp_path / "bad.csv"
    bad.write_text("candid,real\n12,2\n")
    with pytest.raises(ValueError, match="real 0 or 1"):
        read_background_labels(bad)


@pytest.mark.prefect
def test_simulate_transients_cli_with_backgrounds(tmp_path, labelled, capsys):
    paths = labelled[0]
    out = tmp_path / "sim"
    argv = ["simulate", "transients", "6", "--survey", "ztf", "--out", str(out), "--workers", "1", "-q"]
    folder = paths[0].parent
    rc = main([*argv, "--backgrounds", str(folder), "--real-fraction", "1", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["on_backgrounds"] == 6
    labels = pd.read_csv(out / "labels.csv", dtype={"background": str})
    assert labels["background"].str.fullmatch(r"\d+").all()
    assert set(labels["injected_kind"]) <= set(BACKGROUND_MIX) - {"labelled_real", "labelled_bogus"}
    assert set(labels["fwhm_source"]) <= {"measured", "exposure", "night", "default"}
