"""Progress bars of a flow's stages (tqdm, on stderr): one that counts steps, one that fills with wall time
(for a stage bounded by time, such as training)."""

from __future__ import annotations

import threading
import time

from tqdm import tqdm


def step_bar(desc: str, total: int, enabled: bool) -> tqdm:
    """A bar of ``total`` steps (use it as a context manager and ``update(1)`` per step)."""
    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=True)


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
