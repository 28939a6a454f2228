"""Who may call the train function, and what one call may change: the policy the operator writes into
TRAIN_CALL_POLICY from the MLFunction's spec.training. Pure but for reading the credential's digest file.

    {"credential": "invoke-token-sha256",          # the mounted secret file with the callers' token's SHA-256
     "allowOverrides": ["estimator", "params"],    # what a request may change (dataset, estimator, params,
                                                   #   testSize, randomState, data = a CSV body)
     "paramBounds": {"C": {"minimum": 0.01, "maximum": 100}, "kernel": {"values": ["rbf", "linear"]}},
     "maxDataBytes": 1048576,                      # the largest CSV body
     "scheduledRuns": true}                        # spec.training.schedule is set: see below

A train function on a schedule is invoked by the OpenFaaS cron-connector, which sends no credential. Its policy
lets a call without one train exactly what the spec says (no body, no query, no override), at most once a minute:
anyone who reaches it can start a run of the configured training, never change what it trains or send data.

Without TRAIN_CALL_POLICY (the function run by hand, or by tests, outside the operator) anyone may call it and
change anything, as before the operator wrote one; the operator always writes one, and an MLFunction cannot
unset it (the CRD refuses the name in spec.env).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OVERRIDES = ("dataset", "estimator", "params", "testSize", "randomState", "data")
# A body that carries only options (JSON): small, whatever the data limit.
MAX_OPTIONS_BYTES = 64 * 1024
# The cron-connector's finest schedule is once a minute: more anonymous runs than that are not the schedule's.
SCHEDULED_RUN_INTERVAL_SECONDS = 60.0
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="train"'}


class CallRefused(Exception):
    """The request may not do this: answered with `status` and the message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers


class PolicyError(Exception):
    """TRAIN_CALL_POLICY is not a valid policy (the function does not start)."""


@dataclass(frozen=True)
class CallPolicy:
    credential_file: Path | None  # None: no credential asked for
    allow: frozenset[str]
    param_bounds: Mapping[str, Mapping[str, Any]] | None = None  # None: any parameter
    max_data_bytes: int = 0
    max_options_bytes: int = MAX_OPTIONS_BYTES
    scheduled_runs: bool = False  # a call without the credential may run the configured training

    def body_limit(self, csv_body: bool) -> int:
        """The most a request body may hold: a CSV table up to maxDataBytes, options (JSON) only a little."""
        return self.max_data_bytes if csv_body else self.max_options_bytes


def open_policy(max_body: int) -> CallPolicy:
    """Anyone, anything: the function outside the operator."""
    return CallPolicy(credential_file=None, allow=frozenset(OVERRIDES), param_bounds=None, max_data_bytes=max_body,
                      max_options_bytes=max_body)


def from_environment(text: str | None, secrets_dir: Path, max_body: int) -> CallPolicy:
    if not text:
        return open_policy(max_body)
    try:
        raw = json.loads(text)
        allow = frozenset(raw.get("allowOverrides") or ())
        bounds = dict(raw.get("paramBounds") or {})
        credential = str(raw["credential"])
        max_data = int(raw.get("maxDataBytes") or 0)
        scheduled = bool(raw.get("scheduledRuns", False))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise PolicyError(f"TRAIN_CALL_POLICY is not a valid policy: {error}") from None
    if not allow <= set(OVERRIDES) or "/" in credential or not all(isinstance(b, dict) for b in bounds.values()):
        raise PolicyError(f"TRAIN_CALL_POLICY is not a valid policy: {text[:200]}")
    return CallPolicy(credential_file=secrets_dir / credential, allow=allow, param_bounds=bounds,
                      max_data_bytes=min(max_data, max_body), scheduled_runs=scheduled)


def authenticate(policy: CallPolicy, authorization: str | None) -> bool:
    """True when the request carries the callers' token (or none is asked for); False for a call without any
    that the policy lets run the configured training (scheduled runs); else raises CallRefused (401). The digest
    file is read at every call: a new token (the invoke Secret deleted and made anew) is honoured once the kubelet
    updates the mount."""
    if policy.credential_file is None:
        return True
    if not authorization and policy.scheduled_runs:
        return False
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise CallRefused(401, "this function needs a credential: send 'Authorization: Bearer <token>' with the "
                               "token in Secret <MLFunction>-invoke (key token) of the MLFunction's namespace",
                          CHALLENGE)
    try:
        expected = policy.credential_file.read_text().strip()
    except OSError:
        expected = ""
    digest = hashlib.sha256(presented.strip().encode()).hexdigest()
    # Constant time: how much of a guess matched must not show in how long the refusal takes.
    if not expected or not hmac.compare_digest(digest.encode(), expected.encode()):
        raise CallRefused(401, "the credential is not valid for this function", CHALLENGE)
    return True


class ScheduledRuns:
    """Calls without the credential: the configured training only, one a minute at most."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None

    def admit(self, overrides: Mapping[str, Any], body: bytes, *, csv_body: bool) -> None:
        if csv_body or overrides or body.strip() not in (b"", b"{}"):
            raise CallRefused(401, "only the scheduled run of the configured training needs no credential; to "
                                   "change what is trained, send 'Authorization: Bearer <token>' with the token in "
                                   "Secret <MLFunction>-invoke (key token)", CHALLENGE)
        now = self._clock()
        if self._last is not None and now - self._last < SCHEDULED_RUN_INTERVAL_SECONDS:
            wait = SCHEDULED_RUN_INTERVAL_SECONDS - (now - self._last)
            raise CallRefused(429, f"a run without a credential started {now - self._last:.0f} s ago; one a "
                                   f"minute at most", {"Retry-After": str(int(wait) + 1)})
        self._last = now


def check_overrides(policy: CallPolicy, overrides: Mapping[str, Any], *, csv_body: bool) -> None:
    """Raises CallRefused (403) when the request changes what the MLFunction does not let callers change, or a
    parameter beyond its bounds. Unknown fields are left to training_request (400)."""
    asked = [name for name in OVERRIDES if name in overrides and name != "data"]
    if csv_body:
        asked.append("data")
    refused = [name for name in asked if name not in policy.allow]
    if refused:
        allowed = ", ".join(sorted(policy.allow)) or "nothing"
        raise CallRefused(403, f"this function does not let callers change {', '.join(refused)} "
                               f"(spec.training.allowOverrides allows: {allowed})")
    params = overrides.get("params")
    if policy.param_bounds is not None and isinstance(params, dict):
        for name, value in params.items():
            _check_param(policy, name, value)


def _check_param(policy: CallPolicy, name: str, value: Any) -> None:
    bounds = policy.param_bounds or {}
    bound = bounds.get(name)
    if bound is None:
        allowed = ", ".join(sorted(bounds)) or "none"
        raise CallRefused(403, f"parameter {name!r} may not be set by callers (spec.training.paramBounds names: "
                               f"{allowed})")
    if "values" in bound and bound["values"] is not None:
        if not isinstance(value, str) or value not in bound["values"]:
            raise CallRefused(403, f"parameter {name!r} must be one of {bound['values']}, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CallRefused(403, f"parameter {name!r} must be a number, got {value!r}")
    low, high = bound.get("minimum"), bound.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        raise CallRefused(403, f"parameter {name!r} must be within [{low}, {high}] (spec.training.paramBounds), "
                               f"got {value!r}")
