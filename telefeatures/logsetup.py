"""Logging: plain text by default, JSON lines as an option."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO", fmt: str = "text", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Neither format shows the caller, thread or process of a record: do not
    # look them up for every record (one per AGI session).
    logging._srcfile = None  # noqa: SLF001 - the logging module's own switch for findCaller()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # redis-py and asyncio chatter is not ours to report at INFO
    logging.getLogger("asyncio").setLevel(logging.WARNING)
