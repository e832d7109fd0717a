"""The context-manager protocol of every writer that publishes its output under the final name only when
complete (stamp stores, Parquet catalogs, broker records, alert outputs)."""

from __future__ import annotations

from typing import Any, TypeVar

WriterT = TypeVar("WriterT", bound="CommitOnSuccess")


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
