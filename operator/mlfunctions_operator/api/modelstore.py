"""ModelStore: an iris-server model store, deployed by the operator or an existing one (external)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from .common import Condition, DnsSubdomain, K8sModel, Quantity, ResourceRequirements


class SecretKeyRef(K8sModel):
    """A key in a Secret in the ModelStore's namespace."""

    name: DnsSubdomain = Field(description="The Secret's name.")
    key: str = Field("admin-token", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253,
                     description="The key holding the value (default admin-token).")


class ExternalStoreSpec(K8sModel):
    """An iris-server that already runs elsewhere: the operator deploys nothing and only uses it."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=2048,
                     description="Base URL of the iris-server (http:// or https://).")
    admin_token_secret_ref: SecretKeyRef = Field(
        description="Secret with the store's admin token, used to issue and revoke the functions' scoped tokens."
    )


class StorageSpec(K8sModel):
    """The volume that holds the store's models and tokens."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "!has(oldSelf.storageClassName) || self.storageClassName == oldSelf.storageClassName",
        "message": "storageClassName cannot be changed once the volume exists",
        "fieldPath": ".storageClassName",
        "reason": "FieldValueForbidden",
    }]})

    size: Quantity = Field("1Gi", description='Size of the PersistentVolumeClaim (default "1Gi"); it can grow, '
                                              "not shrink.")
    storage_class_name: str | None = Field(None, max_length=253,
                                           description="StorageClass of the claim; omitted: the cluster's default.")


class ModelStoreSpec(K8sModel):
    """An iris-server deployed by the operator (Deployment, Service, PVC, admin Secret), or an external one."""

    replicas: int = Field(1, ge=0, le=1, description="0 stops the store, 1 runs it (default). Its data lives on one "
                                                     "ReadWriteOnce volume, so it does not run more than one replica.")
    image: str | None = Field(None, max_length=512, pattern=r"^[^\s]*$",
                              description="Run this iris-server image instead of the operator's default.")
    storage: StorageSpec = Field(default_factory=StorageSpec,  # type: ignore[arg-type]
                                 description="The data volume.", json_schema_extra={"default": {}})
    resources: ResourceRequirements | None = Field(None, description="CPU and memory for the iris-server "
                                                                     "container.")
    external: ExternalStoreSpec | None = Field(None, description="Use an existing iris-server at this URL instead "
                                                                "of deploying one.")


# The store's Service is `iris-server-<name>`, a DNS-1035 label of at most 63 characters.
STORE_NAME_RULE = {
    "rule": "self.metadata.name.size() <= 51 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    "message": "metadata.name must be a DNS-1035 label of at most 51 characters (it names the iris-server Service "
               "iris-server-<name>)",
    "reason": "FieldValueInvalid",
}


class ModelStoreStatus(K8sModel):
    """What the operator observed (kstatus-compatible)."""

    observed_generation: int | None = Field(None, description="The metadata.generation last acted on.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Reconciling and Stalled (kstatus).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    url: str | None = Field(None, description="Where functions reach the store.")
    admin_token_secret: str | None = Field(None, description="The Secret (in this namespace) holding the admin "
                                                             "token.")
