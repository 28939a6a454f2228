"""docs/metrics.md is the one list of metric names: the Grafana dashboard (docs/grafana-dashboard.json) queries only
metrics it lists, and the operator's /metrics server serves every operator metric it lists (read over a real
socket with prometheus_client's own parser)."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

import pytest
from mlfunctions_harness.processes import free_port
from mlfunctions_operator import metrics_server
from mlfunctions_operator.metrics import OperatorMetrics
from prometheus_client.parser import text_string_to_metric_families

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROW = re.compile(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \| (counter|gauge|histogram|info) \| ([^|]*) \| [^|]+ \|$")
# PromQL words that are not metric names: functions are followed by "(", these are not (or are keywords)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def documented() -> dict[str, dict[str, tuple[str, set[str]]]]:
    """component -> metric -> (type, labels), from the tables of docs/metrics.md."""
    tables: dict[str, dict[str, tuple[str, set[str]]]] = {}
    component = None
    for line in (DOCS / "metrics.md").read_text().splitlines():
        if line.startswith("## "):
            component = line[3:].strip()
        elif (row := ROW.match(line)) and component:
            labels = {label.strip() for label in row[3].split(",") if label.strip()}
            tables.setdefault(component, {})[row[1]] = (row[2], labels)
    return tables


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)       # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)                 # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        if rest.startswith("(") or match[0] in KEYWORDS:
            continue
        names.add(match[0])
    return names


def base_name(name: str, histograms: set[str]) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [variable["query"]["query"].removeprefix("label_values(").split(",")[0]
              for variable in dashboard["templating"]["list"] if variable["type"] == "query"]
    return exprs


def test_the_tables_list_every_component():
    tables = documented()
    assert set(tables) == {"operator", "gateway", "functions", "iris-server"}
    assert "controller_runtime_reconcile_total" in tables["operator"]
    assert tables["gateway"]["gateway_functions_seconds"] == ("histogram", {"function_name", "code"})


def test_the_expression_parser_finds_metrics_not_functions_or_labels():
    assert metric_names('histogram_quantile(0.95, sum by (le, function_name) (rate(gateway_functions_seconds_bucket'
                        '{function_name=~"a.b"}[$__rate_interval])))') == {"gateway_functions_seconds_bucket"}
    assert metric_names("sum(iris_models) / count(up)") == {"iris_models", "up"}


def test_the_dashboard_queries_only_documented_metrics():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"] if "targets" in panel)
    metrics = {name: kind for table in documented().values() for name, (kind, _) in table.items()}
    histograms = {name for name, kind in metrics.items() if kind == "histogram"}
    used = {base_name(name, histograms) for expr in dashboard_exprs() for name in metric_names(expr)}
    assert used - set(metrics) == set(), "the dashboard queries metrics docs/metrics.md does not list"
    # the numbers users watch are all there
    assert {"gateway_function_invocation_total", "gateway_functions_seconds", "local_openfaas_cold_starts_total",
            "gateway_service_count", "iris_models", "mlfunctions_model_version_info",
            "controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total",
            "controller_runtime_reconcile_time_seconds"} <= used


@pytest.fixture
def operator_metrics_text() -> str:
    """What the operator's metrics server answers on GET /metrics, over a real socket."""
    port = free_port()

    async def scrape() -> str:
        runner = await metrics_server.start(OperatorMetrics(workers=2).registry, f"127.0.0.1:{port}", healthz=True)
        try:
            return await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
        finally:
            await runner.cleanup()

    return asyncio.run(scrape())


def test_the_operator_serves_every_documented_operator_metric(operator_metrics_text):
    served = {family.name: family for family in text_string_to_metric_families(operator_metrics_text)}
    for name, (kind, labels) in documented()["operator"].items():
        family = served.get(name.removesuffix("_total"))  # the parser names counters without _total
        assert family is not None, f"{name} is documented but not served"
        assert family.type == kind, f"{name}: served as {family.type}, documented as {kind}"
        sample_labels = {label for sample in family.samples for label in sample.labels} - {"le"}
        assert sample_labels == labels, f"{name}: served with labels {sample_labels}, documented {labels}"
