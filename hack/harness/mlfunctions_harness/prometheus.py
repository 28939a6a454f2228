"""A real Prometheus server (built by hack/prometheus.sh) scraping the local stack, and a PromQL helper.

Scrape jobs, named as docs/metrics.md names the components: `operator`, `gateway` and `iris-server` as static
targets; `functions` found through the gateway's Prometheus HTTP service discovery (/system/metrics-targets,
behind the gateway's basic auth like every /system route), so replicas that come and go are scraped as they live.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from mlfunctions_harness import processes

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "prometheus.sh"


class PrometheusError(RuntimeError):
    pass


def binary() -> Path:
    """The prometheus executable, built (once, cached in ~/.cache/mlfunctions/prometheus) by hack/prometheus.sh."""
    built = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if built.returncode != 0:
        raise PrometheusError("hack/prometheus.sh could not provide Prometheus (see its output above)")
    return Path(built.stdout.strip()) / "prometheus"


@dataclass
class Targets:
    """What to scrape: host:port of each component; `gateway_auth` = the gateway's /system (user, password)."""
    operator: str | None = None
    gateway: str | None = None
    iris_server: str | None = None
    gateway_auth: tuple[str, str] | None = None
    scrape_interval: str = "1s"


def config(targets: Targets) -> dict:
    """prometheus.yml for these targets (a job only for the components that are given)."""
    jobs = []
    for job, address in (("operator", targets.operator), ("gateway", targets.gateway),
                         ("iris-server", targets.iris_server)):
        if address:
            jobs.append({"job_name": job, "static_configs": [{"targets": [address]}]})
    if targets.gateway:
        discovery: dict = {"url": f"http://{targets.gateway}/system/metrics-targets",
                           "refresh_interval": targets.scrape_interval}
        if targets.gateway_auth:
            discovery["basic_auth"] = {"username": targets.gateway_auth[0], "password": targets.gateway_auth[1]}
        # Each target's labels carry __metrics_path__ (/_/metrics): Prometheus takes it from discovery.
        jobs.append({"job_name": "functions", "http_sd_configs": [discovery]})
    return {"global": {"scrape_interval": targets.scrape_interval, "scrape_timeout": targets.scrape_interval,
                       "evaluation_interval": targets.scrape_interval},
            "scrape_configs": jobs}


@dataclass
class PrometheusProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    def stop(self) -> None:
        self.session.close()
        processes.stop(self.process, timeout=20.0)

    def query(self, promql: str) -> list[dict]:
        """The instant vector `promql` evaluates to now: [{"metric": {...labels}, "value": [ts, "string"]}]."""
        answer = self.session.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = answer.json()
        if answer.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"query {promql!r}: HTTP {answer.status_code} {body.get('error', answer.text)}")
        if body["data"]["resultType"] != "vector":
            raise PrometheusError(f"query {promql!r} is a {body['data']['resultType']}, not an instant vector")
        return body["data"]["result"]

    def wait_query(self, promql: str, condition: Callable[[list[dict]], bool], timeout: float = 60.0,
                   what: str | None = None) -> list[dict]:
        """Query until `condition(result)` holds (scrapes land every interval); TimeoutError names the last
        result. Returns that result."""
        last: list[dict] = []

        def holds() -> list[dict] | None:
            nonlocal last
            last = self.query(promql)
            return last if condition(last) else None

        try:
            return processes.wait_for(holds, timeout, what or promql, interval=0.25) or last
        except TimeoutError as error:
            raise TimeoutError(f"{error}; last result of {promql!r}: {last}") from None

    def targets(self) -> list[dict]:
        """The active targets with their health (/api/v1/targets)."""
        answer = self.session.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["activeTargets"]


def start(targets: Targets, state_dir: Path, port: int | None = None, timeout: float = 60.0) -> PrometheusProcess:
    """Prometheus on 127.0.0.1:`port` (a free one by default) scraping `targets`; its TSDB and config live in
    `state_dir`. Waits for /-/ready; raises processes.NotHealthy with its log's end if it does not get there."""
    executable = binary()
    state_dir.mkdir(parents=True, exist_ok=True)
    config_path = state_dir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config(targets), sort_keys=False))
    config_path.chmod(0o600)  # it holds the gateway's password
    port = port or processes.free_port()
    log_path = state_dir / "prometheus.log"
    process = processes.spawn([
        str(executable), f"--config.file={config_path}", f"--storage.tsdb.path={state_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
        # A test's stack lives minutes; 1 h of samples is plenty and keeps the TSDB small.
        "--storage.tsdb.retention.time=1h",
    ], log_path, cwd=state_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_healthy(f"{url}/-/ready", process, "Prometheus", log_path, timeout=timeout)
    except BaseException:
        processes.stop(process)
        raise
    return PrometheusProcess(url, process, log_path)


def all_up(result: list[dict], expected: int = 1) -> bool:
    """For `up{job=...}`: at least `expected` targets and every one of them up."""
    return len(result) >= expected and all(sample["value"][1] == "1" for sample in result)

