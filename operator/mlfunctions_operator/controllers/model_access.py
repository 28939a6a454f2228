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

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Claim:
    """What a claim did: `claimed` the model for the namespace now or before; else `writers`, the namespaces its
    versions were written for, when that is why not (for the message)."""

    claimed: bool
    writers: list[str]


async def claim(admin: StoreClient, model: str, namespace: str, store: StoreRef, emit: EventSink, *,
                unused_too: bool) -> Claim:
    """Claim the model for `namespace` if nobody owns it and nobody else wrote it: one whose every version was
    written for the namespace (a store from before owners), and with `unused_too` (a train function) one nobody
    used yet."""
    written = await admin.writers(model)
    namespaces = sorted({_namespace_of(w) or "none (the admin or a store-wide token)" for w in written})
    if namespaces and namespaces != [namespace]:
        return Claim(False, namespaces)  # someone else wrote it: owned already (the mint says) or an admin's call
    if not written and not unused_too:
        return Claim(False, [])  # a model nobody used is claimed by the first train function, not by a reader
    try:
        claimed = await admin.claim_model(model, namespace)
    except Conflict:
        return Claim(False, [])  # another namespace owns it: a grant may still let this one in (the mint says)
    if claimed:
        emit("Normal", "ModelClaimed", f"Claimed model {model} in {store.describe()} for namespace {namespace}")
    return Claim(True, [])


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
