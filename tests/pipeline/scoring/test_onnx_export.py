"""Self-describing ONNX models (issue 23, item 3): ``stampflow export`` writes the shipped ``ztf_fast`` and
``gz_sdss`` models with their cards in the ONNX metadata; scoring real stores (seven real ZTF packets with
NaN and CCD-edge stamps; six real Kaggle JPEGs ingested with the card's frame) with the ``.onnx`` gives the checkpoint's
columns within 1e-5 and the same labels, in a process that never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from flows.cli import main as cli_main
from models.checkpoints import load_checkpoint, read_card
from models.pretrained import resolve_checkpoint
from pipeline.ingest import AlertSource, GalaxyZooSource, ingest_source
from pipeline.scoring import score_store
from pipeline.scoring.onnx_model import CARD_KEY, OnnxModel, OnnxModelError
from tests.conftest import ZTF_ALERTS, ZTF_CUTOUT_CASES

ROOT = Path(__file__).resolve().parents[3]
GZ_DATA = ROOT / "tests" / "data" / "galaxy_zoo"
TOLERANCE = 1e-5
PACKETS = [ZTF_ALERTS / name for name in ZTF_CUTOUT_CASES]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """Both shipped models exported by the CLI."""
    folder = tmp_path_factory.mktemp("onnx")
    for name in ("ztf_fast", "gz_sdss"):
        assert cli_main(["export", "--model", name, "--onnx", str(folder / f"{name}.onnx")]) == 0
    return {name: folder / f"{name}.onnx" for name in ("ztf_fast", "gz_sdss")}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stores")
    ztf = ingest_source(AlertSource(inputs=PACKETS), folder / "ztf.h5")
    gz = GalaxyZooSource(
        catalog=GZ_DATA / "kaggle_rounded_rows.csv",
        images_dir=GZ_DATA / "kaggle_real_images",
        workers=1,
        frame_crop=299,  # gz_sdss's frame, at ingest as operations run it (a raw store is framed in
        frame_size=65,  # memory by pipeline.prep's torch code)
    )
    assert ztf.n_ingested == 7 and ingest_source(gz, folder / "gz.h5").n_ingested == 6
    return {"ztf_fast": folder / "ztf.h5", "gz_sdss": folder / "gz.h5"}


def _assert_same_catalog(from_ckpt: pd.DataFrame, from_onnx: pd.DataFrame) -> None:
    assert list(from_onnx.columns) == list(from_ckpt.columns) and len(from_onnx) == len(from_ckpt)
    for name in from_ckpt.columns:
        a, b = from_ckpt[name].to_numpy(), from_onnx[name].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, atol=TOLERANCE, rtol=0, err_msg=name)
        else:
            assert (a == b).all(), name  # labels, ids, flags, model name and version: identical


def test_metadata_describes_the_model(exported):
    card = read_card(resolve_checkpoint("ztf_fast"))
    proto = onnx.load(exported["ztf_fast"], load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[CARD_KEY])["weights_sha256"] == card["weights_sha256"]
    assert meta["model_name"] == card["model_name"] and meta["model_version"] == card["model_version"]
    assert json.loads(meta["channels"]) == card["channels"] and json.loads(meta["stamp_shape"]) == [63, 63]
    assert json.loads(meta["output_names"]) == ["bogus", "real"]
    assert meta["training_data_sha256"] == card["training_data_sha256"]
    assert float(meta["threshold"]) == card["threshold"] and float(meta["temperature"]) > 0
    gz = {p.key: p.value for p in onnx.load(exported["gz_sdss"]).metadata_props}
    assert json.loads(gz["frame"]) == {"crop": 299, "size": 65} and len(json.loads(gz["output_names"])) == 37


@pytest.mark.parametrize("name", ["ztf_fast", "gz_sdss"])
def test_onnx_scores_a_real_store_as_the_checkpoint(name, exported, stores, tmp_path):
    module, card = load_checkpoint(resolve_checkpoint(name))
    score_store(module, card, stores[name], tmp_path / "ckpt.parquet")
    script = (
        "import sys; from pipeline.scoring import score_store; "
        "from pipeline.scoring.onnx_model import OnnxModel; "
        f"m = OnnxModel({str(exported[name])!r}); "
        f"score_store(m, m.card, {str(stores[name])!r}, {str(tmp_path / 'onnx.parquet')!r}); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    from_ckpt = pd.read_parquet(tmp_path / "ckpt.parquet")
    _assert_same_catalog(from_ckpt, pd.read_parquet(tmp_path / "onnx.parquet"))
    assert from_ckpt["Q1_smooth" if name == "gz_sdss" else "rb"].nunique() > 1  # real, varied scores


@pytest.mark.prefect
def test_score_command_takes_the_onnx(exported, stores, tmp_path, capsys):
    """``stampflow score --model OUT.onnx`` (its flow, cached on the .onnx's sha256) writes the checkpoint's
    catalog (the torch-free run of the same scoring is checked above)."""
    store = stores["ztf_fast"]
    args = ["score", "--store", str(store), "--out"]
    assert cli_main([*args, str(tmp_path / "onnx.parquet"), "--model", str(exported["ztf_fast"])]) == 0
    assert json.loads(capsys.readouterr().out)["inference_backend"] == "onnxruntime"
    module, card = load_checkpoint(resolve_checkpoint("ztf_fast"))
    score_store(module, card, store, tmp_path / "ckpt.parquet")
    from_onnx = pd.read_parquet(tmp_path / "onnx.parquet")
    _assert_same_catalog(pd.read_parquet(tmp_path / "ckpt.parquet"), from_onnx)
    assert len(from_onnx) == 7


def test_alerts_score_takes_the_onnx_without_torch(exported, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for packet in PACKETS:
        (inbox / packet.name).write_bytes(packet.read_bytes())
    args = ["alerts", "score", str(inbox), "--out"]
    assert cli_main([*args, str(tmp_path / "ckpt"), "--model", "ztf_fast", "--json"]) == 0
    script = (
        "import sys; from flows.cli import main; "
        f"code = main({[*args, str(tmp_path / 'onnx'), '--model', str(exported['ztf_fast']), '--json']!r}); "
        "assert code == 0, code; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    from_ckpt = pd.read_parquet(tmp_path / "ckpt" / "scored.parquet").drop(columns="scored_at")
    assert len(from_ckpt) == 7
    _assert_same_catalog(
        from_ckpt, pd.read_parquet(tmp_path / "onnx" / "scored.parquet").drop(columns="scored_at")
    )


def test_an_onnx_without_a_card_is_refused_by_name(tmp_path):
    bare = tmp_path / "bare.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "bare",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 2])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), bare)
    with pytest.raises(OnnxModelError, match=r"bare\.onnx: no stampflow model card.*stampflow export"):
        OnnxModel(bare)
