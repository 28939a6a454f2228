"""docs/grafana-dashboard.json against the real Prometheus scraping the stack: every panel's expression (with
Grafana's variables given real values) is PromQL that Prometheus accepts, and each returns data, since the stack
produces every series the dashboard draws (the workload ran a training, predictions and a cold start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.server
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
# What Grafana puts in place of its variables: every function, and a range of several scrapes (1 s apart here).
VARIABLES = {"$function": ".*", "$__rate_interval": "1m"}


def expressions() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel, rows' nested panels included."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(dashboard["panels"])
    for panel in dashboard["panels"]:
        panels += panel.get("panels") or []
    found = [(panel.get("title", ""), target["expr"]) for panel in panels for target in panel.get("targets") or []
             if target.get("expr")]
    assert found, f"{DASHBOARD} has no expressions"
    return found


def concrete(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not know in {expr!r}"
    return expr


@pytest.mark.parametrize(("title", "expr"), expressions(), ids=[f"{t}: {e[:60]}" for t, e in expressions()])
def test_every_panel_query_is_accepted_and_returns_data(observed, title, expr):
    # query() raises PrometheusError when Prometheus refuses the expression (a parse or type error).
    result = observed["prometheus"].wait_query(concrete(expr), bool, what=f"panel {title!r} to return data")
    assert result, f"panel {title!r}: {expr}"


def test_the_function_variable_lists_the_stacks_functions(observed):
    """The dashboard's $function variable: label_values(gateway_function_invocation_total, function_name)."""
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "function"]
    assert variable["definition"] == "label_values(gateway_function_invocation_total, function_name)"
    prometheus = observed["prometheus"]
    answer = prometheus.session.get(f"{prometheus.url}/api/v1/label/function_name/values",
                                    params={"match[]": "gateway_function_invocation_total"}, timeout=10).json()
    assert answer["status"] == "success"
    assert set(observed["calls"]) <= set(answer["data"])
