"""The cron schedules the API server admits in spec.training.schedule: the grammar of the OpenFaaS cron-connector's
parser (robfig/cron v3 with minute, hour, day of month, month, day of week and descriptors), as one regular
expression. Its one home: the CRD's rule (a CEL `matches`) and the pydantic model use this same expression, so the
API server and the operator agree. The operator also asks cronsim (below), which computes the next run and refuses what a regular expression cannot see (a range that runs
backwards, "5-2"): such a schedule the API server admits, and the operator stalls on it naming the field.

Written without backslashes (fields are separated by spaces, ` +`, not `\\s+`) so the expression reads the same
inside a CEL string literal, and only with syntax that Python's `re` and the API server's RE2 read alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError


def _field(number: str, names: tuple[str, ...] = ()) -> str:
    """One field: `*`, `?`, a value, a range a-b, any of them with a step /n, or a comma-separated list."""
    value = f"(?:{number}|(?i:{'|'.join(names)}))" if names else f"(?:{number})"
    atom = f"(?:[*?]|{value}(?:-{value})?)"
    term = f"{atom}(?:/0*[1-9][0-9]*)?"
    return f"{term}(?:,{term})*"


MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FIELDS = (
    _field("0?[0-9]|[1-5][0-9]"),               # minute 0-59
    _field("0?[0-9]|1[0-9]|2[0-3]"),            # hour 0-23
    _field("0?[1-9]|[12][0-9]|3[01]"),          # day of month 1-31
    _field("0?[1-9]|1[0-2]", MONTHS),           # month 1-12, JAN-DEC
    _field("0?[0-7]", DAYS),                    # day of week 0-7 (0 and 7 are Sunday), SUN-SAT
)
CRON_SCHEDULE = "^ *(?:" + "|".join(DESCRIPTORS) + "|" + " +".join(FIELDS) + ") *$"
CRON_MESSAGE = (
    "must be a cron schedule as the OpenFaaS cron-connector reads it: five fields separated by spaces, minute "
    "(0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT, 0 and 7 "
    "are Sunday), each *, a value, a range a-b, a step (*/n, a-b/n) or a comma-separated list of those; or one "
    f"of {', '.join(DESCRIPTORS)}. Times are UTC. Example: \"0 3 * * *\" (03:00 every day)")
MAX_LENGTH = 128
_COMPILED = re.compile(CRON_SCHEDULE)


def is_cron_schedule(value: str) -> bool:
    return bool(_COMPILED.match(value))


CEL_RULE = {"rule": f"self.matches('{CRON_SCHEDULE}')", "message": CRON_MESSAGE, "reason": "FieldValueInvalid"}


# -- what the schedule means (cronsim) --------------------------------------------------------------------------

# robfig/cron's descriptors, as it defines them; cronsim reads five fields only.
DESCRIPTOR_FIELDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                     "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _cronsim_fields(value: str) -> str:
    text = value.strip()
    if text.lower() in DESCRIPTOR_FIELDS:
        return DESCRIPTOR_FIELDS[text.lower()]
    return " ".join("*" if f == "?" else f for f in text.upper().split())  # robfig reads ? as *


def next_run(value: str, after: datetime) -> datetime:
    """The first time strictly after `after` (UTC) that the schedule fires, as the cron-connector computes it."""
    start = after.astimezone(UTC).replace(second=0, microsecond=0)
    return next(iter(CronSim(_cronsim_fields(value), start)))


def check_cron_schedule(value: str) -> str:
    """pydantic's validator: the CRD's rule, then cronsim, which also refuses what the expression cannot see (a
    range that runs backwards, "5-2")."""
    if not is_cron_schedule(value):
        raise ValueError(CRON_MESSAGE)
    try:
        next_run(value, datetime(2000, 1, 1, tzinfo=UTC))
    except (CronSimError, StopIteration) as error:
        raise ValueError(f"{value!r} cannot run: {error or 'it never fires'}") from None
    return value
