"""ModelStore: an iris-server model store, deployed by the operator or an existing one (external)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from .common import Condition, DnsLabel, DnsSubdomain, K8sModel, Quantity, ResourceRequirements

NamespaceOrAll = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$", max_length=63),
                           Field(description='A namespace, or "*" for every namespace.')]


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


# AWS's bucket naming rules (3-63 characters: lowercase letters, digits, dots and hyphens).
S3_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class LocalSecretRef(K8sModel):
    """A Secret in the ModelStore's namespace."""

    name: DnsSubdomain = Field(description="The Secret's name.")


class S3ArtifactsSpec(K8sModel):
    """Models in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, ...)."""

    endpoint: str | None = Field(None, pattern=r"^https?://[^\s/]+/?$", max_length=2048,
                                 description="The S3 API's URL (http:// or https://, no path); omitted: AWS S3 "
                                             "for the region.")
    bucket: str = Field(pattern=S3_BUCKET, max_length=63, description="The bucket; it must exist.")
    region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{1,64}$", max_length=64,
                        description='The bucket\'s region (default "us-east-1").')
    prefix: str | None = Field(None, pattern=r"^[-._/a-zA-Z0-9]*$", max_length=512,
                               description="A key prefix the store keeps its objects under; omitted: the "
                                           "bucket's root.")
    addressing: Literal["path", "virtual"] = Field(
        "path", description="path: <endpoint>/<bucket>/<key> (MinIO, SeaweedFS and most self-hosted servers); "
                            "virtual: <bucket>.<endpoint>/<key> (AWS's default). Default path.")
    credentials_secret_ref: LocalSecretRef | None = Field(
        None, description="Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; omitted: the pod's "
                          "own credentials (an IAM role for its ServiceAccount, say).")


class ArtifactsSpec(K8sModel):
    """Where model bytes are kept. Omitted s3: on the data volume (spec.storage)."""

    s3: S3ArtifactsSpec | None = Field(None, description="In an S3-compatible bucket.")


class DatabaseUrlSecretRef(K8sModel):
    """A key in a Secret in the ModelStore's namespace that holds a database URL."""

    name: DnsSubdomain = Field(description="The Secret's name.")
    key: str = Field("url", pattern=r"^[-._a-zA-Z0-9]+$", max_length=253,
                     description="The key holding the URL (default url).")


class PostgresCatalogSpec(K8sModel):
    """The catalog in a PostgreSQL database (the store creates and migrates its tables at start)."""

    url_secret_ref: DatabaseUrlSecretRef = Field(
        description="Secret with a connection URL, postgresql://user:password@host:5432/database.")


class CatalogSpec(K8sModel):
    """Where versions, aliases, tokens and ownership are kept. Omitted postgres: SQLite on the data volume."""

    postgres: PostgresCatalogSpec | None = Field(None, description="In a PostgreSQL database.")


Right = Literal["read", "write"]


class ModelAccess(K8sModel):
    """A grant: a namespace may read, or read and write (train), some models it does not own."""

    namespace: DnsLabel = Field(description="The namespace whose MLFunctions get the rights.")
    models: list[Annotated[DnsLabel, Field(description="A model's name.")]] = Field(  # type: ignore[valid-type]
                                   min_length=1, max_length=256,
                                   description="The models (their names in the store).",
                                   json_schema_extra={"x-kubernetes-list-type": "set"})
    rights: list[Annotated[Right, Field(description="read or write.")]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["read"], min_length=1, max_length=2,
        description="read (predict functions), write (train functions: read and upload new versions); default "
                    "read. Deleting versions and moving aliases are never granted this way.",
        json_schema_extra={"x-kubernetes-list-type": "set", "default": ["read"]})


class ModelStoreSpec(K8sModel):
    """An iris-server deployed by the operator (Deployment, Service, PVC, admin Secret), or an external one."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "self.replicas <= 1 || (has(self.artifacts) && has(self.artifacts.s3) && has(self.catalog) && "
                 "has(self.catalog.postgres))",
         "message": "replicas above 1 need artifacts.s3 and catalog.postgres (the data volume is ReadWriteOnce)",
         "fieldPath": ".replicas", "reason": "FieldValueForbidden"},
        {"rule": "!has(self.external) || (!has(self.artifacts) && !has(self.catalog))",
         "message": "artifacts and catalog configure a store the operator deploys; an external store has its own",
         "fieldPath": ".external", "reason": "FieldValueForbidden"},
    ]})

    replicas: int = Field(1, ge=0, le=32, description="0 stops the store, 1 runs it (default). More than 1 needs "
                                                      "artifacts.s3 and catalog.postgres: with either on the "
                                                      "ReadWriteOnce data volume, the store runs one replica.")
    image: str | None = Field(None, max_length=512, pattern=r"^[^\s]*$",
                              description="Run this iris-server image instead of the operator's default.")
    storage: StorageSpec = Field(default_factory=StorageSpec,  # type: ignore[arg-type]
                                 description="The data volume (not made when artifacts.s3 and catalog.postgres "
                                             "are both set).", json_schema_extra={"default": {}})
    artifacts: ArtifactsSpec | None = Field(None, description="Where model bytes are kept; omitted: on the data "
                                                              "volume.")
    catalog: CatalogSpec | None = Field(None, description="Where the catalog is kept; omitted: SQLite on the data "
                                                          "volume.")
    resources: ResourceRequirements | None = Field(None, description="CPU and memory for the iris-server "
                                                                     "container.")
    external: ExternalStoreSpec | None = Field(None, description="Use an existing iris-server at this URL instead "
                                                                "of deploying one.")
    namespaces: list[NamespaceOrAll] | None = Field(  # type: ignore[valid-type]
        None, max_length=1024,
        description='The namespaces whose MLFunctions may use this store ("*": every namespace). Omitted: every '
                    "namespace for the operator's default store; for any other store, only the namespaces named "
                    "in access. Within a store, a model belongs to the namespace that first trains it.",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    access: list[ModelAccess] = Field(
        default_factory=list, max_length=1024,
        description="Grants on models a namespace does not own: who may read or write which models. The operator "
                    "keeps the store's grants equal to this list (grants made by hand through the store's API are "
                    "left alone unless this list names the same model and namespace).",
        json_schema_extra={"x-kubernetes-list-type": "atomic"})

    @property
    def s3(self) -> S3ArtifactsSpec | None:
        return self.artifacts.s3 if self.artifacts else None

    @property
    def postgres(self) -> PostgresCatalogSpec | None:
        return self.catalog.postgres if self.catalog else None

    @property
    def needs_volume(self) -> bool:
        """False when both artifacts and catalog live outside the pod: replicas may then run side by side."""
        return self.s3 is None or self.postgres is None


# The store's Service is `iris-server-<name>`, a DNS-1035 label of at most 63 characters.
STORE_NAME_RULE = {
    "rule": "self.metadata.name.size() <= 51 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    "message": "metadata.name must be a DNS-1035 label of at most 51 characters (it names the iris-server Service "
               "iris-server-<name>)",
    "reason": "FieldValueInvalid",
}


class GrantStatus(K8sModel):
    """A grant the operator keeps in the store."""

    model: str = Field(description="The model.")
    namespace: str = Field(description="The namespace granted rights on it.")
    rights: list[Annotated[str, Field(description="read or write.")]] = Field(
        description="What it may do: read, write.")


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
    grants: list[GrantStatus] | None = Field(None, description="The grants from spec.access the operator keeps in "
                                                               "the store.")
