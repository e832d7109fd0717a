"""Quality flags of scored alerts: columns beside the score, never a reason to drop an alert.

Each scored alert gets (:data:`data_catalogs.alert_schemas.QUALITY_COLUMNS`, bits in
:data:`data_catalogs.alert_schemas.QUALITY_BITS`):

- ``flag_masked``: ``n_masked`` (masked or NaN pixels of the stamp as scored, padding included) above
  ``masked.max_pixels``;
- ``flag_edge``: a ZTF stamp cut by the CCD edge and padded (:func:`pipeline.alerts.stamps.edge_cut`);
- ``nan_fraction`` and ``flag_nan``: the fraction of the pixels the packet sent that are NaN or blank, above
  ``nan.max_fraction``;
- ``core_peak`` and ``flag_saturated_core``: the peak of the science stamp in a ``(2k+1)^2`` box around the
  candidate (``k = saturation.core_half_width``), at or above the survey's level ``saturation.<survey>``,
  or the packet's own flag where it has one (Rubin ``pixelFlags_saturatedCenter``: ``saturated_center``);
- ``flag_nbad``: the packet's ``nbad`` above ``nbad.max``;
- ``quality_flags``: the set flags' bits summed (0: no flag).

The thresholds are a TOML file (:data:`DEFAULTS_PATH` ships the defaults; :func:`load_quality_config` reads
an operator's file over them). Every flag is computed with numpy on the whole micro-batch at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomllib

from data_catalogs.alert_schemas import FAMILIES, QUALITY_BITS
from pipeline.alerts.stamps import edge_cut

#: The shipped defaults (TOML; copied and changed by operators, passed with ``--quality-config``).
DEFAULTS_PATH = Path(__file__).with_name("quality_defaults.toml")

#: section -> key -> (type, minimum, maximum) of the keys a config may set (besides ``saturation.<survey>``).
_KEYS: dict[str, dict[str, tuple[type, float, float]]] = {
    "masked": {"max_pixels": (int, 0, math.inf)},
    "nan": {"max_fraction": (float, 0.0, 1.0)},
    "saturation": {"core_half_width": (int, 0, 31)},
    "nbad": {"max": (int, 0, math.inf)},
}


class QualityConfigError(ValueError):
    """A quality config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class QualityThresholds:
    """The thresholds of the quality flags (module docstring); ``source``: the files they were read from."""

    masked_max_pixels: int = 0
    nan_max_fraction: float = 0.05
    core_half_width: int = 2
    saturation: dict[str, float] = field(default_factory=lambda: {"ztf": 50000.0})
    nbad_max: int = 0
    source: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The thresholds in the layout of the TOML file, plus ``source`` (for summary.json, table meta)."""
        return {
            "masked": {"max_pixels": self.masked_max_pixels},
            "nan": {"max_fraction": self.nan_max_fraction},
            "saturation": {"core_half_width": self.core_half_width, **self.saturation},
            "nbad": {"max": self.nbad_max},
            "source": list(self.source),
        }


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise QualityConfigError(f"quality config {path}: no such file") from None
    except tomllib.TOMLDecodeError as err:
        raise QualityConfigError(f"quality config {path}: not valid TOML: {err}") from None
    except OSError as err:
        raise QualityConfigError(f"quality config {path}: cannot be read: {err}") from None


def _checked(path: Path, section: str, key: str, value: Any) -> float | int:
    """``value`` of ``section.key`` when it has the key's type and range; else QualityConfigError."""
    if section == "saturation" and key in FAMILIES:
        kind, low, high = float, 0.0, math.inf
    elif key in _KEYS.get(section, {}):
        kind, low, high = _KEYS[section][key]
    else:
        known = sorted(_KEYS[section]) + (list(FAMILIES) if section == "saturation" else [])
        raise QualityConfigError(f"quality config {path}: unknown key {section}.{key} (known: {known})")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)):
        raise QualityConfigError(
            f"quality config {path}: {section}.{key} = {value!r} is not {'an integer' if kind is int else 'a number'}"
        )
    if not low <= value <= high or (kind is float and math.isnan(value)):
        raise QualityConfigError(
            f"quality config {path}: {section}.{key} = {value!r} is outside [{low}, {high}]"
        )
    return kind(value)


def _merge(values: dict[str, dict[str, Any]], path: Path) -> None:
    """Check the TOML file ``path`` and lay its values over ``values`` (section -> key -> value)."""
    for section, table in _read_toml(path).items():
        if section not in _KEYS:
            raise QualityConfigError(
                f"quality config {path}: unknown section [{section}] (known: {sorted(_KEYS)})"
            )
        if not isinstance(table, Mapping):
            raise QualityConfigError(f"quality config {path}: {section} must be a table [{section}]")
        for key, value in table.items():
            values.setdefault(section, {})[key] = _checked(path, section, key, value)


def load_quality_config(path: str | os.PathLike | None = None) -> QualityThresholds:
    """The thresholds of :data:`DEFAULTS_PATH`, with those of the TOML file ``path`` laid over them.

    Raises:
        QualityConfigError: the file is missing or not TOML, or a key is unknown, of the wrong type or out
            of range (the message names the file and the key).
    """
    values: dict[str, dict[str, Any]] = {}
    sources = [DEFAULTS_PATH, *([Path(path)] if path is not None else [])]
    for source in sources:
        _merge(values, source)
    saturation = dict(values.get("saturation", {}))
    return QualityThresholds(
        masked_max_pixels=values["masked"]["max_pixels"],
        nan_max_fraction=values["nan"]["max_fraction"],
        core_half_width=saturation.pop("core_half_width"),
        saturation=saturation,
        nbad_max=values["nbad"]["max"],
        source=tuple(str(s) for s in sources),
    )


def core_peak(stamps: np.ndarray, mask: np.ndarray, half_width: int) -> np.ndarray:
    """``(B,)`` float64 peak of the science channel (0) of ``(B, C, H, W)`` stamps in the ``(2k+1)^2`` box
    at the centre (where :func:`pipeline.alerts.stamps.conform` puts the candidate); masked pixels are left
    out, NaN when the whole box is masked."""
    h, w = stamps.shape[-2:]
    cy, cx, k = h // 2, w // 2, half_width
    box = (slice(None), 0, slice(max(cy - k, 0), cy + k + 1), slice(max(cx - k, 0), cx + k + 1))
    values = np.where(mask[box], -np.inf, stamps[box].astype(np.float64))
    peak = values.reshape(len(stamps), values[0].size if len(values) else 1).max(axis=1, initial=-np.inf)
    return np.where(np.isfinite(peak), peak, np.nan)


def quality_columns(
    stamps: np.ndarray,
    mask: np.ndarray,
    catalog: pd.DataFrame,
    n_masked: np.ndarray,
    thresholds: QualityThresholds,
) -> dict[str, np.ndarray]:
    """The quality columns (module docstring) of a micro-batch, all ``(B,)``.

    Args:
        stamps, mask: ``(B, C, H, W)`` stamps as scored (conformed: padding 0 and masked) and their mask.
        catalog: the alerts' rows (``survey``, ``nbad``, ``saturated_center``, ``cutout_height``,
            ``cutout_width``).
        n_masked: ``(B,)`` masked or NaN pixels of each stamp (the scorer's column).
        thresholds: the configured thresholds.
    """
    b, c, h, w = stamps.shape
    bad = (mask | np.isnan(stamps)).reshape(b, c * h * w).sum(axis=1)
    height = catalog["cutout_height"].to_numpy(np.int64)
    width = catalog["cutout_width"].to_numpy(np.int64)
    received = c * np.clip(height, 0, h) * np.clip(width, 0, w)
    known = received > 0  # a stamp of unknown size: every masked pixel counts
    sent = np.where(known, received, c * h * w)
    bad_sent = np.where(known, bad - (c * h * w - received), bad)
    nan_fraction = np.clip(bad_sent / np.maximum(sent, 1), 0.0, 1.0)
    peak = core_peak(stamps, mask, thresholds.core_half_width)
    survey = catalog["survey"].to_numpy(object)
    level = catalog["survey"].map(thresholds.saturation).to_numpy(np.float64, na_value=np.inf)
    cols = {
        "flag_masked": np.asarray(n_masked) > thresholds.masked_max_pixels,
        "flag_edge": edge_cut(survey, height, width),
        "nan_fraction": nan_fraction.astype(np.float32),
        "flag_nan": nan_fraction > thresholds.nan_max_fraction,
        "core_peak": peak.astype(np.float32),
        # the packet's own word where it has one (Rubin pixelFlags_saturatedCenter), else the level
        "flag_saturated_core": (np.nan_to_num(peak, nan=-np.inf) >= level)
        | (catalog["saturated_center"].to_numpy(np.int64) == 1),
        "flag_nbad": catalog["nbad"].to_numpy(np.int64) > thresholds.nbad_max,
    }
    bits = np.zeros(b, np.int32)
    for name, bit in QUALITY_BITS.items():
        bits |= np.where(cols[name], bit, 0).astype(np.int32)
    cols["quality_flags"] = bits
    return cols


def flag_counts(cols: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Alerts with each flag set, and ``any`` flag set, among scored columns."""
    counts = {name: int(np.count_nonzero(cols[name])) for name in QUALITY_BITS}
    counts["any"] = int(np.count_nonzero(cols["quality_flags"]))
    return counts
