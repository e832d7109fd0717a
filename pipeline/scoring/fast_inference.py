"""Fast model inference for scoring: the model exported to ONNX and run by ONNX Runtime on CPU, checked
against PyTorch before use.

Measured side by side on 2 AMD EPYC (Zen 5) cores, batch 256, 2 threads (``python -m benchmarks``,
section ``score``; figures and commands in README): ONNX Runtime scores 2.5-3.4x the stamps/s of plain
PyTorch fp32 for the ``hits`` and ``ztf`` Deep-HiTS presets and the ``small`` morphology preset (through an
``inference_parts`` split), with outputs within 1e-6 of PyTorch. Tried and not kept: ``torch.compile``
(inductor, frozen weights: 1.2-1.4x PyTorch, 5 s to compile) and bfloat16 autocast (avx512_bf16: 1.1-2x
PyTorch, slower than ONNX Runtime in fp32, and 2 of 1,000 real-bogus labels changed at the card's threshold
in one run, above the 0.1 % allowed); the benchmark keeps measuring both (``python -m
benchmarks.suite_scoring --with-compile``). Channels-last memory is already the ``hits``/``ztf`` presets'
setting and the 4 rotations already run as one batch (:func:`models.layers.cyclic_slice`).

Backends (:data:`pipeline.scoring.backends.BACKENDS`):

- ``onnxruntime``: the model's prediction (:func:`pipeline.scoring.contract.model_outputs`: ``predict_tensor``,
  else ``predict_step``, else ``forward``) exported with ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis and run by an
  ONNX Runtime CPU session (its MLAS kernels fuse convolution with the activation and use blocked layouts)
  with torch's number of threads. Before use, its outputs on a probe batch are compared with PyTorch's; a
  difference above ``atol`` (1e-4) refuses it.
- ``eager``: PyTorch fp32 under ``torch.inference_mode`` (the reference path).
- ``auto`` (default): ``onnxruntime`` on CPU when it is installed, the model exports and the probe matches;
  otherwise ``eager``, with the reason in :attr:`FastInference.note`. A store of fewer than
  :data:`pipeline.scoring.backends.AUTO_ONNX_MIN_STAMPS` stamps is scored ``eager``
  (:func:`pipeline.scoring.backends.backend_for`): exporting takes 2-10 s,
  more than such a store takes to score.

A model whose prediction cannot be exported as a whole (e.g. NumPy inside its preprocessing) may split it:
``module.inference_parts() -> (pre, net)``, ``pre`` a torch callable run eagerly and ``net`` an
``nn.Module`` exported, with ``net(pre(x))`` equal to the prediction (the model contract:
:class:`pipeline.scoring.contract.ScoringModel`).

Exports are cached in the process by the model's class, structure, hyper-parameters, weights, input shape
and threads, so scoring a store in chunks exports once (every new :class:`FastInference` still checks its
probe).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.scoring.backends import BACKENDS
from pipeline.scoring.contract import ScoringModel, model_outputs, split_inference

log = logging.getLogger(__name__)

#: Largest absolute difference from PyTorch fp32 (probabilities) for a fast path to count as exact.
EXACT_ATOL = 1e-4
#: ONNX Runtime sessions kept per process (see :func:`onnx_session`).
SESSION_CACHE_SIZE = 4


class FastPathError(RuntimeError):
    """The requested backend cannot run this model (not installed, export failed, or not exact)."""


@dataclass(frozen=True)
class InferenceOptions:
    """How a model is run for scoring.

    Attributes:
        backend: ``auto``, ``onnxruntime`` or ``eager`` (:data:`pipeline.scoring.backends.BACKENDS`).
        threads: intra-op threads of the ONNX Runtime session (None: ``torch.get_num_threads()``).
        atol: largest absolute difference from PyTorch fp32 on the probe batch for the fast path to be used.
    """

    backend: str = "auto"
    threads: int | None = None
    atol: float = EXACT_ATOL

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"inference backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


class _Prediction(nn.Module):
    """``forward(x) = model_outputs(module, x)``: the scoring prediction as one exportable module."""

    def __init__(self, module: ScoringModel):
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return model_outputs(self.module, x)


def inference_parts(module: ScoringModel) -> tuple[Callable[[Tensor], Tensor] | None, nn.Module]:
    """``(pre, net)``: the model's own split (:func:`pipeline.scoring.contract.split_inference`), else
    ``(None, the whole prediction)``."""
    return split_inference(module) or (None, _Prediction(module))


# ------------------------------------------------------------------------------------------ onnx runtime
#: Loggers of the exporter silenced while exporting (a model that does not export gets a one-line note).
_EXPORT_LOGGERS = (
    "torch.onnx",
    "torch.export",
    "torch._export",
    "torch._dynamo",
    "torch.fx.experimental.symbolic_shapes",
    "onnxscript",
)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporter: warnings, logs (e.g. 'torchvision is not installed') and the graphs it prints
    when a model does not export (stdout/stderr are captured while exporting)."""
    loggers = [logging.getLogger(name) for name in _EXPORT_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(net: nn.Module, example: Tensor) -> bytes:
    """The ONNX model (serialized bytes) of ``net`` on inputs shaped like ``example`` ``(B >= 2, C, H, W)``,
    with a dynamic batch axis. Raises whatever ``torch.onnx.export`` raises for code it cannot export."""
    if example.shape[0] < 2:
        raise ValueError("the export example needs a batch of at least 2 (a batch of 1 fixes the batch size)")
    with _quiet_export(), torch.no_grad():
        program = torch.onnx.export(
            net,
            (example.detach().float().cpu().contiguous(),),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    return program.model_proto.SerializeToString()


def _fingerprint(net: nn.Module) -> str:
    """sha256 of a module's class, structure (repr: layer settings), the saved hyper-parameters of it and
    its submodules (Lightning ``hparams``: settings that are not layers, e.g. the input normalisation), and
    its parameters and buffers."""
    digest = hashlib.sha256(f"{type(net).__module__}.{type(net).__qualname__}\n{net!r}".encode())
    for name, module in net.named_modules():
        hparams = getattr(module, "hparams", None)
        if hparams:
            digest.update(f"{name}:{sorted(dict(hparams).items())!r}".encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_SESSIONS: OrderedDict[tuple, Any] = OrderedDict()  # key -> session, or the FastPathError of its export
_SESSIONS_LOCK = threading.Lock()
# torch.onnx.export is not thread-safe (nor is silencing stdout/stderr while it runs): one export at a time.
_EXPORT_LOCK = threading.Lock()


def onnx_session(net: nn.Module, example: Tensor, threads: int) -> Any:
    """An ``onnxruntime.InferenceSession`` running ``net`` on CPU (exported by :func:`export_onnx`).

    Sessions are cached per process (least recently used, :data:`SESSION_CACHE_SIZE`), keyed by
    :func:`_fingerprint`, the input shape after the batch axis and ``threads``; so are failed exports
    (the same error is raised again at once instead of exporting again for every chunk).

    Raises:
        ImportError: onnxruntime is not installed.
        FastPathError: the export failed (now or earlier in this process).
    """
    import onnxruntime as ort

    key = (_fingerprint(net), tuple(example.shape[1:]), str(example.dtype), int(threads))
    cached = _cached_session(key)
    if cached is not None:
        return cached
    with _EXPORT_LOCK:
        cached = _cached_session(key)  # another thread may have exported it while this one waited
        if cached is not None:
            return cached
        return _export_session(ort, net, example, threads, key)


def _cached_session(key: tuple) -> Any:
    """The cached session of ``key`` (None if absent); raises the cached FastPathError of a failed export."""
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            return None
        _SESSIONS.move_to_end(key)
        cached = _SESSIONS[key]
    if isinstance(cached, FastPathError):
        raise cached
    return cached


def _export_session(ort: Any, net: nn.Module, example: Tensor, threads: int, key: tuple) -> Any:
    """Export ``net``, start its session and cache it (or the export's error) under ``key``."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    # Threads sleep between calls instead of spinning: the scoring process shares its cores with I/O
    # (measured: no loss at batch 256 on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        model = export_onnx(net, example)
        session: Any = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # the exporter raises many types; remember which
        first_line = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip()).split("\n")[0][:300]
        session = FastPathError(f"{err.__class__.__name__}: {first_line}")
    with _SESSIONS_LOCK:
        _SESSIONS[key] = session
        while len(_SESSIONS) > SESSION_CACHE_SIZE:
            _SESSIONS.popitem(last=False)
    if isinstance(session, FastPathError):
        raise session
    return session


def max_abs_difference(a: Tensor, b: Tensor) -> float:
    """Largest ``|a - b|`` (NaN where exactly one of them is NaN; positions NaN in both count as equal)."""
    a, b = a.float().cpu(), b.float().cpu()
    both = torch.isnan(a) & torch.isnan(b)
    if (torch.isnan(a) ^ torch.isnan(b)).any():
        return float("nan")
    diff = (a - b).abs().masked_fill(both, 0.0)
    return float(diff.max()) if diff.numel() else 0.0


# ---------------------------------------------------------------------------------------------- runner
class FastInference:
    """A model ready to score prepared batches ``(B, C, H, W)`` float32 -> ``(B, K)`` float32 outputs.

    Args:
        module: the model (eval mode; not modified).
        probe: a prepared batch ``(B >= 2, C, H, W)`` shaped like the batches to come: the export example
            and the exactness check.
        options: backend, threads, tolerance (:class:`InferenceOptions`).
        device: where the PyTorch paths run (the ONNX Runtime path is CPU only).
        parts: ``(pre, net)`` to export instead of :func:`inference_parts` of the module (``net(pre(x))``
            must equal :func:`model_outputs`; checked on the probe like any export).

    Attributes:
        backend: the backend in use (``onnxruntime`` or ``eager``).
        probe_difference: largest absolute difference from PyTorch on the probe (None for ``eager``, the
            reference).
        note: why ``auto`` fell back to ``eager`` (empty otherwise).

    Raises:
        FastPathError: ``backend="onnxruntime"`` was asked for and cannot be used (the message says why).
    """

    def __init__(
        self,
        module: ScoringModel,
        probe: Tensor,
        options: InferenceOptions | None = None,
        device: str | torch.device = "cpu",
        parts: tuple[Callable[[Tensor], Tensor] | None, nn.Module] | None = None,
    ):
        self.module = module
        self._parts = parts
        self.options = options or InferenceOptions()
        self.device = torch.device(device)
        self.threads = int(self.options.threads or torch.get_num_threads())
        self.backend = "eager"
        self.probe_difference: float | None = None
        self.note = ""
        self._pre: Callable[[Tensor], Tensor] | None = None
        self._session: Any = None
        wanted = self.options.backend
        if wanted == "eager":
            return
        try:
            self._start_onnxruntime(probe)
        except Exception as err:  # any failure to export/run is a reason to stay on the reference path
            if wanted == "onnxruntime":
                raise FastPathError(f"onnxruntime backend unavailable: {err}") from err
            self.backend, self._session, self._pre = "eager", None, None
            first_line = str(err).strip().split("\n")[0][:300]
            self.note = f"onnxruntime not used: {err.__class__.__name__}: {first_line}"
            log.info("scoring with PyTorch eager: %s", self.note)

    def _start_onnxruntime(self, probe: Tensor) -> None:
        if self.device.type != "cpu":
            raise FastPathError(f"the onnxruntime path runs on CPU, the model is on {self.device}")
        pre, net = self._parts or inference_parts(self.module)
        with torch.no_grad():
            example = pre(probe) if pre is not None else probe
        self._pre, self._session = pre, onnx_session(net, example, self.threads)
        self._input = self._session.get_inputs()[0].name
        self.backend = "onnxruntime"
        self.probe_difference = max_abs_difference(self(probe), self.reference(probe))
        if not self.probe_difference <= self.options.atol:  # NaN counts as a mismatch
            raise FastPathError(
                f"onnxruntime outputs differ from PyTorch by {self.probe_difference:.3g} on the probe batch "
                f"(allowed {self.options.atol:g})"
            )

    def reference(self, x: Tensor) -> Tensor:
        """PyTorch fp32 outputs ``(B, K)`` (the reference path)."""
        with torch.inference_mode():
            return model_outputs(self.module, x.to(self.device)).float()

    def __call__(self, x: Tensor) -> Tensor:
        """Outputs ``(B, K)`` float32 of a prepared batch ``(B, C, H, W)`` (on ``device``; CPU for the
        onnxruntime backend)."""
        if self._session is not None:
            with torch.inference_mode():
                if self._pre is not None:
                    x = self._pre(x)
                array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
            return torch.from_numpy(self._session.run(None, {self._input: array})[0])
        return self.reference(x)

    def describe(self) -> dict[str, Any]:
        """Backend, threads, probe difference and note, for catalogs and benchmarks."""
        return {
            "inference_backend": self.backend,
            "inference_threads": self.threads if self.backend == "onnxruntime" else torch.get_num_threads(),
            "inference_probe_max_abs_diff": self.probe_difference,
            "inference_note": self.note,
        }
