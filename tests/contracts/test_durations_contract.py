"""scaleToZeroAfter: one grammar everywhere. One table of cases drives the CRD on the real API server, the
operator's pydantic model (which re-checks what it reads) and the local runtime's reading of the zero-duration
label that the operator copies the value into. Whatever the API server admits deploys; whatever it refuses, the
operator and the runtime refuse too.

The grammar is Go's time.ParseDuration (what CEL's duration() and OpenFaaS read), and the value must be at least
1s: `0s` is refused at admission with a message naming the field (docs/api.md says why)."""

from __future__ import annotations

import json
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_openfaas.runtime.scaling import InvalidScalingLabel, ScalingPolicy, zero_duration_seconds
from mlfunctions_operator import GROUP, VERSION
from mlfunctions_operator.api import ScalingSpec
from pydantic import ValidationError

FIELD = "spec.scaling.scaleToZeroAfter"

ADMITTED = [
    "1s", "15m", "1h30m", "1h0m0s", "1.5s", "5.s", "0.5m", ".5m", "+1s", "1000ms", "1000000us",
    "1000000\u00b5s",  # µ, the micro sign
    "1000000\u03bcs",  # μ, the Greek letter mu: Go takes both
    "1000000000ns", "2562047h",
]
REFUSED = [
    "0s", "0", "+0", "-0", "0h0m0s", "00", "-1s", "-15m", "999ms", "999999us", ".5s",  # not at least 1s
    "1d", "1w", "1y", "1mm",  # units durationpy knows and Go does not
    "1h 30m", " 1s", "1s ", "1S", "15", "m", "s", ".", "1e3s", "1..5s", "soon", "",  # not Go's grammar
    "2562048h", "9999999999999h",  # beyond a Go time.Duration (int64 nanoseconds)
]
CASES = [(text, True) for text in ADMITTED] + [(text, False) for text in REFUSED]
IDS = [repr(text) for text, _ in CASES]


def _runtime_accepts(text: str) -> bool:
    try:
        zero_duration_seconds(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text, admitted", CASES, ids=IDS)
def test_the_local_runtime_reads_exactly_what_the_table_admits(text, admitted):
    assert _runtime_accepts(text) is admitted


@pytest.mark.parametrize("text, admitted", CASES, ids=IDS)
def test_the_operator_model_accepts_exactly_what_the_table_admits(text, admitted):
    try:
        ScalingSpec.model_validate({"minReplicas": 0, "scaleToZeroAfter": text})
    except ValidationError as error:
        assert not admitted, f"{text!r} refused by the operator's model: {error}"
        assert "scaleToZeroAfter" in str(error)
    else:
        assert admitted, f"{text!r} accepted by the operator's model"


def test_an_admitted_value_reaches_the_runtime_as_a_usable_label():
    """The label the runtime reads is the spec's value verbatim (builders/function.py copies it)."""
    policy = ScalingPolicy.from_labels({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "1s"})
    assert policy.zero_duration == 1.0
    with pytest.raises(InvalidScalingLabel, match="at least 1s"):
        ScalingPolicy.from_labels({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "0s"})


@pytest.fixture(scope="module")
def dry_run(k8s: client.ApiClient, install_crds):
    """dry_run(scaleToZeroAfter) -> None if the API server admits an MLFunction with it, else its message."""
    install_crds("crds")
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    namespace = f"t-durations-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def create(text: str) -> str | None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": "idle"},
                "spec": {"task": "predict", "model": {"name": "iris"},
                         "scaling": {"minReplicas": 0, "scaleToZeroAfter": text}}}
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", body, dry_run="All")
        except ApiException as error:
            assert error.status == 422, error.body
            return json.loads(error.body)["message"]
        return None

    yield create
    core.delete_namespace(namespace)


@pytest.mark.parametrize("text, admitted", CASES, ids=IDS)
def test_the_api_server_admits_exactly_what_the_table_admits(dry_run, text, admitted):
    message = dry_run(text)
    if admitted:
        assert message is None, f"{text!r} refused by the API server: {message}"
    else:
        assert message is not None, f"{text!r} admitted by the API server"
        assert FIELD in message, message


def test_zero_is_refused_with_a_message_naming_the_field(dry_run):
    message = dry_run("0s")
    assert f"{FIELD}: Invalid value" in message and "at least 1s" in message, message


def test_below_a_microsecond_the_runtime_errs_towards_accepting(dry_run):
    """The one place the table cannot be exact: durationpy reads to the microsecond (Python's timedelta), Go to
    the nanosecond. 999999999ns rounds up to 1s for the runtime, while the API server refuses it: the runtime
    accepts a little more than the API server admits, never less, so no admitted MLFunction is undeployable."""
    assert dry_run("999999999ns") is not None
    assert _runtime_accepts("999999999ns")
