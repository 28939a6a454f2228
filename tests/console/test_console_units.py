"""The console's pure parts: login cookies and CSRF tokens, the gateway's metrics, the predict and train forms
(the estimator allow-list is the CRD's), recent invocations, and the state read from an MLFunction's
status."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import yaml
from mlfunctions_console import overview, predict_form, train_form
from mlfunctions_console.activity import Activity
from mlfunctions_console.auth import Login, Throttle
from mlfunctions_console.gateway import parse_metrics
from mlfunctions_console.settings import ConfigError, from_environment
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cookies_prove_a_session_until_they_expire_or_the_password_changes():
    login = Login("admin", "a-long-password-1", 3600)
    cookie = login.new_cookie(now=1000)
    session = login.session(cookie, now=2000)
    assert session is not None and session.expires == 4600
    assert login.session(cookie, now=4601) is None
    expires, session_id, signature = cookie.split(".")
    assert (
        login.session(f"{int(expires) + 9999}.{session_id}.{signature}", now=2000) is None
    )  # longer: forged
    assert login.session(f"{expires}.other.{signature}", now=2000) is None
    assert Login("admin", "another-password-2", 3600).session(cookie, now=2000) is None
    assert login.csrf_ok(session, login.csrf_token(session))
    other = Login("admin", "a-long-password-1", 3600).session(login.new_cookie(now=1000), now=2000)
    assert not login.csrf_ok(session, login.csrf_token(other))  # another session's token
    assert not login.csrf_ok(session, "") and not login.csrf_ok(session, None)


def test_basic_credentials_and_the_throttle():
    login = Login("admin", "a-long-password-1", 3600)
    header = "Basic " + base64.b64encode(b"admin:a-long-password-1").decode()
    assert login.check_basic(header)
    assert not login.check_basic("Basic " + base64.b64encode(b"admin:wrong").decode())
    assert (
        not login.check_basic("Basic !!!")
        and not login.check_basic("Bearer x")
        and not login.check_basic(None)
    )
    throttle = Throttle(limit=3, window_seconds=60)
    for at in (0, 1, 2):
        assert throttle.blocked_for(now=at) == 0
        throttle.failed(now=at)
    assert throttle.blocked_for(now=10) == pytest.approx(50)
    assert throttle.blocked_for(now=61) == 0  # the first failure left the window


def test_settings_refuse_a_console_without_a_password(tmp_path):
    with pytest.raises(ConfigError, match="CONSOLE_PASSWORD"):
        from_environment({"CONSOLE_PASSWORD": "short"})
    (tmp_path / "pw").write_text("long-enough-password\n")
    settings = from_environment({"CONSOLE_PASSWORD_FILE": str(tmp_path / "pw"), "CONSOLE_PORT": "9000"})
    assert (
        settings.password == "long-enough-password" and settings.username == "admin" and settings.port == 9000
    )
    with pytest.raises(ConfigError, match="CONSOLE_GATEWAY_URL"):
        from_environment({"CONSOLE_PASSWORD": "long-enough-password", "CONSOLE_GATEWAY_URL": "gateway:8080"})


def test_settings_of_gateway_mode(tmp_path):
    base = {"CONSOLE_PASSWORD": "long-enough-password"}
    assert not from_environment(base).gateway_mode  # functionResource by default
    with pytest.raises(ConfigError, match="CONSOLE_OPENFAAS_DEPLOY"):
        from_environment({**base, "CONSOLE_OPENFAAS_DEPLOY": "crd"})
    with pytest.raises(ConfigError, match="CONSOLE_GATEWAY_CREDENTIALS_DIR"):
        from_environment({**base, "CONSOLE_OPENFAAS_DEPLOY": "gatewayAPI"})
    settings = from_environment({**base, "CONSOLE_OPENFAAS_DEPLOY": "gatewayAPI",
                                 "CONSOLE_GATEWAY_CREDENTIALS_DIR": str(tmp_path)})
    with pytest.raises(OSError):  # no files yet: the page says so when it reads the gateway
        settings.gateway_credentials()
    (tmp_path / "basic-auth-user").write_text("admin\n")
    (tmp_path / "basic-auth-password").write_text("secret\n")
    assert settings.gateway_mode and settings.gateway_credentials() == ("admin", "secret")


def test_the_gateways_report_wins_over_the_status_in_gateway_mode():
    mlfunction = {"metadata": {"namespace": "ds", "name": "p"}, "spec": {"task": "predict"},
                  "status": {"function": {"name": "p", "namespace": "fn"}, "replicas": 1, "availableReplicas": 1}}
    report = {"metadata": {"name": "p", "namespace": "fn"}, "status": {"replicas": 3, "availableReplicas": 2},
              "invocationCount": 7}
    live = overview.build(mlfunction, report, None, Activity(), live=True)
    assert (live.ready, live.desired, live.total_invocations) == (2, 3, 7)
    resource = overview.build(mlfunction, report, None, Activity())  # a Function resource: the status first
    assert (resource.ready, resource.desired, resource.total_invocations) == (1, 1, None)


def test_gateway_metrics_of_openfaas_and_of_the_local_gateway():
    text = "\n".join(
        [
            "# HELP gateway_function_invocation_total Requests",
            'gateway_function_invocation_total{code="200",function_name="a.openfaas-fn"} 7',
            'gateway_function_invocation_total{code="500",function_name="a.openfaas-fn"} 2',
            'gateway_service_count{function_name="a.openfaas-fn"} 3',
            'gateway_functions_seconds_sum{code="200",function_name="a.openfaas-fn"} 0.9',
            'gateway_functions_seconds_count{code="200",function_name="a.openfaas-fn"} 9',
            'gateway_function_invocation_total{function_name="b.fn"} 1',
            "local_openfaas_autoscaler_passes_total 40",
        ]
    )
    metrics = parse_metrics(text)
    assert metrics["a.openfaas-fn"].invocations == 9 and metrics["a.openfaas-fn"].ready_replicas == 3
    assert metrics["a.openfaas-fn"].mean_seconds == pytest.approx(0.1)
    assert metrics["b.fn"].ready_replicas is None and metrics["b.fn"].mean_seconds is None


def test_recent_invocations_span_the_window_and_survive_a_counter_reset():
    activity = Activity(window_seconds=60)
    assert activity.recent("f").invocations is None
    for at, total in ((0, 10), (30, 14), (70, 20), (100, 25)):
        activity.observe({"f": total}, now=at)
    recent = activity.recent("f")
    assert (recent.invocations, recent.seconds) == (11, 70)  # from the sample at 30 (just outside 60 s)
    activity.observe({"f": 3}, now=110)  # the gateway restarted
    assert activity.recent("f").invocations == 3


def test_the_estimator_allow_list_is_the_crds():
    crd = yaml.safe_load((REPO_ROOT / "crds" / "mlfunctions.dev_mlfunctions.yaml").read_text())
    training = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "training"
    ]["properties"]
    assert list(train_form.CLASSIFIERS + train_form.REGRESSORS) == training["estimator"]["enum"]


def test_train_form_offers_only_what_the_spec_allows():
    fixed = train_form.for_spec({"dataset": "iris", "estimator": "SVC", "params": {"C": 2}})
    assert fixed.fixed and fixed.estimators == () and fixed.param_fields == []
    # Nothing may change: whatever the form says, the call trains the spec as it is.
    assert json.loads(train_form.request_body(fixed, {"estimator": "GaussianNB", "param.C": "9"})) == {}

    spec = {
        "dataset": "diabetes",
        "estimator": "Ridge",
        "params": {"alpha": 0.5},
        "allowOverrides": ["estimator", "params", "testSize", "randomState"],
        "paramBounds": {
            "alpha": {"minimum": 0.01, "maximum": 10},
            "max_depth": {"minimum": 1, "maximum": 8},
            "solver": {"values": ["auto", "svd"]},
        },
    }
    form = train_form.for_spec(spec)
    assert not form.fixed and form.estimators == train_form.REGRESSORS
    assert [(f.name, f.value) for f in form.param_fields] == [
        ("alpha", "0.5"),
        ("max_depth", ""),
        ("solver", ""),
    ]
    body = json.loads(
        train_form.request_body(
            form,
            {
                "estimator": "Lasso",
                "param.alpha": "1",
                "param.max_depth": "",
                "param.solver": "svd",
                "testSize": "0.3",
                "randomState": "7",
            },
        )
    )
    assert body == {
        "estimator": "Lasso",
        "params": {"alpha": 1, "solver": "svd"},
        "testSize": 0.3,
        "randomState": 7,
    }
    assert isinstance(
        json.loads(train_form.request_body(form, {"param.max_depth": "3"}))["params"]["max_depth"], int
    )
    for values, complaint in (
        ({"estimator": "SVC"}, "choose a regressor"),
        ({"param.alpha": "20"}, "alpha: must be between 0.01 and 10"),
        ({"param.alpha": "lots"}, "alpha: 'lots' is not a number"),
        ({"param.solver": "lbfgs"}, "solver: choose one of auto, svd"),
        ({"testSize": "1"}, "strictly between"),
        ({"randomState": "-1"}, "whole number"),
    ):
        with pytest.raises(train_form.FormError, match=complaint):
            train_form.request_body(form, values)


IRIS = {
    "task": "classification",
    "dataset": "iris",
    "features": 4,
    "classes": ["setosa", "versicolor", "virginica"],
    "featureNames": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
}


def test_predict_form_fits_the_model():
    form = predict_form.for_model(IRIS)
    assert form.kind == "numbers" and [f.label for f in form.fields] == IRIS["featureNames"]
    body, media = predict_form.request_body(form, {"f0": "5.1", "f1": "3.5", "f2": " 1.4", "f3": "0.2"}, None)
    assert media == "application/json"
    assert json.loads(body) == {"instances": [[5.1, 3.5, 1.4, 0.2]], "probabilities": True}
    with pytest.raises(predict_form.FormError, match=r"petal width \(cm\): 'x' is not a number"):
        predict_form.request_body(form, {"f0": "1", "f1": "1", "f2": "1", "f3": "x"}, None)
    with pytest.raises(predict_form.FormError, match="finite"):
        predict_form.request_body(form, {"f0": "nan", "f1": "1", "f2": "1", "f3": "1"}, None)
    regression = predict_form.for_model({"task": "regression", "features": 2})
    assert "probabilities" not in json.loads(
        predict_form.request_body(regression, {"f0": "1", "f1": "2"}, None)[0]
    )
    assert predict_form.for_model(None, "the store is down").kind == "json"


def test_predict_form_takes_a_drawing_or_an_upload_as_png():
    form = predict_form.for_model(
        {"task": "classification", "features": 64, "image": {"width": 8, "height": 8}}
    )
    assert form.kind == "image"
    picture = io.BytesIO()
    Image.new("L", (16, 16), 255).save(picture, "PNG")
    png = picture.getvalue()
    drawn = "data:image/png;base64," + base64.b64encode(png).decode()
    for values, upload in (({"drawing": drawn}, None), ({}, png)):
        body, _ = predict_form.request_body(form, values, upload)
        assert base64.b64decode(json.loads(body)["instances"][0]["b64"]) == png
    for values, upload, complaint in (
        ({}, None, "draw a digit"),
        ({}, b"GIF89a", "must be a PNG"),
        ({"drawing": "data:image/gif;base64,AAAA"}, None, "not sent as a PNG"),
    ):
        with pytest.raises(predict_form.FormError, match=complaint):
            predict_form.request_body(form, values, upload)


def test_answers_are_read_with_probabilities_highest_first():
    answer = predict_form.read_answer(
        {
            "predictions": ["virginica"],
            "model": {"name": "iris", "version": 3},
            "probabilities": [{"setosa": 0.01, "versicolor": 0.2, "virginica": 0.79}],
        }
    )
    assert answer.prediction == "virginica" and answer.version == 3
    assert [name for name, _ in answer.probabilities] == ["virginica", "versicolor", "setosa"]
    with pytest.raises(ValueError):
        predict_form.read_answer({"error": "x"})


def _condition(kind: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def test_state_follows_kstatus():
    def mlf(conditions, generation=2, observed=2):
        return {
            "metadata": {"generation": generation},
            "status": {"observedGeneration": observed, "conditions": conditions},
        }

    stalled = mlf(
        [
            _condition("Ready", "False", "ModelStoreNotFound"),
            _condition("Stalled", "True", "ModelStoreNotFound", "ModelStore x not found"),
        ]
    )
    assert overview.state_of(stalled) == ("Stalled", "ModelStoreNotFound", "ModelStore x not found")
    assert overview.state_of(mlf([_condition("Ready", "True", "ScaledToZero")]))[:2] == (
        "Ready",
        "ScaledToZero",
    )
    assert overview.state_of(mlf([_condition("Ready", "True", "Deployed")], observed=1))[0] == "Reconciling"
    assert overview.state_of({"metadata": {"generation": 1}})[0] == "Waiting"
