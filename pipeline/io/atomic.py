"""Atomic writes: every output of stampflow appears under its final name only when it is complete.

Two shapes, one rule (write to a hidden temporary name beside the final one, ``os.replace`` on success,
delete on failure):

- :func:`atomic_path`: a context manager that yields the temporary path for code that writes a file in one
  go (``rejects.csv``, ``manifest.json``, checkpoints, FITS and CSV conversions).
- :class:`CommitOnSuccess`: the protocol of streaming writers (stamp stores, Parquet catalogs, broker
  records): ``with Writer(...) as w:`` publishes with ``w.close()`` when the block ends without error and
  calls ``w.abort()`` (remove the partial output) when it raises.

A killed process leaves at most a hidden ``.<name>.partial-<pid>`` file, which
:func:`remove_stale_partials` deletes once that process is gone; every writer calls it for its final names
when it starts (:func:`start_partial`).

A write that fails (no space left, a folder that is a file, a read-only disk) is an :class:`OutputError`
naming the output and the problem (:func:`output_errors`), so that callers tell it from an input that
cannot be read (``stampflow`` exits 3 for the one, 1 for the other).
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

WriterT = TypeVar("WriterT", bound="CommitOnSuccess")


def partial_path(final: str | os.PathLike) -> Path:
    """The name ``final`` is written under until complete: hidden, beside it, unique per process."""
    final = Path(final)
    return final.with_name(f".{final.name}.partial-{os.getpid()}")


class OutputError(OSError):
    """An output could not be written: ``filename`` is the output's final name, ``strerror`` the problem
    (an OSError, so that code catching OSError still does; pickles as one)."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    def __repr__(self) -> str:
        return f"OutputError({str(self)!r})"


@contextmanager
def output_errors(final: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError raised inside the block into an :class:`OutputError` of ``final`` (one already
    naming an output passes unchanged)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise output_error(err, final) from err


#: The errno a library wrote into its message (HDF5: ``errno = 28``, Arrow: ``[errno 28]``).
_ERRNO_IN_MESSAGE = re.compile(r"errno\]? ?=? ?(\d+)", re.IGNORECASE)


def output_error(err: BaseException, final: str | os.PathLike) -> OutputError:
    """The :class:`OutputError` of ``final`` for a failed write ``err`` (an OSError, or the RuntimeError
    h5py raises): its errno (from the message where a library only wrote it there, e.g. HDF5 and Arrow),
    the problem in words, and the path it happened on when that is not the output (or its partial file)."""
    code = getattr(err, "errno", None)
    found = _ERRNO_IN_MESSAGE.search(str(err)) if code is None else None
    code = int(found.group(1)) if found else code
    if code is not None:
        what = os.strerror(code)
    else:
        what = getattr(err, "strerror", None) or (str(err).splitlines() or [type(err).__name__])[0]
    where = getattr(err, "filename", None)
    if where is not None and Path(os.fsdecode(where)) not in (Path(final), partial_path(final)):
        what = f"{what} ({os.fsdecode(where)})"
    return OutputError(code, what, os.fspath(final))


def start_partial(final: str | os.PathLike) -> Path:
    """Prepare writing ``final``: create its folder, delete the partial files killed writers left
    (:func:`remove_stale_partials`) and this process's own; returns :func:`partial_path`. An OSError
    becomes an :class:`OutputError`."""
    final = Path(final)
    with output_errors(final):
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:  # a file where a folder of the path should be
            raise OutputError(errno.ENOTDIR, f"{err.filename} is not a folder", os.fspath(final)) from err
        remove_stale_partials(final)
        tmp = partial_path(final)
        tmp.unlink(missing_ok=True)
    return tmp


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move a complete temporary file to its final name (atomic on POSIX); returns the final path."""
    os.replace(tmp, final)
    return Path(final)


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary path to write ``final`` to; publish it when the block succeeds, delete it when
    the block raises. The parent folder is created (:func:`start_partial`); an OSError of the block or the
    rename becomes an :class:`OutputError` of ``final``."""
    final = Path(final)
    tmp = start_partial(final)
    try:
        with output_errors(final):
            yield tmp
            publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    ``w.abort()`` (remove the partial output) when it raises, or when ``close`` raises (a full disk fails
    the last write). Subclasses define ``close`` and ``abort``; ``abort`` may follow a failed ``close``."""

    def close(self) -> Any:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self: WriterT) -> WriterT:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise
