"""Who may use a model: the store decides (iris-server's ownership and grants), the operator asks it first.

A model belongs to a namespace. The first train MLFunction of a model nobody owns claims it for its namespace,
through the store's admin API, before its token is minted; other namespaces then need a grant (the ModelStore's
spec.access). Every token the operator mints acts for the MLFunction's namespace, so the store refuses to mint one
the namespace may not have, and refuses a minted one at its next request once the model changes hands. Either
refusal is ModelNotOwned: the MLFunction is Stalled, naming the model and its owner, and no token is issued.

A model that has versions but no owner (written before the store recorded owners) is claimed only for the one
namespace every version was written for; written for several, it waits for an administrator to decide.
"""

from __future__ import annotations

from ..builders.credentials import TOKEN_DESCRIPTION_PREFIX
from ..store_client import Conflict, ModelStoreError, StoreClient
from ..stores import StoreRef
from . import EventSink


class ModelNotOwned(Exception):
    """The namespace may not use the model in this store."""

    def __init__(self, model: str, store: StoreRef, namespace: str, owner: str | None, task: str,
                 writers: list[str] | None = None):
        self.model, self.owner = model, owner
        what = f"model {model} in {store.describe()}"
        verb = "write (train)" if task == "train" else "read"
        if owner:
            problem = f"{what} belongs to namespace {owner}; namespace {namespace} has no grant to {verb} it"
        else:
            written = f" (written for namespaces {', '.join(writers)})" if writers else ""
            problem = f"{what} has versions{written} but no owner yet, and namespace {namespace} has no grant"
        super().__init__(f"{problem}. The store's administrator can grant it in the ModelStore's spec.access; "
                         "or use a model name of your own")


def refusal(error: ModelStoreError, model: str, store: StoreRef, namespace: str, task: str,
            writers: list[str] | None = None) -> ModelNotOwned | None:
    """The ModelNotOwned a store's answer means, if it refused for tenancy (not for the token itself)."""
    if not error.tenancy:
        return None
    return ModelNotOwned(model, store, namespace, error.details.get("owner"), task, writers)


async def claim_for_training(admin: StoreClient, model: str, namespace: str, store: StoreRef,
                             emit: EventSink) -> list[str]:
    """Claim the model for `namespace` if nobody owns it and nobody else wrote it. Returns the namespaces its
    versions were written for when that is why it was not claimed (for the message), else []."""
    written = await admin.writers(model)
    namespaces = sorted({_namespace_of(w) or "none (the admin or a store-wide token)" for w in written})
    if namespaces and namespaces != [namespace]:
        return namespaces  # someone else wrote it: maybe owned already (the mint says), else an admin decides
    try:
        claimed = await admin.claim_model(model, namespace)
    except Conflict:
        return []  # another namespace owns it: a grant may still let this one write (the mint says)
    if claimed:
        emit("Normal", "ModelClaimed", f"Claimed model {model} in {store.describe()} for namespace {namespace}")
    return []


def _namespace_of(written_by: dict) -> str | None:
    """The namespace a version was written for: the token's, or, for a version written before tokens had one,
    the MLFunction the operator named in the token's description."""
    if written_by.get("namespace"):
        return written_by["namespace"]
    description = written_by.get("description") or ""
    prefix = f"{TOKEN_DESCRIPTION_PREFIX}MLFunction "
    if description.startswith(prefix) and "/" in description:
        return description.removeprefix(prefix).split("/", 1)[0]
    return None
