"""Model configurations as frozen dataclasses built from named presets (shared by every model).

:class:`PresetConfig` is the base of :class:`models.morphology_config.MorphologyConfig` and
:class:`models.realbogus_config.RealBogusConfig`: the JSON form (:meth:`PresetConfig.to_dict`, which
checkpoints save as hyper-parameters), construction from a preset with overrides
(:meth:`PresetConfig.from_preset`) and the checks shared by the configs' ``__post_init__``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import Any, ClassVar, TypeVar

P = TypeVar("P", bound="PresetConfig")


def int_tuple(values: Any) -> tuple[int, ...]:
    """A sequence of settings as a tuple of ints (JSON lists come back as lists)."""
    return tuple(int(v) for v in values)


def float_tuple(values: Any) -> tuple[float, ...]:
    """A sequence of settings as a tuple of floats."""
    return tuple(float(v) for v in values)


def str_tuple(values: Any) -> tuple[str, ...]:
    """A sequence of settings as a tuple of strings."""
    return tuple(str(v) for v in values)


class PresetConfig:
    """Base of the frozen config dataclasses of the models (its class variables are not settings).

    A subclass sets :attr:`KIND` (the model's name in messages) and :attr:`PRESETS` (preset name -> the
    settings that differ from the dataclass defaults).
    """

    KIND: ClassVar[str] = "model"
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_preset(cls: type[P], preset: str, **overrides: Any) -> P:
        """``cls(**{**PRESETS[preset], **overrides})``; an unknown preset or setting raises ValueError naming it."""
        if preset not in cls.PRESETS:
            raise ValueError(f"unknown {cls.KIND} preset {preset!r}; known: {sorted(cls.PRESETS)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown {cls.KIND} settings {unknown}; known: {sorted(known)}")
        return cls(**{**cls.PRESETS[preset], **overrides})

    def _normalise_fields(self, **convert: Callable[[Any], Any]) -> None:
        """Replace each named field (of a frozen dataclass) by ``convert[name](value)``."""
        for name, fn in convert.items():
            object.__setattr__(self, name, fn(getattr(self, name)))

    @staticmethod
    def _check_choices(choices: Mapping[str, tuple[Any, tuple[Any, ...]]]) -> None:
        """``{setting: (value, allowed values)}``; raises ValueError naming the first value not allowed."""
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
