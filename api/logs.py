"""Log configuration for `puente serve`: text (the default) or one JSON object per line
(PUENTE_LOG_FORMAT=json, for log collectors), each line with the request id it was written under.

Whatever the format, lines are scrubbed of what must never be logged: bearer tokens, JWTs and the
secrets of OAuth forms (password, client_secret, codes, verifiers, assertions, tokens). Request
bodies and query strings (where a search for a patient's name would be) are never logged at all:
the access line (JSON only) carries the method, the path, the route template and the status.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from api import request_id

_SECRETS = [
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"),  # a JWT (token, assertion, id_token)
    re.compile(
        r"(?i)\b(password|client_secret|client_assertion|code|code_verifier|refresh_token|access_token|id_token|token)"
        r"(=|\"?\s*:\s*\"?)[^&\s\",}]+"
    ),
]
REDACTED = "[redacted]"


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (f"{m.group(1)}{m.group(2)}" if m.lastindex else "") + REDACTED, text)
    return text


class RedactFilter(logging.Filter):
    """Scrub the formatted message (and an exception's text) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current.get()
        return True


def log_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for uvicorn (`log_config=`), applied in every worker process."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "redact": {"()": "api.logs.RedactFilter"},
        "request_id": {"()": "api.logs.RequestIdFilter"},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact", "request_id"]
    if log_format == "json":
        json_formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
        }
        config["formatters"] = {"default": json_formatter, "access": copy.deepcopy(json_formatter)}
        config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["puente"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
