"""Model configurations as frozen dataclasses built from named presets (shared by every model)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(asdict(config)))


def config_from_preset(
    cls: type[C],
    presets: Mapping[str, Mapping[str, Any]],
    preset: str,
    overrides: Mapping[str, Any],
    what: str,
) -> C:
    """``cls(**{**presets[preset], **overrides})``; an unknown preset or setting raises ValueError naming it.

    Args:
        cls: the config dataclass.
        presets: preset name -> settings that differ from the dataclass defaults.
        preset: the preset to build.
        overrides: settings that replace the preset's.
        what: the model's name for messages (``"morphology"``, ``"realbogus"``).
    """
    if preset not in presets:
        raise ValueError(f"unknown {what} preset {preset!r}; known: {sorted(presets)}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown {what} settings {unknown}; known: {sorted(known)}")
    return cls(**{**presets[preset], **overrides})
