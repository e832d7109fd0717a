"""Issue 18, "bad input never costs good data": each bad input is that input's one named reject, the valid
inputs beside it are ingested, inputs = ingested + rejected (FITS headers, labelled triplets, catalog
cutouts, symlinks, the driver's last guard, and the real commands)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from data_catalogs.tables import CatalogError
from flows.cli import main
from pipeline.ingest import CutoutSource, FitsSource, LabelledSource, ingest_source
from pipeline.ingest.driver import ingest
from pipeline.ingest.reader import SourceReader, Stamp, StorePlan
from pipeline.io import REASONS, StampRejected, header_sky_position, read_stamp
from pipeline.store import open_store
from tests.conftest import ZTF_TRIPLETS

TRIPLET_EXTENSIONS = ["SCIENCE", "TEMPLATE", "DIFFERENCE"]
#: The shipped triplets used as the valid inputs.
VALID = sorted(ZTF_TRIPLETS.glob("*.fits.gz"))[:2]
#: Header cards that killed ``stampflow ingest`` before issue 18, and the reason each must get now.
BAD_CARDS = {
    "bitpix17": ({"SCIENCE": {"BITPIX": "BITPIX  =                   17"}}, "bad_header"),
    "bitpix_text": ({"SCIENCE": {"BITPIX": "BITPIX  = 'abc'"}}, "bad_header"),
    "naxis999": ({"SCIENCE": {"NAXIS": "NAXIS   =                  999"}}, "bad_header"),
    "naxis1_half": ({"SCIENCE": {"NAXIS1": "NAXIS1  =                 63.5"}}, "bad_header"),
    "naxis_huge": (
        {"SCIENCE": {"NAXIS1": "NAXIS1  =        1000000000000", "NAXIS2": "NAXIS2  =        1000000000000"}},
        "bad_header",
    ),
    "naxis2_huge": ({"SCIENCE": {"NAXIS2": "NAXIS2  =        1000000000000"}}, "truncated_fits"),
    "dec_unparsable": ({"PRIMARY": {"DEC": "DEC     = 7.3.57"}}, "bad_header"),
    "dec_infinite": ({"PRIMARY": {"DEC": "DEC     = 1e999"}}, "bad_position"),
}


def _hdu_start(raw: bytes, extension: str) -> int:
    """Byte offset of the header of an HDU (``PRIMARY`` or an EXTNAME) in an uncompressed FITS file."""
    if extension == "PRIMARY":
        return 0
    at = raw.index(f"EXTNAME = '{extension}".encode())
    return raw.rindex(b"XTENSION", 0, at)


def with_cards(raw: bytes, changes: dict[str, dict[str, str]]) -> bytes:
    """The FITS bytes with header cards replaced in place (each an 80-character card, bytes edited)."""
    out = bytearray(raw)
    for extension, cards in changes.items():
        start = _hdu_start(raw, extension)
        for key, card in cards.items():
            pos = start
            while raw[pos : pos + 8].rstrip() != key.encode():
                assert raw[pos : pos + 8].rstrip() != b"END", f"no {key} card in {extension}"
                pos += 80
            out[pos : pos + 80] = card.encode().ljust(80)
    return bytes(out)


def triplet_bytes(i: int = 0) -> bytes:
    return gzip.decompress(VALID[i].read_bytes())


@pytest.mark.parametrize("case", sorted(BAD_CARDS))
def test_a_malformed_header_card_is_a_named_reject_of_read_stamp(case):
    changes, reason = BAD_CARDS[case]
    with pytest.raises(StampRejected) as caught:
        stamp = read_stamp(with_cards(triplet_bytes(), changes), name=case, extensions=TRIPLET_EXTENSIONS)
        header_sky_position(stamp)  # the positions are read inside the reader's guard too
    assert caught.value.reason == reason and reason in REASONS
    assert str(caught.value).startswith(f"{case}:")


def _folder_of_bad_triplets(folder: Path) -> dict[str, str]:
    """The valid triplets and one file per bad card; file name -> expected reason of the bad ones."""
    folder.mkdir()
    for path in VALID:
        (folder / path.name).write_bytes(path.read_bytes())
    expected = {}
    for case, (changes, reason) in BAD_CARDS.items():
        (folder / f"{case}.fits").write_bytes(with_cards(triplet_bytes(), changes))
        expected[f"{case}.fits"] = reason
    return expected


def _reasons(rejects_csv: Path) -> dict[str, str]:
    table = pd.read_csv(rejects_csv)
    assert table["error"].str.len().min() > 10
    return {Path(s).name: r for s, r in zip(table["source"], table["reason"], strict=True)}


def test_fits_ingest_keeps_the_valid_files_beside_malformed_headers(tmp_path):
    expected = _folder_of_bad_triplets(tmp_path / "in")
    source = FitsSource(inputs=[tmp_path / "in"], extensions=TRIPLET_EXTENSIONS)
    report = ingest_source(source, tmp_path / "out" / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (len(VALID) + len(expected), 2, 8)
    assert _reasons(tmp_path / "out" / "rejects.csv") == expected
    with open_store(tmp_path / "out" / "stamps.h5") as store:
        assert sorted(store.catalog()["source"].map(lambda s: Path(s).name)) == [p.name for p in VALID]


def test_random_header_byte_flips_never_cost_the_valid_files(tmp_path):
    """Seeded byte flips in the headers: each file is ingested or one reject, never a crash."""
    folder = tmp_path / "in"
    folder.mkdir()
    raw = triplet_bytes()
    headers = [range(s, s + 2880) for s in (0, *(_hdu_start(raw, e) for e in TRIPLET_EXTENSIONS))]
    rng = np.random.default_rng(18)
    for k in range(40):
        flipped = bytearray(raw)
        for _ in range(int(rng.integers(1, 6))):
            block = headers[int(rng.integers(len(headers)))]
            flipped[int(rng.integers(block.start, block.stop))] = int(rng.integers(0, 256))
        (folder / f"flip{k:02d}.fits").write_bytes(bytes(flipped))
    (folder / "valid.fits.gz").write_bytes(VALID[1].read_bytes())
    source = FitsSource(inputs=[folder], extensions=TRIPLET_EXTENSIONS, header_keys=["OBJECT", "JD"])
    report = ingest_source(source, tmp_path / "out" / "stamps.h5")
    assert report.n_inputs == 41 and report.n_ingested + report.n_rejected == 41
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv")
    assert len(rejects) == report.n_rejected and rejects["source"].is_unique
    assert "valid.fits.gz" not in set(rejects["source"].map(lambda s: Path(s).name))
    assert set(rejects["reason"]) <= set(REASONS)


def test_labelled_triplets_keep_the_valid_files_beside_bad_headers_and_links(tmp_path):
    folder = tmp_path / "labelled"
    folder.mkdir()
    ids = ["good0", "good1", "bitpix17", "dangling", "loop"]
    (folder / "good0.fits.gz").write_bytes(VALID[0].read_bytes())
    (folder / "good1.fits.gz").write_bytes(VALID[1].read_bytes())
    (folder / "bitpix17.fits").write_bytes(with_cards(triplet_bytes(), BAD_CARDS["bitpix17"][0]))
    os.symlink(folder / "gone.fits", folder / "dangling.fits")
    os.symlink(folder / "loop.fits", folder / "loop.fits")
    pd.DataFrame({"id": ids, "real": [1, 0, 1, 0, 1]}).to_csv(folder / "labels.csv", index=False)
    source = LabelledSource(folder=folder, extensions=TRIPLET_EXTENSIONS)
    report = ingest_source(source, tmp_path / "out" / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (5, 2, 3)
    assert _reasons(tmp_path / "out" / "rejects.csv") == {
        "bitpix17.fits": "bad_header",
        "dangling.fits": "unreadable",
        "loop.fits": "unreadable",
    }
    with open_store(tmp_path / "out" / "stamps.h5") as store:
        assert sorted(store.catalog()["object_id"]) == ["good0", "good1"]
        assert sorted(store.labels("real").tolist()) == [0, 1]


def test_labelled_triplets_a_bad_label_row_is_that_files_reject_the_others_ingested(tmp_path):
    """Issue 18: one bad label value (NaN, text, 300, 1.5, blank) made read_labels raise and the whole
    ingest was lost; a non-UTF-8 file name ended it with UnicodeEncodeError. Each is now its file's one
    reject (``bad_label`` naming the row, id, column and value; ``duplicate_id``; ``bad_name``)."""
    folder = tmp_path / "labelled"
    folder.mkdir()
    values = {
        "good0": "1",
        "good1": "0",
        "nan": "nan",
        "text": "abc",
        "big": "300",
        "half": "1.5",
        "blank": "",
    }
    for cid in [*values, "twice"]:
        (folder / f"{cid}.fits.gz").write_bytes(VALID[len(cid) % 2].read_bytes())
    (folder / os.fsdecode(b"caf\xe9.fits.gz")).write_bytes(VALID[0].read_bytes())
    rows = [*values.items(), ("twice", "1"), ("twice", "0")]
    pd.DataFrame({"id": [r[0] for r in rows], "real": [r[1] for r in rows]}).to_csv(
        folder / "labels.csv", index=False
    )
    report = ingest_source(LabelledSource(folder=folder), tmp_path / "out" / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (9, 2, 7)
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv", keep_default_na=False).set_index("source")
    expected = {f"{cid}.fits.gz": "bad_label" for cid in ("nan", "text", "big", "half", "blank")}
    expected |= {"twice.fits.gz": "duplicate_id", "caf\\xe9.fits.gz": "bad_name"}
    assert {Path(s).name: r for s, r in rejects["reason"].items()} == expected
    error = rejects.loc[str(folder / "big.fits.gz"), "error"]
    assert (
        error
        == f"{folder / 'big.fits.gz'}: labels.csv row 5 (id 'big'): label 'real' is '300', not an integer in -127..127"
    )
    assert "label 'real' is ''" in rejects.loc[str(folder / "blank.fits.gz"), "error"]
    assert "rows [8, 9]" in rejects.loc[str(folder / "twice.fits.gz"), "error"]
    with open_store(tmp_path / "out" / "stamps.h5") as store:
        assert store.catalog()["object_id"].tolist() == ["good0", "good1"]
        assert store.labels("real").tolist() == [1, 0]


def test_a_labels_csv_without_its_columns_is_a_catalog_error_naming_it(tmp_path):
    folder = tmp_path / "labelled"
    folder.mkdir()
    (folder / "a.fits.gz").write_bytes(VALID[0].read_bytes())
    (folder / "labels.csv").write_text("id,re")  # cut inside its header
    with pytest.raises(CatalogError) as caught:
        ingest_source(LabelledSource(folder=folder), tmp_path / "out" / "stamps.h5")
    assert caught.value.reason == "missing_columns" and caught.value.missing == ["real"]
    assert str(caught.value).startswith(str(folder / "labels.csv"))
    assert _reasons(tmp_path / "out" / "rejects.csv") == {"labels.csv": "missing_columns"}


def test_symlink_loops_and_dangling_links_in_a_folder_are_counted_rejects(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "valid.fits.gz").write_bytes(VALID[0].read_bytes())
    os.symlink(folder / "b.fits", folder / "a.fits")  # a -> b -> a
    os.symlink(folder / "a.fits", folder / "b.fits")
    os.symlink(folder / "nothing.fits", folder / "dangling.fits")
    os.symlink(folder, folder / "sub" / "up")  # a folder loop: walked once, never followed round
    report = ingest_source(FitsSource(inputs=[folder]), tmp_path / "out" / "stamps.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (4, 1, 3)
    assert _reasons(tmp_path / "out" / "rejects.csv") == {
        "a.fits": "unreadable",
        "b.fits": "unreadable",
        "dangling.fits": "unreadable",
    }


def _image_and_catalog(tmp_path: Path) -> tuple[Path, Path]:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [150.0, 2.0], [50.0, 50.0], [-1 / 3600, 1 / 3600]
    pixels = np.random.default_rng(0).normal(size=(100, 100)).astype(np.float32)
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(pixels, header=wcs.to_header()).writeto(image)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,ra,dec\nok1,150.0,2.0\npole,150.0,95\nnan_dec,150.0,inf\ntext,abc,2.0\nempty,,2.0\nok2,150.001,2.001\n"
    )
    return image, catalog


def test_cutout_rows_with_impossible_positions_are_their_own_rejects(tmp_path):
    image, catalog = _image_and_catalog(tmp_path)
    report = ingest_source(CutoutSource(image=image, catalog=catalog, size=16), tmp_path / "out" / "s.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (6, 2, 4)
    rejects = pd.read_csv(tmp_path / "out" / "rejects.csv")
    assert set(rejects["reason"]) == {"bad_position"}
    assert [s.rsplit(":", 1)[1] for s in rejects["source"]] == ["pole", "nan_dec", "text", "empty"]
    assert "dec = 95.0" in rejects["error"][0] and "ra = 'abc'" in rejects["error"][2]
    with open_store(tmp_path / "out" / "s.h5") as store:
        assert store.catalog()["object_id"].tolist() == ["ok1", "ok2"]


def test_a_truncated_cutout_image_is_a_clean_error_naming_it(tmp_path):
    image, catalog = _image_and_catalog(tmp_path)
    raw = image.read_bytes()
    image.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StampRejected) as caught:
        ingest_source(CutoutSource(image=image, catalog=catalog, size=16), tmp_path / "out" / "s.h5")
    assert caught.value.reason == "truncated_fits" and str(caught.value).startswith(str(image))
    assert not (tmp_path / "out" / "s.h5").exists()


def test_a_cutout_catalog_cut_inside_its_header_is_a_catalog_error_naming_it(tmp_path):
    """Issue 18: a CSV cut inside its header raised a bare ValueError without the file or a reason."""
    image, catalog = _image_and_catalog(tmp_path)
    catalog.write_text("x,y\n10,12\n"[:2])  # "x,"
    source = CutoutSource(image=image, catalog=catalog, size=5, x_col="x", y_col="y")
    with pytest.raises(CatalogError) as caught:
        ingest_source(source, tmp_path / "out" / "s.h5")
    assert (caught.value.reason, caught.value.source, caught.value.missing) == (
        "missing_columns",
        str(catalog),
        ["y"],
    )
    assert "lacks position columns ['y']" in str(caught.value)
    assert _reasons(tmp_path / "out" / "rejects.csv") == {"catalog.csv": "missing_columns"}
    assert not (tmp_path / "out" / "s.h5").exists()


class _OneBadUnit(SourceReader):
    """A reader of three units whose second raises what no check foresaw (the driver's last guard)."""

    progress = ("test", "unit")

    def open(self) -> StorePlan:
        return StorePlan(catalog_columns=["object_id"], attrs={"ingest": "test"})

    def units(self) -> list[str]:
        return ["u0", "u1", "u2"]

    def __len__(self) -> int:
        return 3

    def read(self, unit: str, store):
        if unit == "u1":
            raise KeyError(17)
        pixels = np.ones((1, 4, 4), np.float32)
        yield Stamp(unit, pixels, np.zeros(pixels.shape, bool), ["0"], {"object_id": unit})


def test_an_error_no_reader_check_names_is_that_units_reject(tmp_path):
    report = ingest(_OneBadUnit(None, files=[]), tmp_path / "s.h5")
    assert (report.n_inputs, report.n_ingested, report.n_rejected) == (3, 2, 1)
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects[["source", "reason"]].values.tolist() == [["u1", "unexpected_error"]]
    assert "KeyError" in rejects["error"][0]


@pytest.mark.prefect
def test_the_real_commands_go_on_past_a_malformed_header(tmp_path, capsys):
    expected = _folder_of_bad_triplets(tmp_path / "in")
    out = tmp_path / "fits" / "stamps.h5"
    code = main(
        ["ingest", str(tmp_path / "in"), "--out", str(out), "--extensions", ",".join(TRIPLET_EXTENSIONS)]
    )
    assert code == 0 and out.exists()
    assert _reasons(out.with_name("rejects.csv")) == expected
    assert f"inputs={len(VALID) + len(expected)} ingested={len(VALID)} rejected={len(expected)}" in (
        capsys.readouterr().out
    )

    pd.DataFrame(
        {"id": [p.name.split(".")[0] for p in VALID] + [Path(n).stem for n in expected], "real": 1}
    ).to_csv(tmp_path / "in" / "labels.csv", index=False)
    labelled = tmp_path / "labelled" / "stamps.h5"
    argv = ["ingest-labelled", str(tmp_path / "in"), "--out", str(labelled)]
    assert main([*argv, "--extensions", ",".join(TRIPLET_EXTENSIONS)]) == 0
    # a labelled store keeps no positions: the files with a bad DEC card are ingested there
    unreadable = {name: reason for name, reason in expected.items() if not name.startswith("dec_")}
    assert _reasons(labelled.with_name("rejects.csv")) == unreadable
    assert f"inputs={len(VALID) + len(expected)} ingested={len(VALID) + 2} rejected={len(unreadable)}" in (
        capsys.readouterr().out
    )

    image, catalog = _image_and_catalog(tmp_path)
    cut = tmp_path / "cut" / "stamps.h5"
    assert main(["cutout", str(image), str(catalog), "--size", "16", "--out", str(cut)]) == 0
    assert "inputs=6 ingested=2 rejected=4" in capsys.readouterr().out
    raw = image.read_bytes()
    image.write_bytes(raw[: len(raw) // 2])
    assert (
        main(["cutout", str(image), str(catalog), "--size", "16", "--out", str(tmp_path / "c2" / "s.h5")])
        == 1
    )
    # the run's one error line (Prefect's own task log above it is the flows' business)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(image) in last and "cut or corrupt" in last
