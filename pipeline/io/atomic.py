"""Atomic writes: every output of stampflow appears under its final name only when it is complete.

Two shapes, one rule (write to a hidden temporary name beside the final one, ``os.replace`` on success,
delete on failure):

- :func:`atomic_path`: a context manager that yields the temporary path for code that writes a file in one
  go (``rejects.csv``, ``manifest.json``, checkpoints, FITS and CSV conversions).
- :class:`CommitOnSuccess`: the protocol of streaming writers (stamp stores, Parquet catalogs, broker
  records): ``with Writer(...) as w:`` publishes with ``w.close()`` when the block ends without error and
  calls ``w.abort()`` (remove the partial output) when it raises.

A killed process leaves at most a hidden ``.<name>.partial-<pid>`` file, which
:func:`remove_stale_partials` deletes once that process is gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

WriterT = TypeVar("WriterT", bound="CommitOnSuccess")


def partial_path(final: str | os.PathLike) -> Path:
    """The name ``final`` is written under until complete: hidden, beside it, unique per process."""
    final = Path(final)
    return final.with_name(f".{final.name}.partial-{os.getpid()}")


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move a complete temporary file to its final name (atomic on POSIX); returns the final path."""
    os.replace(tmp, final)
    return Path(final)


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write ``final`` to; publish it when the block succeeds, delete it when
    the block raises. The parent folder is created."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, final)


def write_text(final: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``final`` atomically; returns the final path."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
    return Path(final)


def remove_stale_partials(final: str | os.PathLike) -> list[Path]:
    """Delete temporary files of ``final`` left by writers that were killed (their process is gone)."""
    final = Path(final)
    removed = []
    for tmp in final.parent.glob(f".{final.name}.partial-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        except PermissionError:  # alive, owned by someone else
            continue
    return removed


class CommitOnSuccess:
    """Mixin: ``with Writer(...) as w:`` calls ``w.close()`` (publish) when the block ends without error and
    ``w.abort()`` (remove the partial output) when it raises. Subclasses define ``close`` and ``abort``."""

    def close(self) -> Any:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self: WriterT) -> WriterT:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
