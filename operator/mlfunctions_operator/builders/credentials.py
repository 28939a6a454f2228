"""The function's credentials: the model-store token it needs and the Secret that carries it; for a train
function also the credential its callers present.

A model-store credential is valid for one (store, model, task) and one owner; its fingerprint records that, so a
change of any of them (e.g. spec.model.name) makes the operator issue a new token and revoke the old one. Every
token acts for the MLFunction's namespace (the store then checks who owns the model) and names the MLFunction in
its metadata, which the store records on every version the token writes.

A train function's callers present the token in Secret `<name>-invoke` of the MLFunction's own namespace (made
once by the operator, never rewritten; deleting it makes a new one). The function sees only its SHA-256, in the
credential Secret it mounts: a leak of the function namespace's Secrets does not let anyone call it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from .. import GROUP
from ..naming import FunctionNames, Owner, invoke_secret_name
from .common import metadata

TOKEN_KEY = "model-store-token"
INVOKE_TOKEN_KEY = "token"  # in the invoke Secret of the MLFunction's namespace
INVOKE_DIGEST_KEY = "invoke-token-sha256"  # in the function's credential Secret: the hex SHA-256 of that token
INVOKE_TOKEN_MIN_LENGTH = 32
ANNOTATION_TOKEN_ID = f"{GROUP}/token-id"
ANNOTATION_FINGERPRINT = f"{GROUP}/credential-fingerprint"
ANNOTATION_STORE = f"{GROUP}/model-store"
# Part of every fingerprint: raised when what a token says changes, so that every credential is issued anew
# (2: tokens act for the MLFunction's namespace and name it in their metadata).
CREDENTIAL_SCHEME = "2"


@dataclass(frozen=True)
class TokenScope:
    """What a token may do: read, or read and write (upload versions), one model, for one namespace."""

    models: tuple[str, ...]
    rights: tuple[str, ...]
    namespace: str


def token_scope(model: str, task: str, namespace: str) -> TokenScope:
    return TokenScope(models=(model,), rights=("read", "write") if task == "train" else ("read",),
                      namespace=namespace)


def fingerprint(store_url: str, scope: TokenScope, owner: Owner) -> str:
    text = "\n".join([CREDENTIAL_SCHEME, store_url, ",".join(scope.models), ",".join(scope.rights), scope.namespace,
                      owner.uid])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


TOKEN_DESCRIPTION_PREFIX = "mlfunctions-operator: "


def token_description(owner: Owner) -> str:
    """Written on every token the operator issues: says whose it is, and lets the store's sweep find tokens that
    no credential Secret holds any more."""
    return f"{TOKEN_DESCRIPTION_PREFIX}{owner.kind} {owner.namespace}/{owner.name}"


def token_metadata(owner: Owner) -> dict[str, str]:
    """What the store records in `written_by` of every version the token uploads."""
    return {"mlfunction": f"{owner.namespace}/{owner.name}", "uid": owner.uid}


@dataclass(frozen=True)
class StoredCredential:
    """What a credential Secret says."""

    token: str
    token_id: str
    fingerprint: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"StoredCredential(token_id={self.token_id!r}, token='***')"


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
                            credential: StoredCredential, invoke_digest: str | None = None) -> dict:
    """The Secret the function mounts: its model-store token and, for a train function, the SHA-256 of the
    credential its callers must present."""
    data = {TOKEN_KEY: _b64(credential.token)}
    if invoke_digest is not None:
        data[INVOKE_DIGEST_KEY] = _b64(invoke_digest)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(owner, names.credential_secret, namespace, annotations={
            ANNOTATION_TOKEN_ID: credential.token_id,
            ANNOTATION_FINGERPRINT: credential.fingerprint,
            ANNOTATION_STORE: store_name,
        }),
        "data": data,
    }


def build_invoke_secret(owner: Owner, token: str) -> dict:
    """Created once in the MLFunction's namespace (an ownerReference deletes it with the MLFunction)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(owner, invoke_secret_name(owner.name), owner.namespace),
        "data": {INVOKE_TOKEN_KEY: _b64(token)},
    }


class InvokeCredentialInvalid(Exception):
    """The invoke Secret is ours but holds no usable token (someone edited it)."""


def read_invoke_token(secret: dict) -> str:
    """The token in an invoke Secret; InvokeCredentialInvalid when it holds none usable (missing, not text, too
    short to be a secret)."""
    meta = secret.get("metadata") or {}
    encoded = (secret.get("data") or {}).get(INVOKE_TOKEN_KEY)
    try:
        token = base64.b64decode(encoded or "").decode().strip()
    except (ValueError, UnicodeDecodeError):
        token = ""
    if len(token) < INVOKE_TOKEN_MIN_LENGTH:
        raise InvokeCredentialInvalid(
            f"Secret {meta.get('namespace')}/{meta.get('name')} holds no usable token (key {INVOKE_TOKEN_KEY}, at "
            f"least {INVOKE_TOKEN_MIN_LENGTH} characters); delete it and the operator makes a new one")
    return token


def invoke_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
