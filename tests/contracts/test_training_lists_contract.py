"""The datasets and estimators a train function accepts: their home is the train function (functions/train/
datasets.py and estimators.py); the operator's API carries a copy, because its image must not install numpy and
scikit-learn, and generates the CRD's enums and its dataset/estimator rule from it. These tests fail when a copy
differs from the home, and when the API server admits a training spec the train function would refuse (or the
other way round)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import get_args

import pytest
import train_function
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from mlfunctions_operator import GROUP, VERSION
from mlfunctions_operator.api import mlfunction

REPO = Path(__file__).resolve().parents[2]
datasets = train_function.module("datasets")
estimators = train_function.module("estimators")
training_request = train_function.module("training_request")
TrainingInputError = train_function.module("training_errors").TrainingInputError


def test_the_operators_datasets_are_the_train_functions():
    assert mlfunction.DATASETS == datasets.BUNDLED
    assert get_args(mlfunction.Dataset) == tuple(datasets.BUNDLED)
    assert mlfunction.REGRESSION_DATASETS == tuple(n for n, task in datasets.BUNDLED.items() if task == "regression")


def test_the_operators_estimators_are_the_train_functions():
    assert mlfunction.CLASSIFIERS == tuple(estimators.CLASSIFIERS)
    assert mlfunction.REGRESSORS == tuple(estimators.REGRESSORS)
    assert get_args(mlfunction.Estimator) == tuple(estimators.ESTIMATORS)


def _training_schema(path: Path) -> dict:
    crd = yaml.safe_load(path.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["training"]


@pytest.mark.parametrize("path", ["crds/mlfunctions.dev_mlfunctions.yaml",
                                  "charts/mlfunctions/crds/mlfunctions.dev_mlfunctions.yaml"])
def test_the_committed_crds_enumerate_the_train_functions_lists(path):
    training = _training_schema(REPO / path)
    assert training["properties"]["dataset"]["enum"] == list(datasets.BUNDLED)
    assert training["properties"]["estimator"]["enum"] == list(estimators.ESTIMATORS)


def _train_function_accepts(dataset: str, estimator: str) -> bool:
    """The train function's verdict on its configuration (what the operator passes in TRAIN_DATASET and
    TRAIN_ESTIMATOR), and the task check it makes before fitting (training.py)."""
    try:
        spec = training_request.from_environment({"TRAIN_DATASET": dataset, "TRAIN_ESTIMATOR": estimator})
    except TrainingInputError:
        return False
    return estimators.task_of(spec.estimator) == datasets.BUNDLED[spec.dataset]


# Every dataset with every estimator, plus names the train function does not know.
PAIRS = [(d, e) for d in [*datasets.BUNDLED, "mnist"] for e in [*estimators.ESTIMATORS, "XGBClassifier"]]


@pytest.fixture(scope="module")
def dry_run(k8s: client.ApiClient, install_crds):
    """dry_run(training) -> None if the API server admits a train MLFunction with it, else its message."""
    install_crds("crds")
    core, custom = client.CoreV1Api(k8s), client.CustomObjectsApi(k8s)
    namespace = f"t-training-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))

    def create(training: dict) -> str | None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MLFunction", "metadata": {"name": "train"},
                "spec": {"task": "train", "model": {"name": "iris"}, "training": training}}
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "mlfunctions", body, dry_run="All")
        except ApiException as error:
            assert error.status == 422, error.body
            return json.loads(error.body)["message"]
        return None

    yield create
    core.delete_namespace(namespace)


def test_the_api_server_admits_exactly_what_the_train_function_accepts(dry_run):
    disagreements = []
    for dataset, estimator in PAIRS:
        message = dry_run({"dataset": dataset, "estimator": estimator})
        accepts = _train_function_accepts(dataset, estimator)
        if (message is None) != accepts:
            disagreements.append(f"{dataset} + {estimator}: the API server "
                                 f"{'admits' if message is None else 'refuses'} it, the train function "
                                 f"{'accepts' if accepts else 'refuses'} it ({message})")
        elif message is not None:
            assert "spec.training" in message, message
    assert not disagreements, "\n".join(disagreements)
    assert sum(_train_function_accepts(d, e) for d, e in PAIRS) == \
        len(estimators.CLASSIFIERS) * 4 + len(estimators.REGRESSORS)  # the table is not all one verdict
