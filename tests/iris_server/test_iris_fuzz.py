"""Schema-driven fuzzing of the live server's /openapi.json with schemathesis: no input may cause a 5xx.

Every operation gets valid (positive) and schema-violating (negative) requests with the admin token, so they
get past authentication into the handlers. Bounded: ~30 examples per operation and mode.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from iris_samples import onnx_model

pytestmark = pytest.mark.server

EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def fuzz_target(iris):
    # Real data to find: fuzzed reads sometimes hit an existing model, version and alias, not only 404s.
    iris.admin.upload("iris", onnx_model(seed=700))
    iris.admin.set_alias("iris", "production", 1)
    return iris


def _fuzz(operation, mode: GenerationMode, admin_token: str) -> None:
    checks = [not_a_server_error]
    if (
        mode is GenerationMode.POSITIVE
    ):  # conformance of answers to valid requests; invalid ones only must not 5xx
        checks += [status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        timeout = (case.query or {}).get("timeout") if isinstance(case.query, dict) else None
        if case.path == "/v1/changes" and isinstance(timeout, int | float) and 0 < timeout <= 60:
            case.query["timeout"] = 0.1  # a long-poll would wait out its timeout: the answers are what is fuzzed
        case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=checks)

    run()


def test_no_input_causes_a_server_error(fuzz_target):
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14, "the schema lost operations; the fuzz run would prove little"
    failures = []
    for operation in operations:
        takes_input = any(True for _ in operation.iter_parameters()) or bool(operation.body)
        modes = (
            (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes_input else (GenerationMode.POSITIVE,)
        )
        for mode in modes:
            try:
                _fuzz(operation, mode, fuzz_target.admin_token)
            except Exception as error:  # collect them all: one report naming every failing operation
                failures.append(f"{operation.label} [{mode.value}]: {error}")
    assert not failures, "\n\n".join(failures)
