"""Task heads: what each task adds to a scored catalog, from the ``(B, K)`` model outputs.

The :class:`pipeline.scoring.scorer.Scorer` is the same for every task (batches, preparation, inference,
common columns); a head holds what differs (:func:`head_for` picks it by the card's ``task``):

- :class:`RealBogusHead` (``realbogus``): ``p_<class>`` per class of the card's ``output_names``, ``rb`` =
  ``1 - P(bogus)`` (ZTF's naming; the card's ``bogus_class``), ``label`` (``bogus`` when ``rb`` is below the
  card's ``threshold``, 0.5 if absent, else the most probable other class) and ``rbversion``.
- :class:`MorphologyHead` (``morphology``): the 37 Galaxy Zoo answers by label, the derived probabilities
  and classes (:mod:`pipeline.scoring.morphology_classes`; ``label`` = ``morph_class``).

Every head gives, in catalog order: :meth:`~TaskHead.columns` (name -> ``(B,)`` array),
:meth:`~TaskHead.descriptions` (name -> text) and :meth:`~TaskHead.meta` (table meta of the task).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from data_catalogs.galaxy_zoo import ANSWER_COLUMNS, ANSWER_LABELS, QUESTION_OF_ANSWER, QUESTIONS
from pipeline.scoring.morphology_classes import (
    BINARY_CLASSES,
    DEFINITIONS,
    PROBABILITY_COLUMNS,
    derived_labels,
)


class TaskHead(Protocol):
    """The task-specific part of scoring (module docstring)."""

    task: str

    def columns(self, out: np.ndarray) -> dict[str, np.ndarray]:
        """Score, label and derived columns ``(B,)`` from ``(B, K)`` model outputs."""
        ...

    def descriptions(self) -> dict[str, str]:
        """Column -> description of :meth:`columns`."""
        ...

    def meta(self) -> dict[str, Any]:
        """Table meta of the task (threshold, class names, definitions...)."""
        ...


def _names(card: Mapping[str, Any]) -> list[str]:
    return [str(n) for n in card.get("output_names", [])]


class RealBogusHead:
    """Real-bogus columns (ZTF ``rb``/``rbversion`` naming) of a card's ``output_names``, ``threshold``
    (default 0.5) and ``bogus_class`` (default ``bogus``)."""

    task = "realbogus"

    def __init__(self, card: Mapping[str, Any]):
        self.output_names = _names(card)
        self.version = str(card.get("model_version", ""))
        self.threshold = float(card.get("threshold", 0.5))
        self.negative = str(card.get("bogus_class", "bogus"))
        self.temperature = card.get("temperature")
        names = self.output_names
        if self.negative not in names and not ("real" in names or len(names) == 1):
            raise ValueError(f"real-bogus output_names {names} have neither {self.negative!r} nor 'real'")
        self.others = [i for i, n in enumerate(names) if n != self.negative]

    def rb_score(self, out: np.ndarray) -> np.ndarray:
        """``rb`` ``(B,)`` from ``(B, K)`` probabilities: ``1 - P(bogus class)``, else ``P(real)``, else the
        single output."""
        names = self.output_names
        if self.negative in names:
            return (1.0 - out[:, names.index(self.negative)]).astype(np.float32)
        return out[:, names.index("real") if "real" in names else 0]

    def columns(self, out: np.ndarray) -> dict[str, np.ndarray]:
        cols = {f"p_{name}": out[:, i] for i, name in enumerate(self.output_names)}
        cols["rb"] = self.rb_score(out)
        # Above the threshold: the most probable class other than bogus ("real" for two classes).
        others = np.asarray(self.output_names)[self.others]
        best = others[np.argmax(out[:, self.others], axis=1)] if len(others) else np.full(len(out), "real")
        cols["label"] = np.where(cols["rb"] >= self.threshold, best, self.negative)
        cols["rbversion"] = np.full(len(out), self.version)
        return cols

    def descriptions(self) -> dict[str, str]:
        d = {f"p_{name}": f"Model probability that the candidate is {name}" for name in self.output_names}
        d["rb"] = (
            f"Real-bogus score: 1 - P({self.negative}), the model probability that the candidate is not "
            "bogus (ZTF rb convention)"
        )
        d["label"] = (
            f"Predicted class: {self.negative} when rb < {self.threshold:g}, else the most probable other class"
        )
        d["rbversion"] = "Version of the real-bogus model (ZTF rbversion convention)"
        return d

    def meta(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "bogus_class": self.negative,
            "temperature": self.temperature,
            "rbversion": self.version,
        }


def _answer_description(answer: str) -> str:
    question = next(q for q in QUESTIONS if q.name == QUESTION_OF_ANSWER[answer])
    label = question.answer_labels[question.answers.index(answer)]
    return (
        f"Galaxy Zoo {answer} ({question.name} {label!r}): predicted cumulative vote fraction; "
        f"{question.text}"
    )


class MorphologyHead:
    """Galaxy Zoo columns: the 37 answers by label, derived probabilities and classes. The card's
    ``output_names`` must be the 37 Kaggle answers in order."""

    task = "morphology"

    def __init__(self, card: Mapping[str, Any]):
        if _names(card) != list(ANSWER_COLUMNS):
            raise ValueError(
                f"a morphology card must list the 37 answers {ANSWER_COLUMNS[:2]}.. as output_names"
            )

    def columns(self, out: np.ndarray) -> dict[str, np.ndarray]:
        cols = {label: out[:, i] for i, label in enumerate(ANSWER_LABELS)}
        cols.update({name: out[:, ANSWER_COLUMNS.index(a)] for name, a in PROBABILITY_COLUMNS.items()})
        derived = derived_labels(out)
        cols["label"] = derived.pop("morph_class")
        cols.update(derived)
        return cols

    def descriptions(self) -> dict[str, str]:
        d = {label: _answer_description(a) for a, label in zip(ANSWER_COLUMNS, ANSWER_LABELS, strict=True)}
        for name, answer in PROBABILITY_COLUMNS.items():
            d[name] = f"Probability of {name[2:]}: the predicted cumulative fraction {answer}"
        d["label"] = f"Predicted morphology class: {DEFINITIONS['morph_class']}"
        for name in BINARY_CLASSES:
            d[name] = f"Predicted {name}: {DEFINITIONS[name]}"
        return d

    def meta(self) -> dict[str, Any]:
        return {"derived_classes": dict(DEFINITIONS)}


#: task name (the model card's ``task``) -> its head.
HEADS: dict[str, type[RealBogusHead] | type[MorphologyHead]] = {
    RealBogusHead.task: RealBogusHead,
    MorphologyHead.task: MorphologyHead,
}
TASKS = tuple(HEADS)


def head_for(card: Mapping[str, Any]) -> TaskHead:
    """The head of the card's ``task`` (:data:`TASKS`), checked against the card's ``output_names``.

    Raises:
        ValueError: an unknown task, or output names that do not fit it.
    """
    task = card.get("task")
    if task not in HEADS:
        raise ValueError(f"model card task must be one of {TASKS}, got {task!r}")
    return HEADS[task](card)
