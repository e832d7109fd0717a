"""Input files of an ingest: found once, named once, read and hashed once, each inside its own guard.

- :func:`expand_paths`: files and folders to the list of files (the one rule of every ingest and of the
  flows' cache keys); a path that does not exist and a link whose target is gone are kept, so that they
  become rejects rather than vanish.
- :func:`input_name`: the name a file has in catalogs, ``rejects.csv`` and digest maps. A name that is not
  UTF-8 cannot be stored (HDF5 and CSV text are UTF-8): :func:`check_name` rejects it (``bad_name``),
  and its printable name (the bytes as ``\\xNN``) stands for it.
- :class:`InputFiles`: reads a file for a reader and gives its sha256: the one the flow computed for its
  cache key when it handed one over, else the sha256 of the bytes just read (never both).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from pipeline.io import StampRejected
from pipeline.store import sha256_file

#: Reject reasons added by this module (see :data:`pipeline.io.rejects.REASONS` for the others).
REASONS = {"bad_name": "the file name is not valid UTF-8, so it cannot be stored in the catalog"}


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def expand_paths(
    paths: Iterable[str | os.PathLike], wanted: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Each path as given, and each folder's files (recursively, sorted by path) whose path relative to
    the folder ``wanted`` accepts (all when None).

    A path that does not exist, and a link in a folder whose target is gone, are kept, so that they are
    reported as rejects (``unreadable``) rather than lost.
    """
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if not path.is_dir():
            out.append(path)
            continue
        found = (p for p in path.rglob("*") if p.is_file() or _dangling(p))
        out.extend(sorted(p for p in found if wanted is None or wanted(p.relative_to(path))))
    return out


def input_name(path: str | os.PathLike) -> str:
    """The name of an input: ``str(path)``, or for a name that is not UTF-8 its bytes with the bad ones
    written ``\\xNN`` (printable, and never the name of another input)."""
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def check_name(path: str | os.PathLike) -> str:
    """:func:`input_name` of a path whose name can be stored; StampRejected(``bad_name``) otherwise."""
    name = input_name(path)
    if name != os.fspath(path):
        raise StampRejected("bad_name", f"{name}: the file name is not valid UTF-8 ({REASONS['bad_name']})")
    return name


class InputFiles:
    """Reads the input files of one reader and keeps their sha256 (for the store's ``source_sha256``).

    Args:
        digests: :func:`input_name` -> sha256 already computed (by the flow, for its cache key); a file
            with a digest here is not hashed again.
    """

    def __init__(self, digests: Mapping[str, str | None] | None = None):
        self._digests = {k: v for k, v in (digests or {}).items() if v}

    def read(self, path: str | os.PathLike) -> tuple[bytes, str]:
        """``(bytes, sha256)`` of a file.

        Raises:
            StampRejected: ``bad_name`` (not UTF-8) or ``unreadable`` (missing, permission, I/O error).
        """
        name = check_name(path)
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise StampRejected("unreadable", f"{name}: cannot read file ({err.strerror or err})") from err
        if name not in self._digests:
            self._digests[name] = hashlib.sha256(data).hexdigest()
        return data, self._digests[name]

    def known(self, path: str | os.PathLike) -> str | None:
        """The sha256 handed over or computed for ``path``, None when there is none yet."""
        return self._digests.get(input_name(path))

    def sha256(self, path: str | os.PathLike) -> str:
        """The sha256 of a file that is not otherwise read here (a catalog, an image cut from); OSError
        when it cannot be read."""
        name = input_name(path)
        if name not in self._digests:
            self._digests[name] = sha256_file(path)
        return self._digests[name]
