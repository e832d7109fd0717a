"""A night's folder: every run of the night writes its own versioned run folder, and the night's outputs are
published atomically when a run succeeds, so a retry or a rerun never mixes with or destroys an earlier
good result. Layout (``root`` is the night's ``run_dir``, e.g. ``runs/nightly/2026-03-02``)::

    root/
      stamps.h5 -> current/stamps.h5      the published names (PUBLISHED): links through current
      rejects.csv, scored.parquet, report, manifest.json  (likewise)
      current -> runs/<run id>            the last run that succeeded; moved by one atomic rename
      runs/<run id>/                      one per run, kept: its manifest.json and what it wrote
      work/                               where the stages write; their cache (.stampflow) lives here
      .lock                               held by the run in progress (one run of a night at a time)

A run's outputs are linked into its run folder (hard links: the run folder shares the bytes with
``work/`` and keeps them when a later run replaces a file there, since every writer replaces a file by a
rename, :mod:`pipeline.io.atomic`; a copy where hard links are not possible). A run that fails keeps its
run folder (its manifest, what it wrote) and leaves ``current`` where it was.

Pure: files and folders only, no Prefect.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline.io import atomic_path

#: The night's outputs under their documented names (``root/<name>``), each a link through ``current``.
PUBLISHED = ("stamps.h5", "rejects.csv", "scored.parquet", "report", "manifest.json")
CURRENT = "current"
RUNS = "runs"
WORK = "work"
LOCK = ".lock"


class NightLocked(RuntimeError):
    """Another run of the same night holds the night's lock."""


def run_name(run_id: str | None = None, when: datetime | None = None) -> str:
    """A run folder's name: ``<UTC time, YYYYmmddTHHMMSSZ>-<first 8 characters of run_id>`` (time-sortable;
    each attempt of a retried flow run gets its own)."""
    stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{str(run_id)[:8]}" if run_id else stamp


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


@dataclass(frozen=True)
class NightFolder:
    """The folder of one night (module docstring)."""

    root: Path

    @property
    def work(self) -> Path:
        """Where the stages write (stable across runs, so their cache works)."""
        return self.root / WORK

    @property
    def runs(self) -> Path:
        return self.root / RUNS

    @property
    def current(self) -> Path:
        return self.root / CURRENT

    def current_run(self) -> Path | None:
        """The run folder ``current`` points to (None before the first successful run)."""
        return self.current.resolve() if self.current.is_symlink() else None

    def new_run(self, name: str) -> Path:
        """Make and return the empty run folder ``runs/<name>`` (``-2``, ``-3``... when taken)."""
        self.runs.mkdir(parents=True, exist_ok=True)
        for i in range(1, 1000):
            path = self.runs / (name if i == 1 else f"{name}-{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"{self.runs}: no free run folder name for {name}")

    def keep(self, run: Path, outputs: Iterable[str | os.PathLike]) -> list[Path]:
        """Link the files ``outputs`` (under :attr:`work`; folders with all their files) into ``run`` at
        the same relative paths; returns the paths in ``run``. An output that does not exist is skipped."""
        kept = []
        for item in outputs:
            src = Path(item)
            rel = src.relative_to(self.work)
            files = sorted(f for f in src.rglob("*") if f.is_file()) if src.is_dir() else [src]
            for f in files:
                if f.is_file():
                    _link_or_copy(f, run / f.relative_to(self.work))
            if src.exists():
                kept.append(run / rel)
        return kept

    def publish(self, run: Path) -> None:
        """Make ``run`` the night's published run: ``current`` points to it after one atomic rename, and
        the published names (:data:`PUBLISHED`) link through ``current``. Outputs of an older layout
        (plain files under the published names) are moved to ``runs/before-<time>/`` first."""
        self._move_plain_outputs()
        with atomic_path(self.current) as tmp:
            os.symlink(os.path.relpath(run, self.root), tmp)
        for name in PUBLISHED:
            link = self.root / name
            if not link.is_symlink():
                os.symlink(os.path.join(CURRENT, name), link)

    def _move_plain_outputs(self) -> None:
        plain = [
            self.root / n for n in PUBLISHED if (self.root / n).exists() and not (self.root / n).is_symlink()
        ]
        if plain:
            keep = self.new_run(f"before-{run_name()}")
            for path in plain:
                os.replace(path, keep / path.name)

    @contextmanager
    def lock(self, holder: str = "") -> Iterator[Path]:
        """Hold the night's lock (``root/.lock``, which names ``holder`` and the process) for the block.

        Raises:
            NightLocked: another process holds it (a run of the same night is in progress).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                fh.seek(0)
                other = fh.read().strip() or "another process"
                raise NightLocked(
                    f"{self.root} is being processed by {other}; one run of a night at a time"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"{holder} (pid {os.getpid()})\n".lstrip())
            fh.flush()
            try:
                yield path
            finally:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh, fcntl.LOCK_UN)
