"""The one map from what went wrong in a reconcile to the verdict the user sees: Stalled when the user must change
something, Reconciling when it may clear by itself (both retried with back-off unless only the user can help).
A failure not in the map is a bug: it is raised again, and the reconcile loop logs it and retries."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ..builders.credentials import InvokeCredentialInvalid
from ..builders.edition_limits import EditionUnsupported
from ..builders.limits import LimitExceeded
from ..builders.status import Verdict
from ..children import NotOwned
from ..gateway_client import GatewayError, GatewayUnauthorized, GatewayUnavailable
from ..kube import KubeError
from ..store_client import Forbidden, ModelStoreError, Unauthorized, Unavailable
from ..stores import StoreProblem, StoreRef
from .model_access import ModelNotOwned

Spec = TypeVar("Spec", bound=BaseModel)

# What a best-effort step (revoking a replaced token, the store's sweep, a deletion) reports and moves on from.
EXPECTED_FAILURES = (ModelStoreError, StoreProblem, KubeError, GatewayError)


class InvalidSpec(Exception):
    """The spec does not parse (the CRD's schema lets through only what it can check): names the first bad field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")


def parse_spec(model: type[Spec], body: dict) -> Spec:
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidSpec(field_path(first["loc"]), first["msg"]) from None


def field_path(location: tuple) -> str:
    """pydantic's error location as Kubernetes writes a field path: spec.env[2].name."""
    path = "spec"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def verdict_for(error: Exception, store: StoreRef | None = None, *, store_itself: bool = False) -> Verdict:
    """The verdict for `error`. `store` is the ModelStore involved, named in messages; `store_itself` says the
    reconcile was that store's own check, not that of a function using it (the reasons differ)."""
    if isinstance(error, InvalidSpec):
        return Verdict.stalled_on("InvalidSpec", str(error), retry=False)
    if isinstance(error, NotOwned):
        return Verdict.stalled_on("NotOwned", str(error))
    if isinstance(error, LimitExceeded):  # the resync sees a cap freed by another MLFunction's deletion
        return Verdict.stalled_on("LimitExceeded", str(error), retry=False)
    if isinstance(error, ModelNotOwned):  # the resync sees a grant given meanwhile
        return Verdict.stalled_on("ModelNotOwned", str(error), retry=False)
    if isinstance(error, InvokeCredentialInvalid):
        return Verdict.stalled_on("InvokeCredentialInvalid", str(error), retry=False)
    if isinstance(error, StoreProblem):
        return (Verdict.stalled_on if error.stalled else Verdict.waiting_for)(error.reason, error.message)
    if isinstance(error, ModelStoreError):
        return _store_itself(error, store) if store_itself and store else _store_of_function(error, store)
    if isinstance(error, EditionUnsupported):  # the resync sees room made by a deleted function
        return Verdict.stalled_on(error.reason, str(error), retry=False)
    if isinstance(error, GatewayUnauthorized):
        return Verdict.stalled_on("GatewayUnauthorized", str(error))
    if isinstance(error, GatewayUnavailable):
        return Verdict.waiting_for("GatewayUnavailable", str(error))
    if isinstance(error, GatewayError):
        return Verdict.stalled_on("GatewayRejected", str(error))
    if isinstance(error, KubeError):
        if error.status in (400, 403, 422):  # the request itself is wrong: retrying will not help
            return Verdict.stalled_on("ApplyFailed", str(error))
        return Verdict.waiting_for("APIError", str(error))
    raise error


def _store_of_function(error: ModelStoreError, store: StoreRef | None) -> Verdict:
    where = f"{store.describe()} ({store.url})" if store else "the model store"
    if isinstance(error, (Unauthorized, Forbidden)):
        return Verdict.stalled_on("ModelStoreRejectedAdminToken", f"{where} rejected the admin token: {error}")
    if isinstance(error, Unavailable):
        return Verdict.waiting_for("ModelStoreUnavailable", f"{where} is unavailable: {error}")
    return Verdict.waiting_for("ModelStoreError", f"{where} failed: {error}")


def _store_itself(error: ModelStoreError, store: StoreRef) -> Verdict:
    if isinstance(error, (Unauthorized, Forbidden)):
        return Verdict.stalled_on("AdminTokenRejected", f"{store.url} rejected the admin token in Secret "
                                                        f"{store.namespace}/{store.admin_secret}: {error}")
    if isinstance(error, Unavailable):
        return Verdict.waiting_for("Unreachable", f"{store.url} is unavailable: {error}")
    return Verdict.waiting_for("ModelStoreError", f"{store.url} refused a request: {error}")
