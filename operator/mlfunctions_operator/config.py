"""Operator configuration from environment variables (prefix MLFUNCTIONS_), with defaults that fit a standard
OpenFaaS installation. Every variable is listed in operator/README.md."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .api.common import Quantity


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLFUNCTIONS_", frozen=True)

    operator_namespace: str = Field("mlfunctions-system", description="Where the operator and its ModelStores live.")
    function_namespace: str = Field("openfaas-fn", description="Where OpenFaaS functions and their Secrets live.")
    gateway_url: str = Field("http://gateway.openfaas:8080", description="The OpenFaaS gateway, for status.url.")
    train_image: str = "ghcr.io/mlfunctions/train:0.1.0"
    predict_image: str = "ghcr.io/mlfunctions/predict:0.1.0"
    # OpenFaaS' `handler` field: what of-watchdog runs in http mode (the template's entry point).
    train_handler: str = "python index.py"
    predict_handler: str = "python index.py"
    iris_server_image: str = "ghcr.io/mlfunctions/iris-server:0.1.0"
    # How functions are deployed (docs/openfaas-editions.md): `functionResource` applies openfaas.com/v1 Functions
    # (OpenFaaS Standard/Enterprise, whose controller owns that CRD); `gatewayAPI` deploys through the gateway's REST
    # API (POST/PUT/DELETE /system/functions), the only way OpenFaaS CE has.
    openfaas_deploy: str = Field("functionResource", pattern="^(functionResource|gatewayAPI)$",
                                 description="functionResource (Function CRD) or gatewayAPI (/system/functions).")
    openfaas_edition: str = Field("standard", pattern="^(standard|enterprise|ce)$",
                                  description="The OpenFaaS edition; ce: one namespace, 15 functions, no scale "
                                              "to zero (checked before deploying, said in a condition).")
    # Basic-auth of the gateway in gatewayAPI mode. The chart mounts an existing Secret (basic-auth-user,
    # basic-auth-password) as files in gateway_credentials_dir, so only the operator's pod sees them, its RBAC needs
    # no Secret verbs for them, and a changed Secret is used without a restart (gateway_credentials.py). Without a
    # directory, the username and password below (fixed for the process).
    gateway_credentials_dir: str | None = Field(None, description="Directory with the files basic-auth-user and "
                                                                 "basic-auth-password (gatewayAPI mode).")
    gateway_username: str = Field("admin", description="Gateway basic-auth user (gatewayAPI mode).")
    gateway_password: SecretStr = Field(SecretStr(""), description="Gateway basic-auth password (gatewayAPI mode).")
    gateway_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of each call to the gateway.")
    default_model_store: str = Field("default", description="The ModelStore used when spec.modelStore is empty.")
    create_default_model_store: bool = Field(True, description="Create the default ModelStore when it is missing.")
    model_refresh_seconds: int = Field(30, ge=1, description="MODEL_REFRESH_SECONDS given to predict functions.")
    model_feed: bool = Field(True, description="Follow each model store's change feed, so an MLFunction learns of "
                                               "a new version at once (false: only at its resync or back-off).")
    resync_seconds: float = Field(60.0, gt=0, description="How often every object is reconciled in full.")
    retry_max_seconds: float = Field(300.0, gt=0, description="Cap of the back-off between failed attempts.")
    workers: int = Field(32, ge=1, description="Objects reconciled at the same time.")
    # Each TLS connection costs ~300 KB of buffers; HTTP/1.1 runs one request per connection at a time.
    api_connections: int = Field(16, ge=1, description="Connections to the API server for reconciling.")
    health_address: str = Field("0.0.0.0:8080", description="host:port of the liveness endpoint (/healthz).")
    log_format: str = Field("json", pattern="^(json|text)$")
    log_level: str = "INFO"
    store_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of each call to a model store.")
    orphan_token_grace_seconds: float = Field(
        300.0, gt=0, description="Age before a token no credential Secret holds is revoked by the store's sweep.")
    # Caps per tenant (none by default). An MLFunction over one is Stalled (LimitExceeded) naming the field and the
    # cap; per namespace, MLFunctions are counted oldest first, and the one that would pass a cap is Stalled.
    max_replicas_per_function: int | None = Field(None, ge=1, description="Most spec.scaling.maxReplicas.")
    max_cpu_per_replica: Quantity | None = Field(None, description="Most CPU a replica may request or be limited "
                                                                  "to; also the limit of one that sets none.")
    max_memory_per_replica: Quantity | None = Field(None, description="Most memory a replica may request or be "
                                                                     "limited to; also the limit of one that sets "
                                                                     "none.")
    max_functions_per_namespace: int | None = Field(None, ge=1, description="Most MLFunctions in one namespace.")
    max_replicas_per_namespace: int | None = Field(None, ge=1, description="Most replicas (the sum of "
                                                                          "maxReplicas) in one namespace.")
    max_cpu_per_namespace: Quantity | None = Field(None, description="Most CPU requested in one namespace, every "
                                                                    "MLFunction at maxReplicas.")
    max_memory_per_namespace: Quantity | None = Field(None, description="Most memory requested in one namespace, "
                                                                       "every MLFunction at maxReplicas.")

    @model_validator(mode="after")
    def _ce_has_no_function_crd(self) -> OperatorConfig:
        if self.openfaas_edition == "ce" and self.openfaas_deploy != "gatewayAPI":
            raise ValueError("MLFUNCTIONS_OPENFAAS_EDITION=ce needs MLFUNCTIONS_OPENFAAS_DEPLOY=gatewayAPI: OpenFaaS CE "
                             "has no Function CRD")
        return self

    @property
    def gateway_mode(self) -> bool:
        return self.openfaas_deploy == "gatewayAPI"

    @property
    def limits_namespaces(self) -> bool:
        """Whether any per-namespace cap is set."""
        return any(cap is not None for cap in (self.max_functions_per_namespace, self.max_replicas_per_namespace,
                                               self.max_cpu_per_namespace, self.max_memory_per_namespace))
