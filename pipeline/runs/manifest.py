"""The run folder's ``manifest.json`` (docs/design.md, "Run folder"): what a run read, how it was configured,
what it wrote and how long each step took, so that a run can be audited and repeated.

One manifest per run folder. Each flow that writes into the folder (ingest, score, report, nightly, the
demo's stages...) records one **stage** under ``stages[<name>]``; a later stage of the same name replaces
it, other stages are kept. Layout::

    {
      "schema_version": 1,
      "run": "<folder name>",
      "package": {"name": "stampflow", "version": "0.1.0"},
      "environment": {"python": "3.11.9", "platform": "...", "numpy": "...", ...},
      "updated": "2026-01-01T00:00:00+00:00",
      "stages": {
        "<name>": {
          "started": ISO time, "finished": ISO time, "seconds": float,
          "config": {...},              # the stage's parameters, JSON
          "seed": int | null,
          "inputs": [{"path", "bytes", "sha256"}, ...],
          "outputs": {"<role>": "<path>", ...},
          "timings_s": {"<step>": seconds, ...},
          "tasks": {"Completed": n, "Cached": n, ...},   # how each task run ended
          ...extra fields
        }
      }
    }

Pure: plain dicts and files, no Prefect (the flows fill in the task states).
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.io import write_text
from pipeline.store import sha256_file

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
#: Libraries whose versions are recorded (those that change numbers when they change).
RECORDED_PACKAGES = ("numpy", "astropy", "h5py", "torch", "lightning", "prefect", "galsim", "pyarrow")


def utc_timestamp() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def file_record(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """``{"path", "bytes", "sha256"}`` of one input file (``sha256`` computed unless given).

    A path that does not exist gets ``bytes`` and ``sha256`` None (it is still listed: nothing an input
    list names is dropped).
    """
    p = Path(path)
    if not p.is_file():
        return {"path": str(p), "bytes": None, "sha256": None}
    return {"path": str(p), "bytes": p.stat().st_size, "sha256": sha256 or sha256_file(p)}


def input_records(
    paths: Iterable[str | os.PathLike], known: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """File records of inputs: each file as given, each folder's files (recursively, sorted by path).

    Args:
        paths: files and/or folders.
        known: path -> sha256 already computed (not hashed again).
    """
    known = known or {}
    out: list[dict[str, Any]] = []
    for item in paths:
        p = Path(item)
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        out.extend(file_record(f, known.get(str(f))) for f in files)
    return out


def environment() -> dict[str, str]:
    """Python, platform and the versions of :data:`RECORDED_PACKAGES` that are installed."""
    env = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in RECORDED_PACKAGES:
        try:
            env[name] = version(name)
        except PackageNotFoundError:
            continue
    return env


def json_safe(value: Any) -> Any:
    """Plain strict-JSON values: paths -> str, tuples/sets -> lists, numpy scalars -> Python, NaN -> None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def stage_record(
    *,
    config: Mapping[str, Any],
    inputs: Sequence[Mapping[str, Any]] = (),
    outputs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    started: str | None = None,
    seconds: float | None = None,
    timings_s: Mapping[str, float] | None = None,
    tasks: Mapping[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One stage of a manifest (module docstring), JSON-safe.

    Args:
        config: the stage's parameters (anything JSON-able after :func:`json_safe`).
        inputs: file records (:func:`file_record`, :func:`input_records`).
        outputs: role -> path of what the stage wrote.
        seed: the seed the stage used, if any.
        started: ISO start time (default: now).
        seconds: wall time of the whole stage, in seconds.
        timings_s: step -> wall seconds.
        tasks: task final state name -> count (e.g. ``{"Completed": 3, "Cached": 5}``).
        extra: further fields (counts, metrics...).
    """
    record = {
        "started": started or utc_timestamp(),
        "finished": utc_timestamp(),
        "seconds": None if seconds is None else round(float(seconds), 3),
        "config": dict(config),
        "seed": seed,
        "inputs": [dict(r) for r in inputs],
        "outputs": dict(outputs or {}),
        "timings_s": {k: round(float(v), 3) for k, v in (timings_s or {}).items()},
        "tasks": dict(tasks or {}),
        **extra,
    }
    return json_safe(record)


def merge_stage(
    manifest: Mapping[str, Any] | None, run: str, stage: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    """A manifest with ``stages[stage] = record`` (other stages of ``manifest`` kept), header refreshed."""
    stages = dict((manifest or {}).get("stages", {}))
    stages[stage] = dict(record)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "package": {"name": "stampflow", "version": __version__},
        "environment": environment(),
        "updated": utc_timestamp(),
        "stages": stages,
    }


def read_manifest(path: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest at ``path``, or None when there is none (a file that is not JSON raises ValueError)."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{p} is not a JSON manifest: {err}") from err


def write_manifest(path: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as indented JSON, atomically (temporary name, then rename)."""
    return write_text(path, json.dumps(json_safe(manifest), indent=2, sort_keys=True) + "\n")


def record_stage(path: str | os.PathLike, stage: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Read the manifest at ``path`` (if any), set ``stages[stage]`` and write it back; returns it.

    The run name is the manifest's folder name.
    """
    p = Path(path)
    manifest = merge_stage(read_manifest(p), p.parent.resolve().name, stage, record)
    write_manifest(p, manifest)
    return manifest
