"""The fuzz suite's options, its round loop and its JSON summary.

Default (CI): a fixed seed and a few rounds per input kind (the whole suite in about a minute on 2 cores).
Long mode: ``--fuzz-seconds 600`` (or ``STAMPFLOW_FUZZ_SECONDS``) keeps generating rounds until the time
is up, shared evenly by the fuzz tests; ``--fuzz-seed N`` (``STAMPFLOW_FUZZ_SEED``) picks the seed and
``--fuzz-round R`` (``STAMPFLOW_FUZZ_ROUND``) replays one round. At the end a JSON summary (rounds and
cases of each kind, by mutation) is printed, and written to ``STAMPFLOW_FUZZ_REPORT`` when set. A failing
test lists each distinct failure once, with its seed, round, case and the command that replays it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FUZZ_DIR = Path(__file__).resolve().parent
DEFAULT_SEED = 20240518
_SUMMARY: dict[str, Any] = {"kinds": {}}
_STATE = {"remaining_tests": 0, "deadline": None}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fuzz", "stampflow fuzz suite (tests/fuzz)")
    group.addoption("--fuzz-seconds", type=float, default=None, help="long mode: fuzz for this many seconds")
    group.addoption("--fuzz-seed", type=int, default=None, help=f"seed (default {DEFAULT_SEED})")
    group.addoption("--fuzz-round", type=int, default=None, help="replay only this round of the seed")


def _option(config: pytest.Config, name: str, env: str, cast: type) -> Any:
    value = config.getoption(name, default=None)  # None when this conftest was not loaded at start-up
    if value is None and os.environ.get(env):
        value = cast(os.environ[env])
    return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _STATE["remaining_tests"] = sum(1 for item in items if FUZZ_DIR in Path(item.fspath).parents)
    seconds = _option(config, "--fuzz-seconds", "STAMPFLOW_FUZZ_SECONDS", float)
    if seconds:
        _STATE["deadline"] = time.monotonic() + seconds


def mutation_class(mutation: str) -> str:
    """``truncate`` of ``mef/truncate@12/400``: the mutation without its context and its details."""
    return re.split(r"[@:\[=]", mutation.split("/", 1)[-1], maxsplit=1)[0]


def _signature(kind: str, problem: str) -> str:
    """A failure's class: the mutation kind and the problem with names and numbers blanked."""
    mutation = re.match(r"\[([^\]]+)\]", problem)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|/\S+|\d+(\.\d+)?", "#", problem.split("]", 1)[-1])
    return f"{kind}|{mutation_class(mutation.group(1)) if mutation else '-'}|{text[:160]}"


class FuzzRun:
    """The rounds of one fuzz test: each round gets its own generator from ``(seed, kind, round)``.

    Bounded mode runs ``default_rounds`` rounds; long mode runs rounds until this test's share of the
    time is spent; a replay runs one round.
    """

    def __init__(self, request: pytest.FixtureRequest):
        config = request.config
        self.nodeid = request.node.nodeid
        self.kind = request.node.name.removeprefix("test_")
        self.seed = _option(config, "--fuzz-seed", "STAMPFLOW_FUZZ_SEED", int)
        self.seed = DEFAULT_SEED if self.seed is None else self.seed
        self.only_round = _option(config, "--fuzz-round", "STAMPFLOW_FUZZ_ROUND", int)
        self.deadline = None
        if _STATE["deadline"] is not None and self.only_round is None:
            share = (_STATE["deadline"] - time.monotonic()) / max(1, _STATE["remaining_tests"])
            self.deadline = time.monotonic() + max(share, 1.0)
        self.stats = {"rounds": 0, "cases": 0, "mutations": Counter(), "failed_rounds": 0}
        self.failures: dict[str, str] = {}

    def rounds(self, default_rounds: int) -> Iterator[tuple[int, np.random.Generator]]:
        """``(round, generator)`` for each round to run."""
        if self.only_round is not None:
            numbers: Iterator[int] = iter([self.only_round])
        elif self.deadline is None:
            numbers = iter(range(default_rounds))
        else:
            numbers = iter(range(10**9))
        for number in numbers:
            if self.deadline is not None and number > 0 and time.monotonic() > self.deadline:
                return
            kind_code = int.from_bytes(self.kind.encode()[:8].ljust(8, b"\0"), "little")
            yield number, np.random.default_rng(np.random.SeedSequence([self.seed, kind_code, number]))

    def run(
        self,
        one_round: Callable[[Path, np.random.Generator], tuple[list, list[str]]],
        folder: Path,
        default_rounds: int,
    ) -> None:
        """Run ``one_round(folder / "r<n>", generator)`` for each round, record its cases (objects with a
        ``mutation``, or mutation names) and problems, and :meth:`finish`."""
        for number, rng in self.rounds(default_rounds):
            cases, problems = one_round(folder / f"r{number}", rng)
            self.record(number, [getattr(c, "mutation", c) for c in cases], problems)
        self.finish()

    def replay(self, number: int) -> str:
        return (
            f".venv/bin/python -m pytest -p no:cacheprovider -q {shlex.quote(self.nodeid)} "
            f"--fuzz-seed {self.seed} --fuzz-round {number}"
        )

    def record(self, number: int, mutations: list[str], problems: list[str]) -> None:
        """Count a round's cases and keep the first example of each distinct failure."""
        self.stats["rounds"] += 1
        self.stats["cases"] += len(mutations)
        self.stats["mutations"].update(mutation_class(m) for m in mutations)
        if problems:
            self.stats["failed_rounds"] += 1
        for problem in problems:
            sig = _signature(self.kind, problem)
            if sig not in self.failures:
                self.failures[sig] = (
                    f"seed={self.seed} round={number} kind={self.kind}\n    {problem}\n"
                    f"    replay: {self.replay(number)}"
                )

    def finish(self) -> None:
        """Add this test to the summary; fail listing each distinct failure (with its replay command)."""
        _STATE["remaining_tests"] = max(0, _STATE["remaining_tests"] - 1)
        stats = {**self.stats, "mutations": dict(sorted(self.stats["mutations"].items()))}
        _SUMMARY["kinds"][self.kind] = {**stats, "distinct_failures": len(self.failures)}
        _SUMMARY["seed"] = self.seed
        if self.failures:
            listing = "\n".join(f"- {text}" for text in self.failures.values())
            pytest.fail(
                f"fuzz {self.kind}: {len(self.failures)} distinct failure(s) in "
                f"{self.stats['failed_rounds']}/{self.stats['rounds']} round(s):\n{listing}",
                pytrace=False,
            )


@pytest.fixture
def fuzz(request: pytest.FixtureRequest) -> Iterator[FuzzRun]:
    """The :class:`FuzzRun` of this test (call ``finish()`` at its end)."""
    yield FuzzRun(request)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _SUMMARY["kinds"]:
        return
    totals = defaultdict(int)
    for stats in _SUMMARY["kinds"].values():
        totals["rounds"] += stats["rounds"]
        totals["cases"] += stats["cases"]
    summary = {**_SUMMARY, "totals": dict(totals)}
    text = json.dumps(summary, sort_keys=True)
    terminalreporter.write_sep("-", "fuzz summary")
    terminalreporter.write_line(text)
    if os.environ.get("STAMPFLOW_FUZZ_REPORT"):
        Path(os.environ["STAMPFLOW_FUZZ_REPORT"]).write_text(json.dumps(summary, indent=2, sort_keys=True))
