"""Which functions the cron-connector runs, and when (pure: no IO, no clock of its own).

As OpenFaaS's cron-connector: a function whose annotations say `topic: cron-function` and carry a `schedule` the
connector's parser reads (robfig/cron v3's standard parser: minute, hour, day of month, month, day of week, plus
descriptors such as @daily) is invoked on it; `async: "true"` invokes it through /async-function. A function with
a schedule that does not parse is left out, as the connector leaves it out (it logs the reason). Times are UTC:
the connector computes them in its process's local time, and its published image (Alpine, no zone data, no TZ)
runs in UTC.

The next times come from cronsim (a maintained cron library); what robfig reads and cronsim spells differently
(descriptors, `?`, lower-case names) is rewritten before cronsim sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError

from local_openfaas.runtime.spec import FunctionSpec

TOPIC = "cron-function"
# robfig/cron's descriptors, as it defines them.
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class InvalidSchedule(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    expression: str  # as the annotation gives it
    _standard: str   # five fields, as cronsim reads them

    def next_after(self, moment: datetime) -> datetime:
        """The first time strictly after `moment` that the schedule fires (UTC, a whole minute)."""
        # cronsim answers times strictly after its start, which must be a whole minute: the minute `moment` is in.
        start = moment.astimezone(UTC).replace(second=0, microsecond=0)
        for fire in CronSim(self._standard, start):
            return fire
        raise InvalidSchedule(f"{self.expression!r} never fires")  # cronsim ends only on impossible dates


def parse(expression: str) -> Schedule:
    text = expression.strip()
    standard = DESCRIPTORS.get(text.lower())
    if standard is None:
        fields = text.upper().split()
        if len(fields) != 5:
            raise InvalidSchedule(f"{expression!r}: expected 5 fields (minute hour day-of-month month "
                                  f"day-of-week) or a descriptor such as @daily, got {len(fields)}")
        if unknown := _beyond_robfig(fields):
            raise InvalidSchedule(f"{expression!r}: {unknown!r} is not something OpenFaaS's cron-connector reads")
        standard = " ".join("*" if f == "?" else f for f in fields)  # robfig reads ? as *
    try:
        next(iter(CronSim(standard, datetime(2000, 1, 1, tzinfo=UTC))))
    except (CronSimError, StopIteration) as error:
        raise InvalidSchedule(f"{expression!r}: {error or 'never fires'}") from None
    return Schedule(expression, standard)


# What a field is made of for robfig: numbers, names, * and ?, joined by , - and /. cronsim reads more (L, W, #),
# which the cron-connector does not run.
_NAMES = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
          "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}


def _beyond_robfig(fields: list[str]) -> str:
    """The first piece of a field that robfig's parser does not know, or ""."""
    for value in fields:
        for piece in value.replace(",", " ").replace("-", " ").replace("/", " ").split():
            if not (piece.isdigit() or piece in ("*", "?") or piece in _NAMES):
                return piece
    return ""


@dataclass(frozen=True)
class CronFunction:
    """A function the connector runs: its identity and schedule decide whether a change reschedules it."""

    name: str
    namespace: str
    schedule: Schedule
    asynchronous: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.namespace}"


def cron_function(spec: FunctionSpec) -> CronFunction | InvalidSchedule | None:
    """The function as the connector sees it: None when it is not for the connector, InvalidSchedule when its
    schedule cannot run (the connector leaves it out, as OpenFaaS's does, and says why)."""
    annotations = spec.annotations
    if annotations.get("topic") != TOPIC:
        return None
    try:
        schedule = parse(annotations.get("schedule", ""))
    except InvalidSchedule as error:
        return error
    return CronFunction(spec.name, spec.namespace, schedule, annotations.get("async") == "true")


def cron_functions(specs: Iterable[FunctionSpec]) -> tuple[dict[tuple[str, str], CronFunction],
                                                            dict[tuple[str, str], str]]:
    """The functions to run on a schedule, and those refused with the reason, by (namespace, name)."""
    found, refused = {}, {}
    for spec in specs:
        verdict = cron_function(spec)
        if isinstance(verdict, CronFunction):
            found[verdict.key] = verdict
        elif verdict is not None:
            refused[spec.key] = str(verdict)
    return found, refused
