"""Galaxy Zoo catalogs + JPEG/PNG/FITS images -> stamp store with labels, and rejects by galaxy id."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS
from data_catalogs.galaxy_zoo_schemas import GZ2_ANSWER_STEMS
from data_catalogs.tables import CatalogError
from flows.cli import main
from pipeline.ingest import GalaxyZooSource, ingest_source
from pipeline.io import StampRejected, read_image
from pipeline.store import open_store

DATA = Path(__file__).resolve().parents[3] / "tests" / "data" / "galaxy_zoo"
KAGGLE = DATA / "kaggle_training_solutions_sample.csv"
GZ2 = DATA / "gz2_synthetic.csv"
DECALS = DATA / "gz_decals_synthetic.csv"
KAGGLE_IDS = ["100008", "100143", "100134", "100123", "100445", "135453"]
SIZE = 48  # the real Kaggle images are 424x424; small ones keep the tests fast


def rgb(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def write_jpeg(path: Path, seed: int, size: int = SIZE) -> Path:
    Image.fromarray(rgb(seed, size)).save(path, "JPEG", quality=95)
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def kaggle_images(tmp_path) -> Path:
    """Images for the 6 Kaggle rows: 3 JPEG, 1 PNG, 1 missing, 1 truncated JPEG."""
    folder = tmp_path / "images_training_rev1"
    folder.mkdir()
    for seed, gid in enumerate(KAGGLE_IDS[:3]):
        write_jpeg(folder / f"{gid}.jpg", seed)
    Image.fromarray(rgb(3)).save(folder / f"{KAGGLE_IDS[3]}.png")
    # KAGGLE_IDS[4] has no image at all.
    good = write_jpeg(tmp_path / "whole.jpg", 5).read_bytes()
    (folder / f"{KAGGLE_IDS[5]}.jpg").write_bytes(good[: len(good) // 3])
    (folder / "999999.jpg").write_bytes(good)  # an image no catalog row names: ignored
    return folder


def test_ids_written_as_floats_find_their_images(tmp_path, kaggle_images):
    """Issue 18: a pandas round trip writes GalaxyID as 100008.0; the rows still find 100008.jpg."""
    table = pd.read_csv(KAGGLE)
    table["GalaxyID"] = table["GalaxyID"].astype(float)
    floats = tmp_path / "floats.csv"
    table.to_csv(floats, index=False)
    assert "100008.0," in floats.read_text()
    out = tmp_path / "run" / "stamps.h5"
    report = ingest_source(GalaxyZooSource(catalog=floats, images_dir=kaggle_images, format="kaggle"), out)
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (6, 4, 2)
    assert report.reject_reasons == {"missing_image": 1, "truncated_image": 1}
    with open_store(out) as store:
        assert store.catalog()["object_id"].tolist() == KAGGLE_IDS[:4]
        assert store.catalog()["GalaxyID"].tolist() == [int(i) for i in KAGGLE_IDS[:4]]


def test_image_io_reads_jpeg_png_and_rejects_garbage(tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(rgb(11)).save(png)
    img = read_image(png)
    assert img.pixels.shape == (3, SIZE, SIZE) and img.pixels.dtype == np.float32
    assert img.channels == ["R", "G", "B"] and img.format == "PNG" and not img.mask.any()
    np.testing.assert_allclose(img.pixels, rgb(11).transpose(2, 0, 1) / 255.0, atol=1e-7)
    grey = tmp_path / "g.png"
    Image.fromarray(rgb(12)[..., 0]).save(grey)
    assert read_image(grey, mode="L").pixels.shape == (1, SIZE, SIZE)
    assert read_image(grey).pixels.shape == (3, SIZE, SIZE)
    (tmp_path / "x.jpg").write_bytes(b"GIF89a not really")
    with pytest.raises(StampRejected, match=r"x\.jpg: not a JPEG or PNG") as err:
        read_image(tmp_path / "x.jpg")
    assert err.value.reason == "not_image"
    with pytest.raises(StampRejected, match="cannot read the file") as err:
        read_image(tmp_path / "absent.jpg")
    assert err.value.reason == "unreadable"


def test_kaggle_ingest_keeps_the_good_and_rejects_the_rest_by_id(tmp_path, kaggle_images):
    out = tmp_path / "run" / "stamps.h5"
    report = ingest_source(GalaxyZooSource(catalog=KAGGLE, images_dir=kaggle_images, format="kaggle"), out)
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (6, 4, 2)
    assert report.reject_reasons == {"missing_image": 1, "truncated_image": 1}
    rejects = read_rejects(out.with_name("rejects.csv"))
    assert {r["source"]: r["reason"] for r in rejects} == {
        "100445": "missing_image",
        "135453": "truncated_image",
    }
    assert all(r["error"].startswith(f"GalaxyID {r['source']}: ") for r in rejects)
    assert "135453.jpg" in rejects[1]["error"]

    expected = pd.read_csv(KAGGLE).set_index("GalaxyID")
    with open_store(out) as store:
        assert store.channels == ["i", "r", "g"] and store.stamp_shape == (SIZE, SIZE)  # SDSS gri in R, G, B
        cat = store.catalog()
        assert cat["object_id"].tolist() == KAGGLE_IDS[:4]
        assert cat["GalaxyID"].tolist() == [int(i) for i in KAGGLE_IDS[:4]]
        assert cat["source"].iloc[3].endswith("100123.png")
        answers = store.labels("gz_answers")
        assert answers.shape == (4, 37) and answers.dtype == np.float32
        np.testing.assert_allclose(
            answers, expected.loc[[int(i) for i in KAGGLE_IDS[:4]]].to_numpy(), atol=1e-7
        )
        assert "gz_votes" not in store.label_names
        png = store.stamps(slice(3, 4))[0]
        np.testing.assert_allclose(png, rgb(3).transpose(2, 0, 1) / 255.0, atol=1e-7)  # PNG is lossless
        attrs = store.attrs
        assert attrs["gz_format"] == "kaggle" and attrs["gz_answer_columns"] == list(ANSWER_COLUMNS)
        assert len(attrs["source_sha256"]) == 64


def test_links_that_loop_or_dangle_in_the_images_folder_are_their_rows_rejects(tmp_path, kaggle_images):
    """Issue 18: a link to itself in the images folder ended the run with OSError (ELOOP) while the folder
    was listed; now it is its row's ``unreadable`` reject, a dangling link likewise, the rest ingested."""
    os.symlink(kaggle_images / f"{KAGGLE_IDS[4]}.jpg", kaggle_images / f"{KAGGLE_IDS[4]}.jpg")
    (kaggle_images / f"{KAGGLE_IDS[5]}.jpg").unlink()
    os.symlink(tmp_path / "gone.jpg", kaggle_images / f"{KAGGLE_IDS[5]}.jpg")
    out = tmp_path / "run" / "stamps.h5"
    report = ingest_source(GalaxyZooSource(catalog=KAGGLE, images_dir=kaggle_images, format="kaggle"), out)
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (6, 4, 2)
    rejects = {r["source"]: r for r in read_rejects(out.with_name("rejects.csv"))}
    assert {k: r["reason"] for k, r in rejects.items()} == {"100445": "unreadable", "135453": "unreadable"}
    assert "100445.jpg" in rejects["100445"]["error"] and "symbolic links" in rejects["100445"]["error"]


def test_label_rejects_and_image_rejects_add_up(tmp_path, kaggle_images):
    df = pd.read_csv(KAGGLE)
    df.loc[0, "Class7.1"] += 0.1  # 100008: Q7 breaks the tree
    df.loc[2, "GalaxyID"] = 424242  # its image does not exist
    path = tmp_path / "labels.parquet"
    df.to_parquet(path)
    write_jpeg(kaggle_images / "100123.jpg", 9, size=SIZE + 2)  # .jpg is found before .png: wrong size
    report = ingest_source(GalaxyZooSource(catalog=path, images_dir=kaggle_images), tmp_path / "stamps.h5")
    rejects = {r["source"]: r["reason"] for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejects == {
        "100008": "tree_violation",
        "424242": "missing_image",
        "100123": "wrong_shape",
        "100445": "missing_image",
        "135453": "truncated_image",
    }
    assert report.n_ingested + report.n_rejected == report.n_inputs == 6
    with open_store(tmp_path / "stamps.h5") as store:
        assert store.catalog()["object_id"].tolist() == ["100143"]


def test_gz2_ingest_from_fits_cubes_with_votes(tmp_path):
    df = pd.read_csv(GZ2)
    folder = tmp_path / "fits"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i, gid in enumerate(df["dr7objid"].astype(str)):
        if i == 1:
            (folder / f"{gid}.fits").write_bytes(b"SIMPLE  = broken")
            continue
        hdu = fits.PrimaryHDU(rng.normal(size=(3, 16, 16)).astype(">f4"))
        for k, band in enumerate("gri", start=1):
            hdu.header[f"CHNAME{k}"] = band
        hdu.writeto(folder / f"{gid}.fits.gz" if i == 2 else folder / f"{gid}.fits")
    source = GalaxyZooSource(catalog=GZ2, images_dir=folder, format="gz2", estimate="weighted")
    report = ingest_source(source, tmp_path / "gz2.h5")
    assert (report.n_ingested, report.n_rejected) == (3, 1)
    assert read_rejects(tmp_path / "rejects.csv")[0]["source"] == str(df["dr7objid"][1])
    with open_store(tmp_path / "gz2.h5") as store:
        assert store.channels == ["g", "r", "i"]
        assert store.labels("gz_answers").shape == (3, 37)
        votes = store.labels("gz_votes")
        np.testing.assert_array_equal(
            votes, df.loc[[0, 2, 3], [s + "_count" for s in GZ2_ANSWER_STEMS]].to_numpy()
        )
        cat = store.catalog()
        assert cat["dr7objid"].tolist() == df["dr7objid"][[0, 2, 3]].tolist()
        np.testing.assert_allclose(cat["ra"], df["ra"][[0, 2, 3]])
        assert store.attrs["gz_estimate"] == "weighted"


def test_decals_ingest_by_file_column(tmp_path):
    df = pd.read_csv(DECALS)
    folder = tmp_path / "dr5"
    (folder / "J100").mkdir(parents=True)
    df = pd.concat([df, pd.DataFrame({"file_loc": [f"J100/{name}.png" for name in df["iauname"]]})], axis=1)
    for i, rel in enumerate(df["file_loc"][:3]):
        Image.fromarray(rgb(20 + i)).save(folder / rel)
    path = tmp_path / "decals.csv"
    df.to_csv(path, index=False)
    report = ingest_source(
        GalaxyZooSource(catalog=path, images_dir=folder, format="decals"), tmp_path / "decals.h5"
    )
    assert (report.n_ingested, report.n_rejected) == (3, 1)
    (reject,) = read_rejects(tmp_path / "rejects.csv")
    assert reject["source"] == df["iauname"][3] and reject["reason"] == "missing_image"
    with open_store(tmp_path / "decals.h5") as store:
        assert store.labels("gz_decals_fractions").shape == (3, 34)
        assert store.labels("gz_decals_votes")[0, 0] == df["smooth-or-featured_smooth"][0]
        assert "gz_answers" not in store.label_names
        assert store.catalog()["iauname"].tolist() == df["iauname"][:3].tolist()


def test_unusable_catalog_raises_and_writes_one_reject(tmp_path, kaggle_images):
    path = tmp_path / "short.csv"
    pd.read_csv(KAGGLE).drop(columns=["Class5.4"]).to_csv(path, index=False)
    with pytest.raises(CatalogError, match=r"short\.csv: 1 Kaggle answer column\(s\) missing: Class5\.4"):
        ingest_source(GalaxyZooSource(catalog=path, images_dir=kaggle_images), tmp_path / "stamps.h5")
    (row,) = read_rejects(tmp_path / "rejects.csv")
    assert row["source"] == str(path) and row["reason"] == "missing_columns"
    assert not (tmp_path / "stamps.h5").exists()


@pytest.mark.prefect
def test_cli_ingest_galaxy_zoo(tmp_path, kaggle_images, capsys):
    out = tmp_path / "cli" / "stamps.h5"
    code = main(
        ["ingest-galaxy-zoo", str(KAGGLE), str(kaggle_images), "--format", "kaggle", "--out", str(out)]
    )
    assert code == 0
    assert "inputs=6 ingested=4 rejected=2" in capsys.readouterr().out
    assert out.exists() and (out.parent / "rejects.csv").exists()
    code = main(["ingest-galaxy-zoo", str(tmp_path / "none.csv"), str(kaggle_images), "--out", str(out)])
    assert code == 1
    assert "none.csv: no such file" in capsys.readouterr().err
