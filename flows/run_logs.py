"""stampflow's own log lines in the Prefect run's logs (tracebacks are kept off the terminal for every
command by :class:`flows.cli.WithoutTraceback`).

Prefect sends to the API only its run loggers (``prefect.flow_runs``, ``prefect.task_runs``) and the
loggers named by its setting ``PREFECT_LOGGING_EXTRA_LOGGERS`` (``logging.extra_loggers``: when Prefect
configures logging it gives each of them the handlers of its ``prefect.extra`` logger, the API handler).
That setting is read once, when ``prefect`` is imported, so :func:`send_logs_to_prefect` does the same for
:data:`STAMPFLOW_LOGGERS` in a process where Prefect is already configured, and sets the variable for the
processes a flow starts (a local Dask cluster's workers). Workers of an existing Dask cluster need
``PREFECT_LOGGING_EXTRA_LOGGERS=pipeline,models,flows`` in their own environment (docs/pipelines.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

#: stampflow's loggers (each module logs under its own name: ``pipeline.scoring.scorer``...).
STAMPFLOW_LOGGERS = ("pipeline", "models", "flows")
EXTRA_LOGGERS_VARIABLE = "PREFECT_LOGGING_EXTRA_LOGGERS"


@contextmanager
def send_logs_to_prefect(
    names: Sequence[str] = STAMPFLOW_LOGGERS, level: int = logging.INFO
) -> Iterator[None]:
    """For the block, the loggers ``names`` (and their children) also go to the Prefect API of the run in
    progress, at ``level`` and above (a logger set to log less keeps its own level)."""
    from prefect.logging.handlers import APILogHandler

    wanted = [n for n in os.environ.get(EXTRA_LOGGERS_VARIABLE, "").split(",") if n]
    os.environ[EXTRA_LOGGERS_VARIABLE] = ",".join(dict.fromkeys([*wanted, *names]))
    handlers = [h for h in logging.getLogger("prefect.extra").handlers if isinstance(h, APILogHandler)]
    handlers = handlers or [APILogHandler()]
    added: list[tuple[logging.Logger, logging.Handler]] = []
    levels: dict[logging.Logger, int] = {}
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(h, APILogHandler) for h in logger.handlers):
            added += [(logger, h) for h in handlers]
            for handler in handlers:
                logger.addHandler(handler)
        if logger.getEffectiveLevel() > level:
            levels[logger] = logger.level
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, handler in added:
            logger.removeHandler(handler)
        for logger, old in levels.items():
            logger.setLevel(old)
