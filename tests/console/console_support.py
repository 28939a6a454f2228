"""What the console's tests share: the stack they run against, its MLFunctions, and signing in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import requests
from mlfunctions_stack.up import LocalStack

SCALE_TO_ZERO_AFTER = "3s"


@dataclass
class ConsoleStack:
    stack: LocalStack
    url: str
    user: str
    password: str
    store_url: str
    admin_token: str
    read_token: str
    kubeconfig: Path
    namespace: str  # the MLFunctions'
    operator_namespace: str
    function_namespace: str
    workdir: Path
    mlfunctions: dict[str, dict] = field(default_factory=dict)

    def session(self) -> requests.Session:
        """A signed-in session (the login form, as a browser does), with the page's CSRF token at hand."""
        session = requests.Session()
        answer = session.post(
            f"{self.url}/login",
            data={"username": self.user, "password": self.password, "next": "/"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 303, answer.text
        return session

    def gateway_url(self) -> str:
        return self.stack.gateway.url


def _mlfunction(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "mlfunctions.dev/v1alpha1",
        "kind": "MLFunction",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def functions_of(namespace: str) -> list[dict]:
    iris = {
        "dataset": "iris",
        "estimator": "LogisticRegression",
        "params": {"max_iter": 300},
        "allowOverrides": ["estimator", "params"],
        "paramBounds": {
            "max_iter": {"minimum": 50, "maximum": 2000},
            "n_estimators": {"minimum": 1, "maximum": 200},
            "criterion": {"values": ["gini", "entropy"]},
        },
    }
    return [
        _mlfunction(namespace, "iris-train", {"task": "train", "model": {"name": "iris"}, "training": iris}),
        _mlfunction(
            namespace,
            "iris-train-other",
            {
                "task": "train",
                "model": {"name": "iris"},
                "training": iris,
                "scaling": {"minReplicas": 0, "maxReplicas": 1},
            },
        ),
        _mlfunction(
            namespace,
            "digits-train",
            {
                "task": "train",
                "model": {"name": "digits"},
                "training": {
                    "dataset": "digits",
                    "estimator": "LogisticRegression",
                    "params": {"max_iter": 2000},
                },
            },
        ),
        _mlfunction(
            namespace,
            "iris-predict",
            {"task": "predict", "model": {"name": "iris"}, "scaling": {"minReplicas": 1, "maxReplicas": 2}},
        ),
        _mlfunction(
            namespace,
            "iris-cold",
            {
                "task": "predict",
                "model": {"name": "iris"},
                "scaling": {"minReplicas": 0, "maxReplicas": 1, "scaleToZeroAfter": SCALE_TO_ZERO_AFTER},
            },
        ),
        _mlfunction(
            namespace,
            "digits-predict",
            {"task": "predict", "model": {"name": "digits"}, "scaling": {"minReplicas": 1, "maxReplicas": 1}},
        ),
    ]


def sign_in(url: str, user: str, password: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"{url}/login", data={"username": user, "password": password}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return session


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
