"""The function's model-store credential: which token it needs, and the Secret that carries it.

A credential is valid for one (store, model, task) and one owner; its fingerprint records that, so a change of
any of them (e.g. spec.model.name) makes the operator issue a new token and revoke the old one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from .. import GROUP
from ..naming import FunctionNames, Owner
from .common import metadata

TOKEN_KEY = "model-store-token"
ANNOTATION_TOKEN_ID = f"{GROUP}/token-id"
ANNOTATION_FINGERPRINT = f"{GROUP}/credential-fingerprint"
ANNOTATION_STORE = f"{GROUP}/model-store"


@dataclass(frozen=True)
class TokenScope:
    """What a token may do: read, or read and write, one model."""

    models: tuple[str, ...]
    rights: tuple[str, ...]


def token_scope(model: str, task: str) -> TokenScope:
    return TokenScope(models=(model,), rights=("read", "write") if task == "train" else ("read",))


def fingerprint(store_url: str, scope: TokenScope, owner: Owner) -> str:
    text = "\n".join([store_url, ",".join(scope.models), ",".join(scope.rights), owner.uid])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


TOKEN_DESCRIPTION_PREFIX = "mlfunctions-operator: "


def token_description(owner: Owner) -> str:
    """Written on every token the operator issues: says whose it is, and lets the store's sweep find tokens that
    no credential Secret holds any more."""
    return f"{TOKEN_DESCRIPTION_PREFIX}{owner.kind} {owner.namespace}/{owner.name}"


@dataclass(frozen=True)
class StoredCredential:
    """What a credential Secret says."""

    token: str
    token_id: str
    fingerprint: str


def read_credential(secret: dict | None) -> StoredCredential | None:
    if not secret:
        return None
    annotations = secret["metadata"].get("annotations") or {}
    encoded = (secret.get("data") or {}).get(TOKEN_KEY)
    if not encoded or ANNOTATION_TOKEN_ID not in annotations:
        return None
    return StoredCredential(token=base64.b64decode(encoded).decode(), token_id=annotations[ANNOTATION_TOKEN_ID],
                            fingerprint=annotations.get(ANNOTATION_FINGERPRINT, ""))


def store_of(secret: dict | None) -> str | None:
    """The name of the ModelStore that issued the token in a credential Secret."""
    return ((secret or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_STORE)


def build_credential_secret(owner: Owner, names: FunctionNames, namespace: str, store_name: str,
                            credential: StoredCredential) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(owner, names.credential_secret, namespace, annotations={
            ANNOTATION_TOKEN_ID: credential.token_id,
            ANNOTATION_FINGERPRINT: credential.fingerprint,
            ANNOTATION_STORE: store_name,
        }),
        "data": {TOKEN_KEY: base64.b64encode(credential.token.encode()).decode()},
    }
