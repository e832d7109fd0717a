"""Which inference backend scores a store (names only, no torch: the ONNX-only scoring path imports it).

- :data:`BACKENDS`: ``auto``, ``onnxruntime``, ``eager`` (what each does: :mod:`pipeline.scoring.fast_inference`).
- :func:`backend_for`: ``auto`` runs ``eager`` on a store of fewer than :data:`AUTO_ONNX_MIN_STAMPS` stamps,
  where exporting the model to ONNX would take longer than scoring it.
"""

from __future__ import annotations

BACKENDS = ("auto", "onnxruntime", "eager")
#: ``auto`` exports to ONNX only for stores of at least this many stamps: the export (2 s for ``ztf_fast``,
#: 10 s for ``small``, measured on 2 cores) pays for itself at about 20,000 stamps of ``small``, which PyTorch
#: scores at about 630 stamps/s on one core.
AUTO_ONNX_MIN_STAMPS = 20_000


def backend_for(backend: str, n_stamps: int) -> str:
    """The backend to run for a store of ``n_stamps`` stamps (its whole size, also when it is scored in
    chunks): ``auto`` is ``eager`` below :data:`AUTO_ONNX_MIN_STAMPS`; any other backend as asked."""
    return "eager" if backend == "auto" and n_stamps < AUTO_ONNX_MIN_STAMPS else backend
