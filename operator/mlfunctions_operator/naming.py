"""Names and labels derived from an MLFunction or ModelStore. Pure and deterministic: the operator finds its
children again by recomputing these, so they never depend on anything but the owner's namespace and name."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from . import GROUP

MANAGED_BY = "mlfunctions-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_OWNER_KIND = f"{GROUP}/owner-kind"
LABEL_OWNER_NAMESPACE = f"{GROUP}/owner-namespace"
LABEL_OWNER_NAME = f"{GROUP}/owner-name"
LABEL_OWNER_UID = f"{GROUP}/owner-uid"
LABEL_TASK = f"{GROUP}/task"
LABEL_MODEL = f"{GROUP}/model"

MAX_LABEL = 63
# 10 base32 characters: 50 bits of SHA-256. The readable part of a name that fits is fixed by its namespace and
# name, so only a name long enough to be truncated leaves room to search for a clash, and that search costs ~2**50
# hashes; even then the clash is refused by the ownership labels, never resolved by overwriting.
HASH_LENGTH = 10
_READABLE_LENGTH = MAX_LABEL - HASH_LENGTH - 1


def _short_hash(namespace: str, name: str) -> str:
    """A hash of "<namespace>/<name>": neither may contain "/", so different owners hash different text."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return base64.b32encode(digest).decode().lower()[:HASH_LENGTH]


def function_name(namespace: str, name: str) -> str:
    """The OpenFaaS Function's name for MLFunction `namespace/name`: `<namespace>-<name>` (truncated to fit) and a
    hash of both, e.g. `data-science-iris-predict-qrdifyuc4a`. A valid DNS-1035 label of at most 63 characters
    (OpenFaaS names the function's Service after it), the same on every run.

    Functions of every user namespace share one function namespace, so the name must tell every owner apart:
    `<namespace>-<name>` alone does not (`a-b/c` and `a/b-c` both read `a-b-c`, and truncation merges long
    names), the hash always does. It is always there, so no owner can pick a name that reads like another's hash.
    """
    readable = re.sub(r"[^-a-z0-9]", "-", f"{namespace}-{name}".lower())
    if not readable[:1].isalpha():
        readable = f"f-{readable}"
    return f"{readable[:_READABLE_LENGTH].rstrip('-')}-{_short_hash(namespace, name)}"


def legacy_function_name(namespace: str, name: str) -> str:
    """The name earlier releases gave the Function: `<namespace>-<name>`, hashed only when that was no valid
    label. Kept so that the token sweep sees the credentials of Functions not yet moved to their new name."""
    base = f"{namespace}-{name}"
    if len(base) <= MAX_LABEL and re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", base):
        return base
    cleaned = re.sub(r"[^-a-z0-9]", "-", base.lower())
    if not cleaned[:1].isalpha():
        cleaned = f"f-{cleaned}"
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]
    return f"{cleaned[: MAX_LABEL - 9].strip('-')}-{digest}"


@dataclass(frozen=True)
class Owner:
    """The object that owns children: an MLFunction or ModelStore, identified the way labels can say it."""

    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = f"{GROUP}/v1alpha1"

    def labels(self) -> dict[str, str]:
        """Labels on every child: who manages it and which object it belongs to (the ownership check)."""
        return {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_PART_OF: "mlfunctions",
            LABEL_OWNER_KIND: self.kind,
            LABEL_OWNER_NAMESPACE: self.namespace,
            LABEL_OWNER_NAME: self.name,
            LABEL_OWNER_UID: self.uid,
        }

    def owns(self, obj: dict) -> bool:
        """Whether `obj` is ours to change: managed by this operator for this owner's kind, namespace and name.

        The uid is not compared: a leftover of an earlier object with the same name (its finalizer released by
        hand) belongs to the same logical owner and is taken over, while an object of another owner never is.
        """
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return (labels.get(LABEL_MANAGED_BY) == MANAGED_BY
                and labels.get(LABEL_OWNER_KIND) == self.kind
                and labels.get(LABEL_OWNER_NAMESPACE) == self.namespace
                and labels.get(LABEL_OWNER_NAME) == self.name)

    def reference(self) -> dict:
        """An ownerReference (only valid for children in the owner's own namespace)."""
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}


def owner_of(obj: dict) -> str | None:
    """'Kind namespace/name' of the owner named by an object's labels, for messages; None if not ours."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return None
    return f"{labels.get(LABEL_OWNER_KIND)} {labels.get(LABEL_OWNER_NAMESPACE)}/{labels.get(LABEL_OWNER_NAME)}"


@dataclass(frozen=True)
class FunctionNames:
    """Every name in the function namespace that belongs to one MLFunction."""

    function: str
    service_account: str
    role: str
    role_binding: str
    credential_secret: str

    @classmethod
    def for_mlfunction(cls, namespace: str, name: str) -> FunctionNames:
        return cls.for_function(function_name(namespace, name))

    @classmethod
    def for_function(cls, fn: str) -> FunctionNames:
        """The names that go with Function `fn`, also under a name an earlier release derived (migration)."""
        return cls(function=fn, service_account=fn, role=fn, role_binding=fn,
                   credential_secret=f"{fn}-model-store")


def invoke_secret_name(name: str) -> str:
    """The Secret, in MLFunction `name`'s own namespace, with the credential that callers of its train function
    present (at most 70 characters: a Secret's name may have 253)."""
    return f"{name}-invoke"


@dataclass(frozen=True)
class StoreNames:
    """Every name in the operator namespace that belongs to one ModelStore."""

    deployment: str
    service: str
    claim: str
    admin_secret: str
    disruption_budget: str

    @classmethod
    def for_store(cls, name: str) -> StoreNames:
        base = f"iris-server-{name}"
        return cls(deployment=base, service=base, claim=f"{base}-data", admin_secret=f"{base}-admin",
                   disruption_budget=base)


def store_url(store_name: str, namespace: str, port: int = 8080) -> str:
    return f"http://{StoreNames.for_store(store_name).service}.{namespace}.svc:{port}"
