"""The console's configuration, read once from the environment (the chart sets it; `make up` too).

Secrets are read from files (how Kubernetes mounts a Secret) and never logged; the plain-variable forms exist
for running it by hand. A missing or invalid setting stops the console at start with a message naming it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIN_PASSWORD = 12


class ConfigError(ValueError):
    """A setting is missing or invalid: the message names the variable."""


@dataclass(frozen=True)
class Settings:
    username: str
    password: str = ""  # the console's own login; required
    host: str = "127.0.0.1"
    port: int = 8080
    kubeconfig: Path | None = None  # None: the pod's ServiceAccount (in-cluster)
    operator_namespace: str = "mlfunctions-system"  # where ModelStores live
    function_namespace: str = "openfaas-fn"  # where the OpenFaaS Functions live
    gateway_url: str = "http://gateway.openfaas:8080"
    metrics_url: str = ""  # the gateway's Prometheus text; empty: <gateway_url>/metrics
    store_url: str = ""  # empty: the default ModelStore's status.url
    store_token_file: Path | None = None  # a read-only store token
    default_store: str = "default"
    secure_cookies: bool = False  # Secure flag on the session cookie (set it when served over https)
    session_hours: float = 12.0
    request_timeout: float = 10.0  # Kubernetes API, store, metrics
    invoke_timeout: float = 300.0  # a predict or train call through the gateway (trainings take a while)
    # How the operator deploys functions (the chart's openfaas.deploy): functionResource, Function resources to
    # read; gatewayAPI (OpenFaaS CE), none: function state comes from the gateway's API, with its basic auth.
    openfaas_deploy: str = "functionResource"
    gateway_credentials_dir: Path | None = None  # gatewayAPI: the files basic-auth-user, basic-auth-password

    @property
    def gateway_mode(self) -> bool:
        return self.openfaas_deploy == "gatewayAPI"

    def gateway_credentials(self) -> tuple[str, str]:
        """The gateway's basic auth, read at each use so a changed Secret is picked up without a restart.
        Raises OSError when the files cannot be read."""
        folder = self.gateway_credentials_dir or Path()
        return ((folder / "basic-auth-user").read_text().strip(),
                (folder / "basic-auth-password").read_text().strip())

    @property
    def gateway_metrics_url(self) -> str:
        return self.metrics_url or f"{self.gateway_url.rstrip('/')}/metrics"

    def store_token(self) -> str:
        """The store's read token, read at each use so a rotated Secret is picked up without a restart."""
        if self.store_token_file is None:
            return ""
        try:
            return self.store_token_file.read_text().strip()
        except OSError:
            return ""


def _secret(env: Mapping[str, str], name: str) -> str:
    """$NAME_FILE (a mounted Secret's key) wins over $NAME."""
    path = env.get(f"{name}_FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE={path} cannot be read: {error.strerror}") from None
    return env.get(name, "").strip()


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={value!r} must start with http:// or https://")
    return value.rstrip("/")


def from_environment(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    password = _secret(env, "CONSOLE_PASSWORD")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(
            f"CONSOLE_PASSWORD (or CONSOLE_PASSWORD_FILE) must hold at least {MIN_PASSWORD} "
            "characters: the console never runs without its login"
        )
    token_file = env.get("CONSOLE_STORE_TOKEN_FILE", "").strip()
    deploy = env.get("CONSOLE_OPENFAAS_DEPLOY", "").strip() or "functionResource"
    if deploy not in ("functionResource", "gatewayAPI"):
        raise ConfigError(f"CONSOLE_OPENFAAS_DEPLOY={deploy!r} must be functionResource or gatewayAPI")
    credentials = env.get("CONSOLE_GATEWAY_CREDENTIALS_DIR", "").strip()
    if deploy == "gatewayAPI" and not credentials:
        raise ConfigError("CONSOLE_OPENFAAS_DEPLOY=gatewayAPI needs CONSOLE_GATEWAY_CREDENTIALS_DIR: the folder of "
                          "the gateway's basic-auth-user and basic-auth-password (its function state is read there)")
    kubeconfig = env.get("CONSOLE_KUBECONFIG", "").strip() or env.get("KUBECONFIG", "").strip()
    return Settings(
        username=_secret(env, "CONSOLE_USERNAME") or "admin",
        password=password,
        host=env.get("CONSOLE_HOST", "127.0.0.1"),
        port=_int(env, "CONSOLE_PORT", 8080),
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        operator_namespace=env.get("CONSOLE_OPERATOR_NAMESPACE", "mlfunctions-system"),
        function_namespace=env.get("CONSOLE_FUNCTION_NAMESPACE", "openfaas-fn"),
        gateway_url=_url(env, "CONSOLE_GATEWAY_URL", "http://gateway.openfaas:8080"),
        metrics_url=_url(env, "CONSOLE_GATEWAY_METRICS_URL", ""),
        store_url=_url(env, "CONSOLE_STORE_URL", ""),
        store_token_file=Path(token_file) if token_file else None,
        default_store=env.get("CONSOLE_DEFAULT_MODEL_STORE", "default"),
        secure_cookies=env.get("CONSOLE_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
        session_hours=_float(env, "CONSOLE_SESSION_HOURS", 12.0),
        request_timeout=_float(env, "CONSOLE_REQUEST_TIMEOUT_SECONDS", 10.0),
        invoke_timeout=_float(env, "CONSOLE_INVOKE_TIMEOUT_SECONDS", 300.0),
        openfaas_deploy=deploy,
        gateway_credentials_dir=Path(credentials) if credentials else None,
    )
