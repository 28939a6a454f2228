"""Structured logging: one JSON object per line (or plain text for a terminal), fields from `extra=`."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# kopf attaches its settings object and internal flags to every record of an object's logger: not log content.
_KOPF_INTERNALS = ("settings", "k8s_skip")


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"},
                                           reserved_attrs=[*RESERVED_ATTRS, *_KOPF_INTERNALS],
                                           json_default=str))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kopf logs every handled watch event at INFO and aiohttp every liveness probe: keep those for DEBUG runs.
    quiet = max(root.level, logging.WARNING) if root.level > logging.DEBUG else logging.DEBUG
    for name in ("kopf.objects", "aiohttp.access", "kubernetes"):
        logging.getLogger(name).setLevel(quiet)
