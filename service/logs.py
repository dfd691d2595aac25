"""Logging: one JSON object a line (or console text), with secrets redacted from every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from pythonjsonlogger.orjson import OrjsonFormatter

REDACTED = "[redacted]"


class Redact(logging.Filter):
    """Replace every known secret in a record's message and fields, whatever logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self._scrub(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if isinstance(value, str) and key != "msg":
                setattr(record, key, self._scrub(value))
        return True

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure(level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Send the root logger to stderr in `fmt` (json or console) at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            OrjsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print every handshake's query string (and its token).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
