"""Logging: plain text by default, JSON lines as an option."""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter


class _TimeOncePerSecond:
    """``formatTime`` for the default date format, with the date and time part
    worked out once per second instead of for every record."""

    _second: int | None = None
    _text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._text, record.msecs)


class TextFormatter(_TimeOncePerSecond, logging.Formatter):
    pass


class JsonLinesFormatter(_TimeOncePerSecond, JsonFormatter):
    pass


def configure_logging(level: str = "INFO", fmt: str = "text", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLinesFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Neither format shows the caller, thread or process of a record: do not
    # look them up for every record (one per AGI session).
    logging._srcfile = None  # noqa: SLF001 - the logging module's own switch for findCaller()
    logging.logThreads = False
    logging.logProcesses = False
    logging.logAsyncioTasks = False  # Python 3.12+: a current_task() lookup per record
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # redis-py and asyncio chatter is not ours to report at INFO
    logging.getLogger("asyncio").setLevel(logging.WARNING)
