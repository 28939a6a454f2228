"""The sample prediction `up` checks the stack with, on the version of iris `up` itself trained.

The store is the user's and outlives the cluster: by the next `up` it may hold newer versions of iris (a retrain,
or an upload with another schema) which iris-predict (the newest version) then serves. A newer version that
refuses the sample is the user's business, not a broken stack: `up` then checks the version it trained (recorded
in .stack/model-store/sample-model.json with its digest, so a version deleted and written again is not taken for
it) through the predict function pinned to it, comes up, and says what iris-predict answers and how to change it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import requests

from mlfunctions_stack import state_files
from mlfunctions_stack.commands import StackError

MODEL = "iris"
SAMPLE = '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'
EXPECTED = ["setosa", "virginica"]
RECORD = "sample-model.json"
FRESH_START = "`make up FRESH=1` (removes every model, password and log in .stack)"


@dataclass(frozen=True)
class Reference:
    """A version of iris that `up` trained, as the store described it then."""
    version: int
    sha256: str


@dataclass
class Outcome:
    answer: requests.Response  # what iris-predict answered (the line `up` prints)
    warnings: list[str]


class SampleModel:
    def __init__(self, stack, store_url: str, token_file: Path):
        self.stack, self.store_url, self.token_file = stack, store_url, token_file
        self.record_path = token_file.parent / RECORD

    def _client(self):
        from iris_client import ModelStoreClient  # the model store's own client

        return ModelStoreClient(self.store_url, self.token_file.read_text().strip())

    def versions(self) -> dict[int, str]:
        """Every version of iris in the store, with its digest."""
        from iris_client import NotFound

        try:
            return {v.version: v.sha256 for v in self._client().list_versions(MODEL)}
        except NotFound:
            return {}

    def reference(self) -> Reference | None:
        """The version `up` trained, when the store still holds it unchanged."""
        record = state_files.read_json(self.record_path) or {}
        version, digest = record.get("version"), record.get("sha256")
        if isinstance(version, int) and self.versions().get(version) == digest:
            return Reference(version, digest)
        return None

    def remember(self, version: int) -> Reference:
        reference = Reference(version, self.versions()[version])
        state_files.write_json(self.record_path, {"model": MODEL, "version": reference.version,
                                                  "sha256": reference.sha256})
        return reference

    def train(self, trainer: dict) -> tuple[Reference, str]:
        """Invoke the train function once; returns the version it wrote and its answer."""
        answer = self.stack.invoke(trainer, "{}")
        if answer.status_code != 200:
            raise StackError(f"training iris failed: {answer.status_code} {answer.text.strip()[:500]}; see "
                             f"{self.stack.state_dir}/faas/logs/ and {self.stack.state_dir}/operator.log, or start "
                             f"from scratch: {FRESH_START}")
        return self.remember(answer.json()["model"]["version"]), answer.text.strip()

    def check(self, predictors: list[dict], reference: Reference | None) -> Outcome:
        """The sample through iris-predict (predictors[0], the newest version); StackError when the stack, not
        the model it serves, is what fails."""
        newest = predictors[0]
        answer = self.stack.invoke(newest, SAMPLE, timeout=60)
        served = ((newest.get("status") or {}).get("model") or {}).get("version")
        if _answers_sample(answer):
            if reference is None and isinstance(served, int):
                self.remember(served)  # none recorded (an older .stack, or an `up` killed before it wrote it)
            return Outcome(answer, [])
        failure = f"{answer.status_code} {answer.text.strip()[:300]}"
        # Without a version of its own to compare with, `up` takes only an answer of the function itself (4xx:
        # the model refuses the input) for the model's fault, not one of the gateway or a timeout.
        model_refused = 400 <= answer.status_code < 500
        if served is None or served == getattr(reference, "version", None) or (reference is None and
                                                                                not model_refused):
            which = f"iris v{served}" if served else "iris"
            raise StackError(f"the sample prediction failed on {which} (iris-predict): {failure}; see "
                             f"{self.stack.state_dir}/faas/logs/{newest['metadata']['namespace']}/ and "
                             f"{self.stack.state_dir}/operator.log, or start from scratch: {FRESH_START}")
        vouched = ""
        pinned = next((p for p in predictors[1:] if reference and p["spec"]["model"].get("version") ==
                       reference.version), None)
        if pinned is not None:
            checked = self.stack.invoke(pinned, SAMPLE, timeout=60)
            if not _answers_sample(checked):
                raise StackError(f"the sample prediction failed on iris v{reference.version}, which `up` trained "
                                 f"({pinned['metadata']['name']}): {checked.status_code} {checked.text[:300]}; "
                                 f"see {self.stack.state_dir}/faas/logs/, or start from scratch: {FRESH_START}")
            vouched = f" ({pinned['metadata']['name']} serves v{reference.version} and answers the sample)"
        return Outcome(answer, [self._newer_version_refuses(served, reference, failure, vouched)])

    def _newer_version_refuses(self, served, reference: Reference | None, failure: str, vouched: str) -> str:
        token = f"$(cat {self.token_file})"
        trained = f"not v{reference.version} that `up` trained" if reference else "not one `up` trained"
        return (f"iris-predict serves iris v{served}, the newest in the store, {trained}, and it refuses the "
                f"sample: {failure}.\n"
                f"  The stack is up and working{vouched}. To make iris-predict serve a version that takes the "
                "sample:\n"
                f"    delete v{served}:  curl -X DELETE -H \"Authorization: Bearer {token}\" "
                f"{self.store_url}/v1/models/{MODEL}/versions/{served}\n"
                "    or train a new version (the curl -X POST .../iris-train line below),\n"
                f"    or start from scratch: Ctrl-C, then {FRESH_START}")


def _answers_sample(answer: requests.Response) -> bool:
    try:
        return answer.status_code == 200 and answer.json().get("predictions") == EXPECTED
    except (ValueError, json.JSONDecodeError, AttributeError):
        return False
