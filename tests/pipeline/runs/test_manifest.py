"""The run folder's manifest.json: input records with sha256, JSON-safe stages, stages merged by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.runs import file_record, input_records, json_safe, read_manifest, record_stage, stage_record


def test_input_records_list_every_file_with_its_sha256(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.fits").write_bytes(b"bb")
    (tmp_path / "d" / "sub" / "a.fits").write_bytes(b"a")
    records = input_records([tmp_path / "d", tmp_path / "missing.fits"])
    assert [Path(r["path"]).name for r in records] == ["b.fits", "a.fits", "missing.fits"]
    assert records[0] == {
        "path": str(tmp_path / "d" / "b.fits"),
        "bytes": 2,
        "sha256": hashlib.sha256(b"bb").hexdigest(),
    }
    assert records[2]["sha256"] is None and records[2]["bytes"] is None
    assert file_record(tmp_path / "d" / "b.fits", sha256="given")["sha256"] == "given"


def test_stage_record_is_strict_json():
    record = stage_record(
        config={"out": Path("runs/x"), "shape": (63, 63), "nan": float("nan"), "n": np.int64(3)},
        seed=np.int64(1),
        timings_s={"ingest": np.float32(1.23456)},
        tasks={"Cached": 2},
    )
    text = json.dumps(record, allow_nan=False)
    assert json.loads(text)["config"] == {"out": "runs/x", "shape": [63, 63], "nan": None, "n": 3}
    assert record["seed"] == 1 and record["timings_s"] == {"ingest": 1.235}
    assert json_safe({1, "a"}) == ["1", "a"] or json_safe({1, "a"}) == [1, "a"]


def test_stages_are_merged_by_name(tmp_path):
    path = tmp_path / "night1" / "manifest.json"
    record_stage(path, "ingest", stage_record(config={"a": 1}))
    record_stage(path, "score", stage_record(config={"b": 2}))
    manifest = record_stage(path, "ingest", stage_record(config={"a": 3}))
    assert read_manifest(path) == manifest
    assert manifest["run"] == "night1" and manifest["package"]["name"] == "stampflow"
    assert {k: v["config"] for k, v in manifest["stages"].items()} == {"ingest": {"a": 3}, "score": {"b": 2}}
    assert "python" in manifest["environment"] and "numpy" in manifest["environment"]
    assert not list(path.parent.glob(".manifest.json.partial-*"))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON manifest"):
        read_manifest(path)
    assert read_manifest(tmp_path / "none.json") is None
