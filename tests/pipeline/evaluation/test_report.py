"""Report folders: metrics against hand-counted cases, every figure written and decodable, labels from a
store or a Kaggle-style table, and the page rendered by a real headless browser (Debian's chromium)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, QUESTION_SLICES, cumulative_from_conditional
from pipeline.evaluation import missed_real_at_fpr, morphology_metrics, realbogus_metrics, report_from_files
from pipeline.scoring import score_store
from pipeline.store import open_store
from tests.pipeline.scoring.scoring_helpers import (
    gz_card,
    gz_model,
    rb_card,
    rb_model,
    write_gz_store,
    write_rb_store,
)

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def rb_report(tmp_path_factory) -> Path:
    """A real-bogus report: store -> tiny model -> scored.parquet -> report with labels from the store."""
    root = tmp_path_factory.mktemp("rb")
    store = write_rb_store(root / "rb.h5", n=60)
    score_store(rb_model(), rb_card(threshold=0.5), store, root / "scored.parquet", batch_size=16)
    report_from_files(root / "scored.parquet", store, root / "report", n_gallery=6)
    return root / "report"


@pytest.fixture(scope="module")
def gz_report(tmp_path_factory) -> Path:
    """A morphology report with labels from a Kaggle training_solutions-style CSV joined on GalaxyID."""
    root = tmp_path_factory.mktemp("gz")
    store = write_gz_store(root / "gz.h5", n=30)
    score_store(gz_model(), gz_card(), store, root / "scored.parquet", batch_size=8)
    with open_store(store) as opened:
        ids, answers = opened.catalog(columns=["GalaxyID"])["GalaxyID"], opened.labels("gz_answers")
    solutions = pd.DataFrame(answers, columns=list(ANSWER_COLUMNS)).assign(GalaxyID=ids.to_numpy())
    solutions.iloc[::-1].to_csv(root / "training_solutions.csv", index=False)  # another order than the store
    report_from_files(root / "scored.parquet", root / "training_solutions.csv", root / "report", store=store)
    return root / "report"


class _Images(HTMLParser):
    """The ``src`` and ``data-file`` of every ``<img>`` and the ``href`` of every link of a page."""

    def __init__(self):
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "a":
            self.links.append(dict(attrs)["href"])


def _page_images(report: Path) -> _Images:
    parser = _Images()
    parser.feed((report / "index.html").read_text())
    return parser


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ------------------------------------------------------------------------------------------------ metrics
def test_realbogus_metrics_on_a_hand_counted_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    rb = np.array([0.1, 0.2, 0.6, 0.3, 0.9, 0.8, 0.4, 0.7])
    pred = np.where(rb >= 0.5, "real", "bogus")
    m = realbogus_metrics(y, rb, pred, threshold=0.5)
    assert m["confusion_matrix"] == [[3, 1], [1, 3]]
    assert m["confusion_matrix_normalized"] == [[0.75, 0.25], [0.25, 0.75]]
    assert m["operating_point"]["fpr"] == 0.25 and m["operating_point"]["missed_real_fraction"] == 0.25
    assert m["accuracy"] == 0.75 and m["classification_report"]["real"]["precision"] == 0.75
    assert m["roc_auc"] == pytest.approx(15 / 16)  # 15 of the 16 (real, bogus) pairs ranked right
    at = {r["fpr_target"]: r for r in missed_real_at_fpr(y, rb, (0.0, 0.25))}
    # No false positive allowed: only rb >= 0.7 (above the highest bogus, 0.6) -> 3 of 4 reals kept.
    assert at[0.0]["missed_real_fraction"] == 0.25 and at[0.0]["threshold"] == pytest.approx(0.7)
    # One bogus of four allowed: rb >= 0.4 keeps every real.
    assert at[0.25]["missed_real_fraction"] == 0.0 and at[0.25]["fpr"] == 0.25


def test_morphology_metrics_rmse_and_derived_confusion():
    rng = np.random.default_rng(3)
    cond = rng.random((40, 37))
    for sl in QUESTION_SLICES.values():
        cond[:, sl] /= cond[:, sl].sum(axis=1, keepdims=True)
    true = cumulative_from_conditional(cond)
    pred = np.clip(true + rng.normal(0, 0.05, true.shape), 0, 1)
    m = morphology_metrics(true, pred)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((true - pred) ** 2)))
    for q, sl in QUESTION_SLICES.items():
        assert m["rmse_per_question"][q] == pytest.approx(np.sqrt(np.mean((true[:, sl] - pred[:, sl]) ** 2)))
    morph = m["derived"]["morph_class"]
    assert morph["labels"] == ["smooth", "featured", "star_artifact"]
    assert np.sum(morph["confusion_matrix"]) == 40
    true_counts = np.bincount(np.argmax(true[:, :3], axis=1), minlength=3)
    assert np.sum(morph["confusion_matrix"], axis=1).tolist() == true_counts.tolist()


# ------------------------------------------------------------------------------------------------ folders
@pytest.mark.parametrize("which", ["rb_report", "gz_report"])
def test_report_folder_has_every_figure_and_metric(which, request):
    report: Path = request.getfixturevalue(which)
    metrics = json.loads((report / "metrics.json").read_text())
    for name in metrics["files"]:
        assert (report / name).is_file(), name
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == sorted(n for n in metrics["files"] if n.endswith(".png"))
    for name in pngs:
        image = _decode((report / name).read_bytes())
        assert image.format == "PNG" and min(image.size) > 100
    page = _page_images(report)
    assert sorted(img["data-file"] for img in page.images) == pngs
    for img in page.images:  # embedded copies decode to the same picture as the files
        uri = img["src"]
        assert uri.startswith("data:image/png;base64,")
        embedded = base64.b64decode(uri.split(",", 1)[1])
        assert embedded == (report / img["data-file"]).read_bytes()
    assert all((report / link).is_file() for link in page.links)
    assert "report" in (report / "summary.md").read_text()


def test_realbogus_report_numbers_match_the_catalog(rb_report):
    metrics = json.loads((rb_report / "metrics.json").read_text())
    scored = pd.read_parquet(rb_report.parent / "scored.parquet")
    truth = (scored["store_row"] % 2 == 1).map({True: "real", False: "bogus"})
    m = metrics["metrics"]
    tp = int(((scored["label"] == "real") & (truth == "real")).sum())
    assert m["confusion_matrix"][1][1] == tp and m["n"] == 60 == metrics["n"]
    assert [r["fpr_target"] for r in m["missed_real_at_fpr"]] == [0.001, 0.01, 0.02, 0.05, 0.1]
    assert metrics["model"]["model_name"] == "tiny-rb"
    assert {"roc.png", "precision_recall.png", "gallery.png", "confusion_label_normalized.png"} <= set(
        metrics["files"]
    )


def test_morphology_report_joins_kaggle_labels(gz_report):
    metrics = json.loads((gz_report / "metrics.json").read_text())
    scored = pd.read_parquet(gz_report.parent / "scored.parquet")
    with open_store(gz_report.parent / "gz.h5") as store:
        true = store.labels("gz_answers")
    pred = scored[[c for c in scored.columns if re.match(r"Q\d+_", c)]].to_numpy()
    assert metrics["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean((true - pred) ** 2)), rel=1e-6)
    assert {"rmse_per_question.png", "confusion_bar.png", "confusion_spiral_normalized.png"} <= set(
        metrics["files"]
    )


def test_labels_that_miss_rows_are_refused(tmp_path):
    store = write_rb_store(tmp_path / "rb.h5", n=20)
    score_store(rb_model(), rb_card(), store, tmp_path / "scored.parquet")
    pd.DataFrame({"candid": [1, 2], "real": [0, 1]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match="20 scored rows have no label"):
        report_from_files(tmp_path / "scored.parquet", tmp_path / "labels.csv", tmp_path / "report")


# ------------------------------------------------------------------------------------------------ browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not on PATH (Debian: apt-get install -y chromium)")
@pytest.mark.parametrize("which", ["rb_report", "gz_report"])
def test_report_opens_in_a_headless_browser(which, request, tmp_path):
    report: Path = request.getfixturevalue(which)
    url = (report / "index.html").resolve().as_uri()
    shot = tmp_path / "page.png"
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,2000", url],
        check=True,
        capture_output=True,
        timeout=60,
    )
    image = _decode(shot.read_bytes())
    assert image.size == (1200, 2000)
    assert len(np.unique(np.asarray(image.convert("L")))) > 20  # drawn, not a blank page
    dom = subprocess.run(
        [*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    n_images = len(_page_images(report).images)
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page's image check did not run"
    assert int(loaded.group(1)) == int(loaded.group(2)) == n_images > 0
