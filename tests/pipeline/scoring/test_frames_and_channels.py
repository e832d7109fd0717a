"""The model card's frame and channels at training and scoring time (issue 21): a card records the ingest
frame and the channels of its training stores; scoring refuses a store ingested with another frame (naming
both and the ingest options that fix it), frames a raw store in memory exactly as ingest would, and
reorders channels by name. Real HDF5 stores, a tiny ``small`` MorphologyModel trained two steps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from astropy.table import Table

from flows.cli import main as cli_main
from models.checkpoints import CheckpointError, load_checkpoint
from models.components import DielemanFrame
from models.frame_fit import check_frame_fits, fitting_frame
from models.morphology_config import MorphologyConfig
from models.train import train_model
from pipeline.ingest import GalaxyZooSource, ingest_source
from pipeline.prep import FRAME_ATTR, IngestFrame
from pipeline.scoring import (
    InputPlan,
    ModelInputMismatch,
    StampBatch,
    check_inputs,
    plan_inputs,
    score_store,
)
from pipeline.store import StampStoreWriter, open_store
from tests.models.helpers import galaxies

#: The frame the test model is trained on: the ``small`` preset's 65 px frame from 140 px "raw" images.
FRAME = IngestFrame(crop=130, size=65)
OTHER = IngestFrame(crop=120, size=65)
RAW_SIDE = 140
GZ_DATA = Path(__file__).resolve().parents[2] / "data" / "galaxy_zoo"
N = 24


def _write(path, stamps, channels=("g", "r", "i"), frame=None, labels=None):
    """A store of ``stamps`` (N, C, S, S) with the frame attribute of ``frame`` (None: no frame)."""
    n, side = len(stamps), stamps.shape[-1]
    catalog = {"object_id": [f"g{i}" for i in range(n)], "source": [f"{1000 + i}.jpg" for i in range(n)]}
    attrs = {FRAME_ATTR: frame.to_attr()} if frame is not None else None
    with StampStoreWriter(path, list(channels), (side, side), chunk_rows=8, attrs=attrs) as writer:
        writer.append(stamps, None, catalog, {"gz_answers": labels} if labels is not None else None)
    return path


def _framed(raw: np.ndarray, frame: IngestFrame) -> np.ndarray:
    """Each image framed on its own, as ingest frames them one by one."""
    return np.stack([frame.apply(image) for image in raw])


@pytest.fixture(scope="module")
def raw():
    stamps, labels = galaxies(N, RAW_SIDE, seed=3)
    return stamps, labels


@pytest.fixture(scope="module")
def trained(raw, tmp_path_factory):
    """(checkpoint, card, framed training store) of a ``small`` model trained 2 steps on FRAME stamps."""
    root = tmp_path_factory.mktemp("framed")
    store = _write(root / "framed.h5", _framed(raw[0], FRAME), frame=FRAME, labels=raw[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_model(
            "morphology", [store], root / "model", preset="small", max_steps=2, batch_size=8, seed=0
        )
    finally:
        torch.set_num_threads(threads)
    card = json.loads(Path(result.model_card).read_text())
    return result.checkpoint, card, store


def _scores(ckpt, store, out, card=None) -> pd.DataFrame:
    module, loaded = load_checkpoint(ckpt)
    score_store(module, card or loaded, store, out, backend="eager", batch_size=10)
    return pd.read_parquet(out)


def _score_columns(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["store_row", "object_id", "source", "model_name", "model_version"])


# ---------------------------------------------------------------------------------------------- training


def test_the_card_records_the_frame_and_channels_of_the_training_stores(trained):
    _, card, _ = trained
    assert card["frame"] == {"crop": 130, "size": 65}
    assert card["channels"] == ["g", "r", "i"] and card["stamp_shape"] == [65, 65]


def test_training_on_stores_of_different_frames_is_refused_naming_the_stores_and_frames(raw, tmp_path):
    a = _write(tmp_path / "a.h5", _framed(raw[0], FRAME), frame=FRAME, labels=raw[1])
    b = _write(tmp_path / "b.h5", _framed(raw[0], OTHER), frame=OTHER, labels=raw[1])
    with pytest.raises(ValueError, match="different frames") as err:
        train_model("morphology", [a, b], tmp_path / "m", preset="small", max_steps=1)
    message = str(err.value)
    assert f"{a}: centre 130 px area-averaged to 65 px" in message
    assert f"{b}: centre 120 px area-averaged to 65 px" in message
    assert not (tmp_path / "m" / "model.ckpt").exists()


def test_a_99px_framed_store_is_refused_for_a_65px_model_frame_with_the_ingest_options_that_fit(tmp_path):
    stamps, labels = galaxies(8, 99, seed=1)
    store = _write(tmp_path / "f99.h5", stamps, frame=IngestFrame(297, 99), labels=labels)
    with pytest.raises(ValueError) as err:
        train_model("morphology", [store], tmp_path / "m", preset="small", max_steps=1)
    message = str(err.value)
    assert "stamps of 99 px framed at ingest as centre 297 px area-averaged to 99 px" in message
    assert "--frame-crop 299 --frame-size 65 (for 424 px images" in message
    assert not (tmp_path / "m" / "model.ckpt").exists()


def test_which_framed_stamps_a_model_frame_takes():
    c = MorphologyConfig.from_preset("dieleman2015")
    big = DielemanFrame(c.input_size, c.frame_size, c.crop_fraction)
    assert fitting_frame(big) == IngestFrame(297, 99)  # the 424 px frame of dieleman2015
    check_frame_fits(big, 99, IngestFrame(297, 99), "s")  # its frame: as it is
    check_frame_fits(big, 69, IngestFrame(207, 69), "s")  # its view: as it is
    check_frame_fits(big, 424, None, "s")  # raw images: the model frames them itself
    with pytest.raises(ValueError, match="--frame-crop 297 --frame-size 99"):
        check_frame_fits(big, 65, IngestFrame(299, 65), "s")


def test_fine_tuning_a_parent_on_stores_of_another_frame_is_refused(trained, raw, tmp_path):
    ckpt, _, _ = trained
    other = _write(tmp_path / "other.h5", _framed(raw[0], OTHER), frame=OTHER, labels=raw[1])
    with pytest.raises(CheckpointError, match="--frame-crop 130 --frame-size 65"):
        train_model("morphology", [other], tmp_path / "ft", preset="small", max_steps=1, init_from=ckpt)


# ----------------------------------------------------------------------------------------------- scoring


def test_a_card_trained_on_one_frame_refuses_a_store_ingested_with_another(trained, raw, tmp_path):
    ckpt, card, _ = trained
    other = _write(tmp_path / "other.h5", _framed(raw[0], OTHER), frame=OTHER)
    with pytest.raises(ModelInputMismatch) as err:
        _scores(ckpt, other, tmp_path / "scored.parquet")
    message = str(err.value)
    assert f"{card['model_name']} {card['model_version']} does not fit store {other}" in message
    assert "the model was trained on stamps framed as centre 130 px area-averaged to 65 px" in message
    assert f"store {other} has centre 120 px area-averaged to 65 px" in message
    assert message.endswith("ingest with --frame-crop 130 --frame-size 65")
    assert not (tmp_path / "scored.parquet").exists()
    # the strict check (stamps fed as stored) says the same
    with pytest.raises(ModelInputMismatch, match="centre 120 px"):
        check_inputs(card, ["g", "r", "i"], (3, 65, 65), "s", stamps_frame=OTHER)


def test_a_raw_store_is_framed_in_memory_and_scores_as_the_store_ingested_with_the_frame(
    trained, raw, tmp_path, caplog
):
    ckpt, _, framed_store = trained
    raw_store = _write(tmp_path / "raw.h5", raw[0])
    with caplog.at_level(logging.INFO, logger="pipeline.scoring.model_inputs"):
        from_raw = _scores(ckpt, raw_store, tmp_path / "raw.parquet")
    from_framed = _scores(ckpt, framed_store, tmp_path / "framed.parquet")
    assert len(from_raw) == N and np.isfinite(from_raw["Q1_smooth"]).all()
    pd.testing.assert_frame_equal(_score_columns(from_raw), _score_columns(from_framed), check_exact=True)
    assert "frame applied in memory" in caplog.text and "140x140 -> 65x65 px" in caplog.text
    meta = Table.read(tmp_path / "raw.parquet").meta
    assert meta["input_adapted"].startswith("frame applied in memory") and meta["frame"] == FRAME.describe()
    assert Table.read(tmp_path / "framed.parquet").meta["input_adapted"] == ""


def test_real_jpegs_ingested_raw_score_as_the_jpegs_ingested_with_the_frame(trained, tmp_path, caplog):
    """Six real Kaggle JPEGs (424 px; store channels i, r, g): ingested as read (uint8), they are framed in
    memory and reordered to g, r, i, and score exactly as the same JPEGs ingested with the card's frame."""
    ckpt, _, _ = trained
    stores = {}
    for name, options in {"raw": {}, "framed": {"frame_crop": 130, "frame_size": 65}}.items():
        source = GalaxyZooSource(
            catalog=GZ_DATA / "kaggle_rounded_rows.csv",
            images_dir=GZ_DATA / "kaggle_real_images",
            pixel_dtype="float32" if options else "auto",
            workers=1,
            **options,
        )
        assert ingest_source(source, tmp_path / f"{name}.h5").n_ingested == 6
        stores[name] = tmp_path / f"{name}.h5"
    with open_store(stores["raw"]) as raw_store:
        assert raw_store.channels == ["i", "r", "g"] and raw_store.h5["stamps"].dtype == np.uint8
    with caplog.at_level(logging.INFO, logger="pipeline.scoring.model_inputs"):
        from_raw = _scores(ckpt, stores["raw"], tmp_path / "raw.parquet")
    from_framed = _scores(ckpt, stores["framed"], tmp_path / "framed.parquet")
    pd.testing.assert_frame_equal(_score_columns(from_raw), _score_columns(from_framed), check_exact=True)
    assert "424x424 -> 65x65 px" in caplog.text and "channels reordered by name" in caplog.text
    assert from_raw["Q1_smooth"].nunique() == 6  # six galaxies, six different scores


def test_a_framed_mask_marks_the_framed_pixels_whose_area_holds_a_masked_pixel():
    stamps = np.ones((2, 3, RAW_SIDE, RAW_SIDE), np.float32)
    mask = np.zeros(stamps.shape, bool)
    mask[1, 0, 70, 70] = True  # the centre 130 px start at 5: pixel 65 of the crop, 32 of the 2x2 average
    batch = InputPlan(frame=FRAME).apply(StampBatch(stamps, mask))
    assert batch.stamps.shape == batch.mask.shape == (2, 3, 65, 65)
    assert np.argwhere(batch.mask).tolist() == [[1, 0, 32, 32]]
    assert InputPlan(frame=FRAME).apply(StampBatch(stamps, np.zeros_like(mask))).mask.sum() == 0


def test_a_raw_store_smaller_than_the_frame_crop_is_refused(trained, tmp_path):
    ckpt, _, _ = trained
    small = _write(tmp_path / "small.h5", galaxies(4, 100, seed=2)[0])
    with pytest.raises(ModelInputMismatch, match="stamps of 100x100 px are smaller than the 130 px crop"):
        _scores(ckpt, small, tmp_path / "scored.parquet")


def test_an_old_card_without_a_frame_is_not_checked(trained, raw, tmp_path):
    ckpt, card, _ = trained
    old = {k: v for k, v in card.items() if k != "frame"}
    other = _write(tmp_path / "other.h5", _framed(raw[0][:4], OTHER), frame=OTHER)
    assert len(_scores(ckpt, other, tmp_path / "scored.parquet", card=old)) == 4


def test_channels_in_another_order_are_reordered_by_name(trained, raw, tmp_path, caplog):
    ckpt, _, _ = trained
    pixels = _framed(raw[0][:10], FRAME)
    gri = _write(tmp_path / "gri.h5", pixels, frame=FRAME)
    irg = _write(tmp_path / "irg.h5", pixels[:, ::-1], channels=("i", "r", "g"), frame=FRAME)
    with caplog.at_level(logging.INFO, logger="pipeline.scoring.model_inputs"):
        reordered = _scores(ckpt, irg, tmp_path / "irg.parquet")
    as_stored = _scores(ckpt, gri, tmp_path / "gri.parquet")
    pd.testing.assert_frame_equal(_score_columns(reordered), _score_columns(as_stored), check_exact=True)
    assert "channels reordered by name" in caplog.text and "['i', 'r', 'g']" in caplog.text


def test_channel_order_is_planned_only_for_the_same_names():
    card = {"channels": ["g", "r", "i"], "stamp_shape": [65, 65], "model_name": "m"}
    assert plan_inputs(card, ["i", "r", "g"], (65, 65), None, "s").order == (2, 1, 0)
    assert plan_inputs(card, ["g", "r", "i"], (65, 65), None, "s").order is None
    with pytest.raises(ModelInputMismatch, match=r"expects \['g', 'r', 'i'\], s has \['i', 'r', 'z'\]"):
        plan_inputs(card, ["i", "r", "z"], (65, 65), None, "s")
    with pytest.raises(ModelInputMismatch, match="channels"):  # fed as stored: the order must be the card's
        check_inputs(card, ["i", "r", "g"], (65, 65), "s")


@pytest.mark.prefect
def test_stampflow_score_refuses_a_store_of_another_frame_with_exit_2_and_one_line(
    trained, raw, tmp_path, capsys
):
    ckpt, _, _ = trained
    other = _write(tmp_path / "other.h5", _framed(raw[0][:4], OTHER), frame=OTHER)
    out = tmp_path / "scored.parquet"
    assert cli_main(["score", "--model", ckpt, "--store", str(other), "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith("ingest with --frame-crop 130 --frame-size 65")
    assert "centre 120 px area-averaged to 65 px" in errors[0]
    assert not out.exists()
