"""Score stamps with a trained model into a scored catalog (docs/design.md, "Scored catalog").

The model is an already-loaded ``torch.nn.Module`` that meets :class:`pipeline.scoring.contract.ScoringModel`,
plus its model card (loading checkpoints is the models layer's job: ``models.checkpoints.load_checkpoint``). Scoring streams: batches of stamps are read, prepared
exactly as in training (:class:`pipeline.prep.batch.BatchPrep`, no augmentation), run through the model
(:mod:`pipeline.scoring.fast_inference`: by default ONNX Runtime on CPU when it matches PyTorch within 1e-4, else
PyTorch fp32 under ``torch.inference_mode``) and turned into catalog rows that are written
out chunk by chunk (:class:`pipeline.io.catalogs.ParquetTableWriter`), so memory stays constant whatever the
number of stamps.

Output columns, in order (:meth:`Scorer.columns`):

- ``store_row`` (index of the stamp in its store), then the store's catalog columns verbatim (``object_id``,
  ``source``, ``ra``/``dec`` in deg, survey ids such as ``objectId``, ``candid``, ``GalaxyID``); a catalog
  column whose name a score column uses is kept as ``<name>_input``.
- the task's columns, from its head (:mod:`pipeline.scoring.heads`):
- **real-bogus**: ``p_<class>`` for each class of the card's ``output_names`` (calibrated probabilities, as
  the model's ``predict_step`` gives them), ``rb`` = ``1 - p_bogus`` (ZTF's naming; the card's
  ``bogus_class``), ``label`` (``bogus`` when ``rb`` is below the card's ``threshold``, 0.5 if absent; else
  the most probable other class, ``real`` for two classes) and ``rbversion`` (the model version).
- **morphology**: the 37 Kaggle cumulative vote fractions named by answer (``Q1_smooth`` .. ``Q11_cant_tell``,
  :data:`data_catalogs.galaxy_zoo.ANSWER_LABELS`), the derived probabilities ``p_smooth``, ``p_featured``,
  ``p_star_artifact``, ``p_edge_on``, ``p_bar``, ``p_spiral``, the derived classes ``label`` (=
  ``morph_class``: smooth / featured / star_artifact), ``edge_on``, ``bar``, ``spiral``
  (:mod:`pipeline.scoring.morphology_classes`).
- ``n_masked`` (masked or NaN pixels of the stamp as scored, all channels; of a stamp framed in memory, the
  framed pixels whose area includes one) and ``flag_masked`` (``n_masked > 0``):
  such stamps are scored (masked pixels filled as in training), never dropped.
- ``model_name``, ``model_version``.

Table meta: task, model name/version, ``model_sha256`` (weights checksum), training data hash, architecture,
threshold, preprocessing, the card's ``frame``, input store and its ``source_sha256``/``config_hash``,
``input_adapted`` (how its stamps were fitted to the card: channels reordered by name, frame applied in
memory; empty when as stored), ``code_version``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import __version__
from pipeline.io import ParquetTableWriter, output_format, publish_catalog, staging_parquet_path
from pipeline.prep import describe_frame, frame_from
from pipeline.scoring.backends import backend_for
from pipeline.scoring.heads import TaskHead, head_for
from pipeline.scoring.inputs import DEFAULT_BATCH_SIZE, StampBatch, iter_store_batches
from pipeline.scoring.model_inputs import check_inputs, plan_store_inputs
from pipeline.store import open_store

if TYPE_CHECKING:  # torch is imported where a torch model runs: an ONNX model scores without it
    import torch

    from pipeline.prep import BatchPrep
    from pipeline.scoring.contract import ScoringModel
    from pipeline.scoring.fast_inference import FastInference

log = logging.getLogger(__name__)

#: Stamps in the probe batch that sets up and checks the fast inference path (:meth:`Scorer.prepare`).
PROBE_STAMPS = 8
#: How far outside [0, 1] a model output may be (float rounding) before it is refused as not a probability.
PROBABILITY_TOLERANCE = 1e-4
#: Units of catalog columns known by name (everything else is dimensionless or unknown).
CATALOG_UNITS = {"ra": "deg", "dec": "deg"}
CATALOG_DESCRIPTIONS = {
    "store_row": "Index of the stamp in the input stamp store (0-based)",
    "object_id": "Object identifier (rows of one object share it)",
    "source": "Input file or packet the stamp came from",
    "ra": "Right ascension (ICRS)",
    "dec": "Declination (ICRS)",
}


def scoring_prep(module: ScoringModel, card: Mapping[str, Any]) -> BatchPrep:
    """How batches are prepared for this model: the card's ``data_config`` (fill, keep_mask, preprocess),
    over the model's own ``data_config()`` when it has one (which gives the preprocessing callables a JSON
    card cannot hold; the card wins where both say something)."""
    from pipeline.prep import PREP_KEYS, BatchPrep
    from pipeline.scoring.contract import prep_config

    config = {k: v for k, v in prep_config(module).items() if k in PREP_KEYS}
    config.update({k: v for k, v in (card.get("data_config") or {}).items() if k in PREP_KEYS})
    return BatchPrep.from_config(config)


class Scorer:
    """A model and its card, ready to turn :class:`StampBatch` es into catalog columns.

    Args:
        module: the model (moved to ``device`` and put in eval mode).
        card: its model card (``task``, ``output_names``, ``model_name``, ``model_version``, ``channels``,
            ``stamp_shape``, ``data_config``, ``threshold`` for real-bogus, ...).
        device: torch device to run on.
        backend: how the model runs (:mod:`pipeline.scoring.fast_inference`): ``auto`` (default: ONNX Runtime on
            CPU when it matches PyTorch within 1e-4 on a probe batch, else PyTorch), ``onnxruntime`` (fail
            if it cannot be used) or ``eager`` (PyTorch, the reference).
        threads: ONNX Runtime threads (None: torch's).

    The inference path is set up when the stamp shape is known: from the card's ``channels`` and
    ``stamp_shape``, else at the first batch (or :meth:`prepare`).
    """

    def __init__(
        self,
        module: ScoringModel,
        card: Mapping[str, Any],
        device: str | torch.device = "cpu",
        *,
        backend: str = "auto",
        threads: int | None = None,
    ):
        import torch

        from pipeline.scoring.fast_inference import InferenceOptions

        self._init_card(card)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.prep = scoring_prep(module, self.card)
        self.inference_options = InferenceOptions(backend, threads)
        self.fast: FastInference | None = None  # the inference path of the last stamp shape scored
        self._fast_by_shape: dict[tuple[int, ...], FastInference] = {}
        channels, hw = self.card.get("channels"), self.card.get("stamp_shape")
        if channels and hw and len(hw) == 2:
            self.prepare((len(channels), int(hw[0]), int(hw[1])))

    def _init_card(self, card: Mapping[str, Any]) -> None:
        """The card and what comes from it alone: task head, output names, model name and version."""
        self.card = dict(card)
        self.head: TaskHead = head_for(self.card)
        self.task = self.head.task
        self.output_names = [str(n) for n in self.card.get("output_names", [])]
        self.model_name = str(self.card.get("model_name", ""))
        self.model_version = str(self.card.get("model_version", ""))

    # ------------------------------------------------------------------------------------------ model
    def prepare(self, stamp_shape: Sequence[int]) -> FastInference:
        """Set up the inference path for raw stamps of ``(C, H, W)`` (once per shape; later calls return it).

        The probe batch is :data:`PROBE_STAMPS` seeded noise stamps with a central source, prepared like
        every batch; it is the export example and the exactness check of the fast path.
        """
        import torch

        from pipeline.scoring.fast_inference import FastInference

        shape = tuple(int(v) for v in stamp_shape)
        if shape not in self._fast_by_shape:
            raw = probe_stamps(shape)
            with torch.no_grad():
                probe = self.prep(torch.from_numpy(raw).to(self.device), None)
            self._fast_by_shape[shape] = FastInference(
                self.module, probe, self.inference_options, self.device
            )
        self.fast = self._fast_by_shape[shape]
        return self.fast

    def predict(self, stamps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """``(B, C, H, W)`` raw stamps (+ mask) -> ``(B, K)`` float32 model outputs (probabilities)."""
        k = len(self.output_names)
        if stamps.shape[0] == 0:
            return np.zeros((0, k), np.float32)
        out = self._outputs(stamps, mask)
        if out.ndim != 2 or out.shape[1] != k:
            raise ValueError(
                f"the model returned shape {out.shape}; its card lists {k} outputs {self.output_names}"
            )
        lo, hi = np.nanmin(out), np.nanmax(out)
        if lo < -PROBABILITY_TOLERANCE or hi > 1 + PROBABILITY_TOLERANCE:
            raise ValueError(
                f"model outputs span [{lo:.4g}, {hi:.4g}]: not probabilities or vote fractions; scoring "
                "expects predict_tensor/predict_step to return them (softmax or the Galaxy Zoo tree applied)"
            )
        return out

    def _outputs(self, stamps: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``(B, K)`` float32 outputs of raw stamps, prepared and run by the inference path."""
        import torch

        fast = self.prepare(stamps.shape[1:])
        with torch.inference_mode():
            # Like training (StoreBatchDataset), the mask is used only when it changes the result: masked
            # pixels are stored as 0, which filling with zeros leaves as they are.
            x = torch.from_numpy(np.ascontiguousarray(stamps, np.float32)).to(self.device)
            x = self.prep(x, mask if self.prep.needs_mask else None)
            return fast(x).float().cpu().numpy()

    # ------------------------------------------------------------------------------------------ columns
    def columns(self, batch: StampBatch, first_row: int = 0) -> dict[str, np.ndarray]:
        """All catalog columns of one scored batch (``first_row`` numbers the rows if ``batch.rows`` is None).

        Returns:
            column name -> ``(B,)`` array, in the order of the module docstring.
        """
        check_inputs(self.card, None, batch.stamps.shape[1:], "the stamps")
        b = len(batch)
        out = self.predict(batch.stamps, batch.mask)
        scores = self.head.columns(out)
        rows = batch.rows if batch.rows is not None else np.arange(first_row, first_row + b, dtype=np.int64)
        cols: dict[str, np.ndarray] = {"store_row": np.asarray(rows, np.int64)}
        reserved = {*scores, "n_masked", "flag_masked", "model_name", "model_version", "store_row"}
        for name in batch.catalog.columns:
            cols[f"{name}_input" if name in reserved else str(name)] = batch.catalog[name].to_numpy()
        cols.update(scores)
        bad = (
            np.isnan(batch.stamps) if batch.mask is None else np.isnan(batch.stamps) | batch.mask.astype(bool)
        )
        cols["n_masked"] = bad.reshape(b, int(np.prod(bad.shape[1:]))).sum(axis=1).astype(np.int32)
        cols["flag_masked"] = cols["n_masked"] > 0
        cols["model_name"] = np.full(b, self.model_name)
        cols["model_version"] = np.full(b, self.model_version)
        return cols

    # ------------------------------------------------------------------------------------------ metadata
    @property
    def units(self) -> dict[str, str]:
        """Column -> unit (``ra``/``dec`` in deg; scores are dimensionless)."""
        return dict(CATALOG_UNITS)

    @property
    def descriptions(self) -> dict[str, str]:
        """Column -> description, for the columns this scorer adds (and the common catalog ones)."""
        d = dict(CATALOG_DESCRIPTIONS)
        d["n_masked"] = (
            "Number of masked or NaN pixels of the stamp over all channels (filled before scoring)"
        )
        d["flag_masked"] = "True when the stamp has masked or NaN pixels (scored with them filled)"
        d["model_name"] = "Name of the model that produced the scores"
        d["model_version"] = "Version of the model that produced the scores"
        d.update(self.head.descriptions())
        return d

    @property
    def inference(self) -> dict[str, Any]:
        """How the model runs: ``inference_backend`` (``onnxruntime`` or ``eager``; the requested one until
        :meth:`prepare`), threads, probe difference and fallback note."""
        if self.fast is not None:
            return self.fast.describe()
        return {"inference_backend": self.inference_options.backend}

    @property
    def meta(self) -> dict[str, Any]:
        """Table meta: what produced the scores (model, its checksum and training data, code version)."""
        c = self.card
        meta: dict[str, Any] = {
            "task": self.task,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_sha256": c.get("weights_sha256", ""),
            "training_data_sha256": c.get("training_data_sha256", ""),
            "architecture": c.get("architecture", ""),
            "channels": list(c.get("channels") or []),
            "stamp_shape": list(c.get("stamp_shape") or []),
            "frame": describe_frame(frame_from(c["frame"])) if "frame" in c else "",
            "output_names": self.output_names,
            "normalisation": c.get("normalisation", ""),
            "preprocess": self.prep.preprocess_name or "",
            "fill": self.prep.fill,
            "keep_mask": self.prep.keep_mask,
            "code_version": f"stampflow {__version__}",
            **self.inference,
        }
        meta.update(self.head.meta())
        return meta


def probe_stamps(stamp_shape: Sequence[int]) -> np.ndarray:
    """:data:`PROBE_STAMPS` seeded raw stamps ``(N, C, H, W)`` float32: noise and a central source."""
    c, h, w = (int(v) for v in stamp_shape)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (2 * (max(h, w) / 10) ** 2))
    raw = rng.normal(0.0, 1.0, (PROBE_STAMPS, c, h, w)) + rng.uniform(0, 20, (PROBE_STAMPS, c, 1, 1)) * blob
    return raw.astype(np.float32)


def score_batches(scorer: Scorer, batches: Iterable[StampBatch]) -> Iterator[dict[str, np.ndarray]]:
    """Lazily score an iterable of batches: one dict of catalog columns per batch, nothing held back."""
    first = 0
    for batch in batches:
        yield scorer.columns(batch, first_row=first)
        first += len(batch)


@dataclass
class ScoreResult:
    """What :func:`score_store` wrote and measured."""

    catalog: str
    task: str
    model_name: str
    model_version: str
    n_scored: int
    n_flagged_masked: int
    seconds: float
    stamps_per_s: float
    inference_backend: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scorer_of(module: Any, card: Mapping[str, Any], device: Any, backend: str, threads: Any) -> Scorer:
    """The scorer of a torch model, or of an :class:`pipeline.scoring.onnx_model.OnnxModel` (no torch)."""
    from pipeline.scoring.onnx_model import OnnxModel, OnnxScorer

    if isinstance(module, OnnxModel):
        return OnnxScorer(module, card)
    return Scorer(module, card, device, backend=backend, threads=threads)


def score_store(
    module: ScoringModel,
    card: Mapping[str, Any],
    store: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    columns: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    backend: str = "auto",
    threads: int | None = None,
    start: int = 0,
    stop: int | None = None,
) -> ScoreResult:
    """Score the stamps of a store (all, or rows ``[start, stop)``: one chunk of a chunked flow) and write
    the scored catalog (Parquet, or FITS/CSV on request).

    Args:
        module: the loaded model (eval mode is set here).
        card: its model card.
        store: path of the stamp store.
        out: output file; the format comes from its suffix (``.parquet``, ``.fits``, ``.csv``) or ``fmt``.
        fmt: ``parquet``, ``fits`` or ``csv`` to override the suffix.
        batch_size: stamps per batch; memory grows with it, not with the number of stamps.
        columns: store catalog columns to carry (default: all).
        device: torch device.
        backend, threads: how the model runs (:class:`Scorer`; the default ``auto`` is ONNX Runtime on CPU
            when exact to 1e-4, else PyTorch); recorded in the catalog meta.
        start, stop: the row range to score (``stop`` None: to the end); the catalog's ``row`` column
            keeps the store's row numbers.

    The store's stamps are fitted to the card first (:func:`pipeline.scoring.model_inputs.plan_inputs`):
    channels that are the card's in another order are reordered by name, and a store ingested without a
    frame gets the card's frame applied in memory; each such change is logged and listed in the meta's
    ``input_adapted``.

    Raises:
        ModelInputMismatch: the card's channels, stamp size or frame differ from the store's (both named;
            for frames, the ingest options that fix it).
        pipeline.scoring.fast_inference.FastPathError: ``backend="onnxruntime"`` cannot run this model.
    """
    t0 = time.perf_counter()
    out = Path(out)
    fmt = output_format(out, fmt)
    with open_store(store) as opened:
        attrs, plan = opened.attrs, plan_store_inputs(card, opened)
        scorer = _scorer_of(module, card, device, backend_for(backend, opened.n), threads)
        scorer.prepare(plan.stamp_shape((len(opened.channels), *opened.stamp_shape)))
        meta = {
            **scorer.meta,
            "input": str(store),
            "input_sha256": str(attrs.get("source_sha256", "")),
            "config_hash": str(attrs.get("config_hash", "")),
            "input_channels": list(opened.channels),
            "input_adapted": "; ".join(plan.notes),
            "n_input": opened.n,
        }
        parquet_path = staging_parquet_path(out, fmt)
        n_flagged = 0
        batches = map(plan.apply, iter_store_batches(opened, batch_size, columns, start, stop))
        with ParquetTableWriter(parquet_path, scorer.units, scorer.descriptions, meta) as writer:
            for cols in score_batches(scorer, batches):
                writer.write(cols)
                n_flagged += int(cols["flag_masked"].sum())
        n = writer.n_rows
    publish_catalog(parquet_path, out, fmt)
    seconds = time.perf_counter() - t0
    log.info("scored %d stamps of %s into %s in %.1f s", n, store, out, seconds)
    return ScoreResult(
        catalog=str(out),
        task=scorer.task,
        model_name=scorer.model_name,
        model_version=scorer.model_version,
        n_scored=n,
        n_flagged_masked=n_flagged,
        seconds=round(seconds, 3),
        stamps_per_s=round(n / seconds, 1) if seconds > 0 else float("nan"),
        inference_backend=scorer.inference["inference_backend"],
    )
