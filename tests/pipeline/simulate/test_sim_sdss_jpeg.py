"""The ``sdss-jpeg`` galaxy style: Kaggle-like JPEGs that ingest like the real ones, seeded, and whose sky
looks like the real Galaxy Zoo 2 images' (numbers from ``benchmarks/galaxy_realism.py`` on the real dev set:
sky R, G, B 4.5, 4.5, 2.4 and noise 3.5, 3.3, 2.8 in 8-bit units after the dieleman2015 frame)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, tree_violations
from pipeline.io import read_image
from pipeline.prep.frame import IngestFrame
from pipeline.simulate.galaxies import simulate_galaxies
from pipeline.simulate.galaxies.sdss_jpeg import petro_r90

N = 4


@pytest.fixture(scope="module")
def sdss_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdss") / "sim"
    simulate_galaxies(N, out, seed=7, workers=1, style="sdss-jpeg")
    return out


def test_same_seed_same_bytes_and_files_are_424_px_rgb_jpegs(sdss_set, tmp_path):
    again = tmp_path / "again"
    simulate_galaxies(N, again, seed=7, workers=1, style="sdss-jpeg")
    names = sorted(p.name for p in (sdss_set / "images").iterdir())
    assert names == [f"{100000 + i}.jpg" for i in range(N)]
    for name in names:
        assert (sdss_set / "images" / name).read_bytes() == (again / "images" / name).read_bytes()
        with Image.open(sdss_set / "images" / name) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (424, 424))
    for table in ("training_solutions.csv", "truth.csv"):
        assert (sdss_set / table).read_bytes() == (again / table).read_bytes()
    meta = json.loads((sdss_set / "simulation.json").read_text())
    assert meta["style"] == "sdss-jpeg" and meta["sdss_jpeg"]["quality"] == 75


def test_labels_follow_the_tree_and_truth_records_the_image_scale(sdss_set):
    solutions = pd.read_csv(sdss_set / "training_solutions.csv")
    assert list(solutions.columns) == ["GalaxyID", *ANSWER_COLUMNS]
    assert not any(tree_violations(solutions[list(ANSWER_COLUMNS)].to_numpy()))
    truth = pd.read_csv(sdss_set / "truth.csv")
    # GZ2: 0.024 x petroR90 arcsec/px, petroR90 >= 3"
    assert np.allclose(truth["image_scale"], 0.024 * truth["petro_r90"])
    assert (truth["petro_r90"] >= 3.0).all()


def test_ingests_through_the_galaxy_zoo_reader_with_no_rejects(sdss_set, tmp_path):
    from pipeline.ingest import ingest_galaxy_zoo

    report = ingest_galaxy_zoo(sdss_set / "training_solutions.csv", sdss_set / "images", tmp_path / "gz.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (N, N, 0), report.reject_reasons


def test_sky_level_and_noise_after_the_frame_are_in_the_real_images_range(sdss_set):
    """Medians over the images (a neighbour on one image's border raises its own). The FITS style's
    --jpeg composites had sky 16-17 and noise 13-15 (8-bit): far outside."""
    frame = IngestFrame(297, 99)
    skies, noises = [], []
    for path in sorted((sdss_set / "images").glob("*.jpg")):
        framed = frame.apply(read_image(path).pixels) * 255.0
        border = np.concatenate([framed[:, :8].reshape(3, -1), framed[:, -8:].reshape(3, -1)], axis=1)
        sky = np.median(border, axis=1)
        skies.append(sky)
        noises.append(1.4826 * np.median(np.abs(border - sky[:, None]), axis=1))
        assert framed[:, 45:54, 45:54].mean() > sky.mean() + 20, path.name  # the galaxy is at the centre
    sky, noise = np.median(skies, axis=0), np.median(noises, axis=0)
    assert ((sky > 1.0) & (sky < 8.0)).all(), sky
    assert ((noise > 1.5) & (noise < 6.0)).all(), noise


def test_petro_r90_of_an_exponential_disk():
    """SDSS Petrosian R90 of a pure exponential is ~2.3 half-light radii (Blanton et al. 2001: 2.3)."""
    import galsim

    image = galsim.Exponential(half_light_radius=2.0).drawImage(nx=128, ny=128, scale=0.25).array
    assert petro_r90(image, 0.25) == pytest.approx(4.6, abs=0.3)
