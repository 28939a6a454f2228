"""The OpenFaaS Pro scaling rules as pure functions: labels in, replica counts out.

Labels and defaults follow OpenFaaS Pro's autoscaler (com.openfaas.scale.*). The formula is its own:
    desired = ceil(ready * (mean load per replica / (target * target-proportion)))
clamped to [min, max]; a function that allows zero goes to 0 after `zero-duration` without a request.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

import durationpy

LABEL_PREFIX = "com.openfaas.scale."
SCALE_TYPES = ("rps", "capacity", "cpu")

# Go's time.ParseDuration grammar, which OpenFaaS uses for zero-duration. durationpy reads the value but is more
# lenient (days, weeks, years, spaces between parts), so the text is held to this pattern first. The same grammar,
# and the same 1s minimum for zero-duration, are in the operator's CRD (mlfunctions_operator/api/common.py):
# tests/contracts/test_durations_contract.py drives both, and the API server, from one table of cases.
GO_DURATION = re.compile(r"[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)")
# A Go time.Duration is an int64 count of nanoseconds (about 2562047h).
GO_DURATION_MAX = timedelta(microseconds=-(-(2**63 - 1) // 1000))
# The autoscaler looks once a second: a shorter idle time cannot be honoured, and 0s would scale a function to
# zero between two requests.
ZERO_DURATION_MIN_SECONDS = 1.0


class InvalidScalingLabel(ValueError):
    """A com.openfaas.scale.* label whose value cannot be used; the message names the label and what is expected."""


def parse_duration(text: str) -> float:
    """A Go duration ("15m", "1h30m", "2.5s", "0") in seconds, read to the microsecond."""
    error = ValueError(f"{text!r} is not a Go duration such as 30s, 15m or 1h30m")
    if not GO_DURATION.fullmatch(text):
        raise error
    try:
        value = durationpy.from_str(text)
    except (ValueError, OverflowError):  # DurationError is a ValueError; older durationpy let OverflowError out
        raise error from None
    if abs(value) > GO_DURATION_MAX:
        raise error
    return value.total_seconds()


@dataclass(frozen=True)
class ScalingPolicy:
    min_replicas: int = 1
    max_replicas: int = 20
    zero: bool = False
    zero_duration: float = 15 * 60.0
    target: float = 50.0
    target_proportion: float = 0.90
    type: str = "rps"

    @property
    def floor(self) -> int:
        """The fewest replicas while the function has traffic (never 0: traffic needs somewhere to go)."""
        return max(1, self.min_replicas)

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> ScalingPolicy:
        labels = labels or {}

        def get(key: str, parse, default, expected: str):
            raw = labels.get(LABEL_PREFIX + key)
            if raw is None or str(raw).strip() == "":
                return default
            try:
                return parse(str(raw).strip())
            except ValueError:
                raise InvalidScalingLabel(f"label {LABEL_PREFIX}{key}={raw!r}: expected {expected}") from None

        minimum = get("min", _non_negative_int, 1, "an integer >= 0")
        maximum = get("max", _non_negative_int, 20, "an integer >= 1")
        zero = get("zero", _boolean, False, "true or false")
        zero_duration = get("zero-duration", zero_duration_seconds, 15 * 60.0,
                            "a Go duration of at least 1s, such as 30s or 15m")
        target = get("target", _positive_float, 50.0, "a number > 0")
        proportion = get("target-proportion", _proportion, 0.90, "a number > 0 and <= 1")
        scale_type = get("type", _scale_type, "rps", "one of " + ", ".join(SCALE_TYPES))
        if minimum == 0:
            zero = True  # min 0 can only mean "scale to zero when idle"
        if maximum < max(1, minimum):
            raise InvalidScalingLabel(f"label {LABEL_PREFIX}max={maximum}: expected >= {max(1, minimum)} "
                                      f"(the minimum, and at least 1)")
        return cls(minimum, maximum, zero, zero_duration, target, proportion, scale_type)


def desired_replicas(policy: ScalingPolicy, ready: int, load: float, idle_seconds: float | None,
                     current: int) -> int:
    """The replica count the autoscaler asks for now.

    `load` is the whole function's load in the policy's unit (requests per second, in-flight requests, or
    milli-CPU); `idle_seconds` is the time since the last request (None if there never was one since it was
    deployed, counted from deployment by the caller); `current` is the replica count asked for so far.
    """
    if policy.zero and idle_seconds is not None and idle_seconds >= policy.zero_duration:
        return 0
    if policy.zero and current == 0:
        return 0  # stays at zero: the gateway itself scales it up when a request arrives
    replicas = max(ready, 1)
    per_replica = load / replicas
    wanted = math.ceil(replicas * (per_replica / (policy.target * policy.target_proportion)))
    return min(policy.max_replicas, max(policy.floor, wanted))


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


def _proportion(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


def zero_duration_seconds(text: str) -> float:
    """The zero-duration label's value in seconds: a Go duration of at least ZERO_DURATION_MIN_SECONDS."""
    value = parse_duration(text)
    if value < ZERO_DURATION_MIN_SECONDS:
        raise ValueError(text)
    return value


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _scale_type(text: str) -> str:
    if text not in SCALE_TYPES:
        raise ValueError(text)
    return text
