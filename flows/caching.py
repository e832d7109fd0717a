"""Caching and retries of stampflow tasks.

A rerun with the same inputs does no work twice: every task that produces files is cached on its inputs
(Prefect's ``INPUTS`` policy: paths, options, and a **content key** of the input files, the sha256 of their
bytes, so that a changed file under the same name is recomputed), its own source (``TASK_SOURCE``) and the
source of the library it calls (:class:`LibrarySource`: ``TASK_SOURCE`` alone sees only the task's few
lines, not the pipeline/models code that does the work). Results are persisted in the run folder
(``<run>/.stampflow/results``), so the cache works across processes and is dropped with the run folder.

A cached result names the files the task wrote with their size and modification time
(:func:`fingerprints`); a cache hit whose files were since deleted or rewritten is recomputed
(:func:`outputs_intact`, used by :func:`flows.runners.run_tasks`).

I/O tasks retry on transient ``OSError`` s only (:func:`retry_on_transient_io`): a missing file or a
permission error will not go away by retrying.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.tasks import Task

from pipeline.ingest import check_name, expand_paths, input_name
from pipeline.io import OutputError, StampRejected
from pipeline.store import combined_sha256, sha256_file

REPO = Path(__file__).resolve().parent.parent
#: Packages whose source is part of every cache key.
LIBRARY_PACKAGES = ("pipeline", "models", "data_catalogs")
#: Hidden folder of a run folder holding Prefect results and chunk parts.
STATE_DIR = ".stampflow"
#: OSErrors that retrying cannot fix.
PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    FileExistsError,
)
#: Errnos of an output that cannot be written that retrying cannot fix (disk full, read-only...).
PERMANENT_OUTPUT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EFBIG,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EEXIST,
    }
)


@lru_cache(maxsize=1)
def library_digest() -> str:
    """sha256 over the names and bytes of every ``.py`` file of :data:`LIBRARY_PACKAGES`."""
    digest = hashlib.sha256()
    for package in LIBRARY_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class LibrarySource(CachePolicy):
    """Cache key part: the source of the stampflow library (see :func:`library_digest`)."""

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs) -> str:
        return library_digest()


#: Task arguments that change how a task reports, not what it computes (left out of cache keys).
NOT_IN_KEY = ("progress", "log_file")
#: Inputs (with content keys, without :data:`NOT_IN_KEY`) + the task's source + the library's source.
CACHE_POLICY = INPUTS - NOT_IN_KEY[0] - NOT_IN_KEY[1] + TASK_SOURCE + LibrarySource()

_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str | None:
    """sha256 of a file's bytes, remembered per (path, size, mtime) so that a file is read once per process
    however many tasks ask; None when it is not a file, cannot be read or has a name that is not UTF-8
    (the reader that gets it rejects it with the reason, :mod:`pipeline.ingest.inputs`)."""
    p = Path(path)
    try:
        check_name(p)
        stat = p.stat()
        if not p.is_file():
            return None
        key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
        with _digests_lock:
            if key in _digests:
                return _digests[key]
        value = sha256_file(p)
    except (OSError, StampRejected):
        return None
    with _digests_lock:
        _digests[key] = value
    return value


def expand_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Each file as given, each folder's files (recursively, sorted by path), hidden state folders
    (:data:`STATE_DIR`) left out (:func:`pipeline.ingest.inputs.expand_paths`)."""
    return expand_paths(paths, lambda relative: STATE_DIR not in relative.parts)


def file_digests(paths: Sequence[str | os.PathLike], threads: int = 4) -> dict[str, str | None]:
    """``{input name: sha256 or None}`` of files (:func:`file_sha256`, names by
    :func:`pipeline.ingest.inputs.input_name`), hashed in ``threads`` threads (hashlib releases the GIL).
    This is the one hashing of an ingest's files: its cache keys, chunks and the store's ``source_sha256``."""
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return dict(zip(map(input_name, paths), pool.map(file_sha256, paths), strict=True))


def content_key(paths: Iterable[str | os.PathLike]) -> str:
    """One sha256 over the files of ``paths`` (folders expanded): their names and their bytes' sha256."""
    return digests_key(file_digests(expand_files(paths)))


def digests_key(digests: Mapping[str, str | None]) -> str:
    """One sha256 over ``{name: sha256}`` (the content key of those files)."""
    return combined_sha256(f"{p}:{d}" for p, d in digests.items())


def fingerprint(path: str | os.PathLike) -> list[int] | None:
    """``[size, mtime_ns]`` of a file, or None when it does not exist."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def fingerprints(paths: Iterable[str | os.PathLike | None]) -> dict[str, list[int] | None]:
    """``{path: fingerprint}`` of the files a task wrote (None entries skipped)."""
    return {str(p): fingerprint(p) for p in paths if p is not None}


def outputs_intact(result: Any) -> bool:
    """True when every file a task result names under ``"outputs"`` still has its recorded fingerprint."""
    outputs: Mapping[str, Any] = result.get("outputs", {}) if isinstance(result, Mapping) else {}
    return all(fingerprint(path) == (list(fp) if fp else fp) for path, fp in outputs.items())


def state_dir(run_dir: str | os.PathLike) -> Path:
    """``<run_dir>/.stampflow``: Prefect results and chunk parts of a run folder."""
    return Path(run_dir) / STATE_DIR


def cached(task: Task, run_dir: str | os.PathLike) -> Task:
    """``task`` cached with :data:`CACHE_POLICY`, its results persisted in ``<run_dir>/.stampflow/results``."""
    return task.with_options(
        cache_policy=CACHE_POLICY,
        persist_result=True,
        result_storage=Path(run_dir).resolve() / STATE_DIR / "results",
    )


def retry_on_transient_io(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed run only when it raised an OSError that is not one of
    :data:`PERMANENT_OS_ERRORS`, nor an output error of :data:`PERMANENT_OUTPUT_ERRNOS`."""
    try:
        state.result()
    except PERMANENT_OS_ERRORS:
        return False
    except OutputError as err:
        return err.errno not in PERMANENT_OUTPUT_ERRNOS
    except OSError:
        return True
    except BaseException:
        return False
    return False


#: Task options of tasks that read and write files.
IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 2,
    "retry_condition_fn": retry_on_transient_io,
}
