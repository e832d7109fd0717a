"""Follow a folder of alert files: score new files as they land, each exactly once, across restarts.

The loop (:func:`follow`) polls the watched folders every ``poll_s`` seconds and handles the files that are
ready in bounded batches (at most ``max_batch_files`` files, oldest first), so an alert waits about
``settle_s + poll_s`` plus one batch's processing time. Each batch goes through four steps:

1. **decode** the files (the caller's ``decode``);
2. **claim** them in the state database (``follow_state.sqlite`` in the output folder, SQLite, committed
   with ``synchronous=FULL``): a new batch row ``pending`` and one row per file;
3. **write** the batch's outputs (the caller's ``write_batch``) into a hidden folder ``.batch-NNNNNN.partial``,
   fsync every file, and rename the folder to ``batches/NNNNNN`` (one atomic rename, then the parent
   folder is fsynced): a batch's outputs exist completely or not at all;
4. **complete**: mark the batch ``done`` (commit).

A file in the state database is never taken again, so no file is scored twice. After a crash or kill,
the next start first recovers the ``pending`` batches: if ``batches/NNNNNN`` exists the outputs were
published and only the ``done`` mark was lost (it is set, nothing is rescored); otherwise the partial
folder is removed and the batch's claimed files are processed again under the same number. So every file is
scored exactly once, whatever moment the process dies.

Files still being written: a file is ready only when its size and modification time have not changed for
``settle_s`` seconds; names of temporary files (hidden, ``.partial``, ``.tmp``, ...) are never read, so
writers that write elsewhere and rename into place (the safest way) are picked up at once after
``settle_s``. A writer that pauses longer than ``settle_s`` mid-file would leave a file that decodes as
truncated: such a file, modified less than ``truncated_grace_s`` ago, is not claimed but watched again, and
taken when it changes or when the grace period is over (then its truncated packets are rejected with their
reason, never silently lost).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

STATE_NAME = "follow_state.sqlite"
BATCHES_DIR = "batches"
TRUNCATED = "truncated_avro"


class DecodedLike(Protocol):
    """What :func:`follow` needs of a decoded file (:class:`pipeline.alerts.decode.DecodedFile` fits)."""

    path: str

    @property
    def rejects(self) -> Sequence[Any]: ...


@dataclass
class FollowSettings:
    """How :func:`follow` polls and batches.

    Attributes:
        poll_s: seconds between scans of the folders when nothing is ready.
        settle_s: a file is ready when unchanged (size and mtime) for this long.
        max_batch_files: files per batch at most (bounds memory and the batch's latency).
        truncated_grace_s: a file that decodes as truncated and changed less than this long ago is left
            for later (its writer may still be writing).
        idle_exit_s: stop after this long without any file to process (None: never).
        max_batches: stop after this many batches in this run (None: never).
    """

    poll_s: float = 1.0
    settle_s: float = 2.0
    max_batch_files: int = 1000
    truncated_grace_s: float = 60.0
    idle_exit_s: float | None = None
    max_batches: int | None = None


@dataclass
class FollowReport:
    """What one :func:`follow` run did."""

    batches: int = 0
    recovered_batches: int = 0
    files: int = 0
    deferred: int = 0
    seconds: float = 0.0
    batch_summaries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_state_db(path: str | os.PathLike, schema: str) -> sqlite3.Connection:
    """A state database at ``path`` (SQLite, autocommit, ``synchronous=FULL``: a committed step survives a
    power cut) with the tables of ``schema`` (``CREATE TABLE IF NOT EXISTS ...``); its folder is created."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


class FollowState:
    """The state database: batches (``pending``/``done``) and the files each claimed.

    Args:
        path: the SQLite file (created with its tables when absent).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.db = open_state_db(
            self.path,
            """
            CREATE TABLE IF NOT EXISTS batches (
                seq INTEGER PRIMARY KEY, status TEXT NOT NULL, n_files INTEGER NOT NULL,
                claimed_at REAL NOT NULL, done_at REAL, summary TEXT);
            CREATE TABLE IF NOT EXISTS files (
                path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, batch INTEGER NOT NULL);
            """,
        )

    def close(self) -> None:
        self.db.close()

    def claimed_paths(self) -> set[str]:
        """Every file path ever claimed (pending or done)."""
        return {row[0] for row in self.db.execute("SELECT path FROM files")}

    def next_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM batches").fetchone()
        return int(row[0] or 0) + 1

    def pending(self) -> list[tuple[int, list[str]]]:
        """``(seq, file paths)`` of batches claimed but not done, oldest first."""
        out = []
        for (seq,) in self.db.execute(
            "SELECT seq FROM batches WHERE status = 'pending' ORDER BY seq"
        ).fetchall():
            paths = [
                r[0] for r in self.db.execute("SELECT path FROM files WHERE batch = ? ORDER BY rowid", (seq,))
            ]
            out.append((int(seq), paths))
        return out

    def claim(self, seq: int, files: Iterable[tuple[str, int, int]]) -> None:
        """Record batch ``seq`` as pending with its files ``(path, size, mtime_ns)``, in one transaction."""
        files = list(files)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO batches (seq, status, n_files, claimed_at) VALUES (?, 'pending', ?, ?)",
                (seq, len(files), time.time()),
            )
            self.db.executemany(
                "INSERT INTO files (path, size, mtime_ns, batch) VALUES (?, ?, ?, ?)",
                [(*f, seq) for f in files],
            )

    def complete(self, seq: int, summary: str = "") -> None:
        """Mark batch ``seq`` done (its outputs are published)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE batches SET status = 'done', done_at = ?, summary = ? WHERE seq = ?",
                (time.time(), summary, seq),
            )

    def batches(self) -> list[tuple[int, str, int]]:
        """``(seq, status, n_files)`` of every batch."""
        return [tuple(r) for r in self.db.execute("SELECT seq, status, n_files FROM batches ORDER BY seq")]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


class StabilityWatcher:
    """Which files have kept their size and mtime for ``settle_s`` seconds (see the module docstring)."""

    def __init__(self, settle_s: float):
        self.settle_s = settle_s
        self._seen: dict[str, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, stable since)
        self._deferred: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) when found truncated

    def ready(self, listing: dict[str, tuple[int, int]], now: float, truncated_grace_s: float) -> list[str]:
        """Paths of ``listing`` (path -> (size, mtime_ns)) stable for ``settle_s``, oldest mtime first."""
        out = []
        for path in [p for p in self._seen if p not in listing]:
            del self._seen[path]
        for path, (size, mtime) in listing.items():
            prev = self._seen.get(path)
            if prev is None or prev[:2] != (size, mtime):
                self._seen[path] = (size, mtime, now)
                continue
            if now - prev[2] < self.settle_s:
                continue
            deferred = self._deferred.get(path)
            if deferred == (size, mtime) and time.time() - mtime / 1e9 < truncated_grace_s:
                continue
            out.append(path)
        return sorted(out, key=lambda p: (listing[p][1], p))

    def defer(self, path: str, size: int, mtime_ns: int) -> None:
        """Do not take ``path`` again until it changes or the grace period is over."""
        self._deferred[path] = (size, mtime_ns)

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)
        self._deferred.pop(path, None)


def scan(
    folders: Sequence[Path], is_candidate: Callable[[Path], bool], skip: set[str]
) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of the candidate files under ``folders`` (recursively) not in ``skip``."""
    out: dict[str, tuple[int, int]] = {}
    stack = [Path(f) for f in folders]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        stack.append(Path(entry.path))
                elif entry.is_file() and entry.path not in skip and is_candidate(Path(entry.path)):
                    st = entry.stat()
                    out[entry.path] = (st.st_size, st.st_mtime_ns)
            except OSError:  # removed while scanning
                continue
    return out


def _young_truncated(decoded: DecodedLike, mtime_ns: int, grace_s: float) -> bool:
    return any(r.reason == TRUNCATED for r in decoded.rejects) and time.time() - mtime_ns / 1e9 < grace_s


def batch_folder(out: Path, seq: int) -> Path:
    """``out/batches/NNNNNN``: where batch ``seq`` is published."""
    return Path(out) / BATCHES_DIR / f"{seq:06d}"


def write_batch_folder(out: Path, seq: int, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Publish batch ``seq`` atomically (step 3 of the module docstring): ``write(folder)`` fills the hidden
    ``out/.batch-NNNNNN.partial`` (a leftover one is removed first), every file is fsynced, the folder is
    renamed to ``out/batches/NNNNNN`` and the parent fsynced. Returns what ``write`` returned."""
    tmp = Path(out) / f".batch-{seq:06d}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    summary = write(tmp)
    _fsync_tree(tmp)
    final = batch_folder(out, seq)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    return summary


def _publish_batch(
    seq: int,
    decoded: list[DecodedLike],
    out: Path,
    write_batch: Callable[[list[DecodedLike], Path], dict[str, Any]],
    state: FollowState,
    report: FollowReport,
) -> None:
    """Steps 3 and 4 of a batch (module docstring): write into the hidden folder, fsync, rename it to
    ``batches/NNNNNN``, mark the batch done."""
    summary = write_batch_folder(out, seq, lambda folder: write_batch(decoded, folder))
    final = batch_folder(out, seq)
    state.complete(seq, json.dumps(summary))
    report.batches += 1
    report.files += len(decoded)
    report.batch_summaries.append({"batch": seq, **summary})
    log.info("batch %06d: %d files -> %s", seq, len(decoded), final)


def _settled(
    listing: dict[str, tuple[int, int]],
    ready: list[str],
    decode: Callable[[list[str]], list[DecodedLike]],
    watcher: StabilityWatcher,
    settings: FollowSettings,
    report: FollowReport,
) -> list[DecodedLike]:
    """The ready files decoded, less those that decode as truncated and changed recently (deferred)."""
    take: list[DecodedLike] = []
    for path, decoded in zip(ready, decode(ready) if ready else [], strict=True):
        size, mtime = listing[path]
        if _young_truncated(decoded, mtime, settings.truncated_grace_s):
            watcher.defer(path, size, mtime)
            report.deferred += 1
            log.info("%s decodes as truncated and changed recently: retried later", path)
            continue
        take.append(decoded)
    return take


def follow(
    folders: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    decode: Callable[[list[str]], list[DecodedLike]],
    write_batch: Callable[[list[DecodedLike], Path], dict[str, Any]],
    is_candidate: Callable[[Path], bool],
    settings: FollowSettings | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FollowReport:
    """Watch ``folders`` and process new files in batches until stopped (module docstring).

    Args:
        folders: folders to watch (recursively; hidden subfolders are skipped).
        out: output folder: ``follow_state.sqlite`` and ``batches/NNNNNN/`` per batch.
        decode: file paths -> decoded files (same order).
        write_batch: ``(decoded files, folder)`` -> a JSON-able summary; writes the batch's outputs into
            ``folder`` (which it may create files in; it exists).
        is_candidate: which file names to take (e.g. :func:`pipeline.alerts.decode.is_alert_name`).
        settings: polling and batching (:class:`FollowSettings`).
        stop: set it to stop after the current batch (e.g. from a signal handler).
        clock: monotonic clock (tests may pass their own).
    """
    settings = settings or FollowSettings()
    stop = stop or threading.Event()
    out = Path(out)
    (out / BATCHES_DIR).mkdir(parents=True, exist_ok=True)
    state = FollowState(out / STATE_NAME)
    report = FollowReport()
    t0 = clock()
    try:
        for seq, paths in state.pending():  # recovery after a crash
            if (out / BATCHES_DIR / f"{seq:06d}").is_dir():
                state.complete(seq, json.dumps({"recovered": "outputs were published before the crash"}))
            else:
                _publish_batch(seq, decode(paths), out, write_batch, state, report)
            report.recovered_batches += 1
        claimed = state.claimed_paths()
        watcher = StabilityWatcher(settings.settle_s)
        last_work = clock()
        while not stop.is_set():
            if settings.max_batches is not None and report.batches >= settings.max_batches:
                break
            listing = scan([Path(f) for f in folders], is_candidate, claimed)
            ready = watcher.ready(listing, clock(), settings.truncated_grace_s)[: settings.max_batch_files]
            take = _settled(listing, ready, decode, watcher, settings, report)
            if not take:
                if settings.idle_exit_s is not None and clock() - last_work >= settings.idle_exit_s:
                    break
                stop.wait(settings.poll_s)
                continue
            seq = state.next_seq()
            state.claim(seq, [(d.path, *listing[d.path]) for d in take])
            claimed.update(d.path for d in take)
            for d in take:
                watcher.forget(d.path)
            _publish_batch(seq, take, out, write_batch, state, report)
            last_work = clock()
    finally:
        state.close()
        report.seconds = round(clock() - t0, 3)
    return report
