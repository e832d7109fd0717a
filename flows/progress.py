"""Progress bars of a flow's stages (tqdm, on stderr): one that counts the work done (stamps, files or
steps, with the rate and the time left), one that fills with wall time (for a stage bounded by time, such
as training). While a bar is drawn, log lines (stampflow's, Prefect's) are printed above it through
``tqdm.write`` instead of across it (:func:`logs_above_bars`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


def step_bar(desc: str, total: int, enabled: bool) -> tqdm:
    """A bar of ``total`` steps (use it as a context manager and ``update(1)`` per step)."""
    return work_bar(desc, total, "step", enabled)


def work_bar(desc: str | None, total: int, unit: str, enabled: bool) -> tqdm:
    """A bar of ``total`` units of work (``unit``: ``stamp``, ``file``, ``step``...), showing the rate in
    units per second and the time left; ``update(n)`` as ``n`` units are done."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=total >= 10_000,
        disable=not enabled,
        leave=True,
        dynamic_ncols=True,
    )


@contextmanager
def logs_above_bars(enabled: bool) -> Iterator[None]:
    """For the block, the console log handlers of the root logger (stampflow's and Prefect's lines end
    there) write through ``tqdm.write``, above the bars, instead of across them."""
    with logging_redirect_tqdm() if enabled else nullcontext():
        yield


class TimeBar:
    """A progress bar that fills with wall time up to ``seconds`` until closed (training is bounded by
    time); a background thread moves it once a second."""

    def __init__(self, desc: str, seconds: float, enabled: bool):
        self.bar = tqdm(total=round(seconds), desc=desc, unit="s", disable=not enabled, leave=True)
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            elapsed = min(round(time.perf_counter() - self._t0), self.bar.total)
            self.bar.update(elapsed - self.bar.n)

    def close(self) -> None:
        """Fill the bar and stop it."""
        self._stop.set()
        self._thread.join()
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()

    def __enter__(self) -> TimeBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
