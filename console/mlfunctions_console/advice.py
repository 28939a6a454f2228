"""What to do about a state, in words a person can act on: condition reasons (docs/troubleshooting.md says the
same at more length) and the ways the console's own calls fail. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

TROUBLESHOOTING = "https://github.com/mlfunctions/mlfunctions/blob/main/docs/troubleshooting.md"


@dataclass(frozen=True)
class Problem:
    title: str
    detail: str = ""  # what the component said
    todo: list[str] = field(default_factory=list)  # what to do, in order


# MLFunction and ModelStore condition reasons (Stalled and Reconciling) -> what to do.
REASONS: dict[str, str] = {
    "InvalidSpec": (
        "Fix the field the message names in the MLFunction (kubectl edit mlf); the operator acts on the next "
        "generation at once."
    ),
    "NotOwned": (
        "An object the operator needs already exists and belongs to someone else: delete or rename it, or "
        "rename the MLFunction."
    ),
    "ModelStoreNotFound": (
        "Create the ModelStore the MLFunction names (in the operator's namespace), or fix spec.modelStore."
    ),
    "ModelStoreInvalid": "The ModelStore's spec is invalid: kubectl describe modelstore says which field.",
    "ModelStoreRejectedAdminToken": (
        "The model store refused the admin token: put the store's current admin token in the ModelStore's "
        "admin Secret."
    ),
    "AdminTokenMissing": "Create the Secret named by the ModelStore's spec.external.adminTokenSecretRef.",
    "AdminTokenRejected": "The external store refused the admin token: update the Secret.",
    "ApplyFailed": (
        "The API server refused an object the operator built: a 403 means the operator's RBAC lacks a "
        "permission (the chart's Roles were edited, or functionNamespace does not match OpenFaaS's)."
    ),
    "FunctionNotReady": (
        "OpenFaaS has not reported the function ready yet. If this lasts: kubectl -n <function namespace> "
        "describe function <name>, and the function's pods or logs."
    ),
    "ModelNotFound": (
        "Train the model first: use the train button of a train MLFunction for this model (or pin a version "
        "that exists)."
    ),
    "ModelStoreNotReady": "The default ModelStore is starting; wait a moment.",
    "ModelStoreUnavailable": (
        "The model store does not answer: check the ModelStore's Ready condition and its pod."
    ),
    "ModelStoreError": "The model store is failing (5xx): see its logs.",
    "DeploymentNotAvailable": (
        "The iris-server Deployment is not available: kubectl describe deployment iris-server-<store> (a "
        "volume claim that cannot bind is the usual cause)."
    ),
    "Unreachable": "The external model store's URL does not answer: check the URL and the network path.",
    "APIError": "The Kubernetes API server did not answer the operator; it retries by itself.",
    # The OpenFaaS Function's own reasons (the local OpenFaaS and OpenFaaS Pro write these).
    "DeploymentFailed": (
        "The function's image cannot run: check spec.image (or the operator's default image) and that the "
        "node can pull it."
    ),
    "CrashLoopBackOff": (
        "The function starts and exits: read its logs (kubectl logs, or .stack/faas/logs/ under make up); a "
        "missing setting is named on its first line."
    ),
    "ImagePullBackOff": "The function's image cannot be pulled: check the image name and pull secrets.",
}


def for_reason(reason: str) -> str:
    return REASONS.get(reason, f"See {TROUBLESHOOTING} for reason {reason}.")


def invocation(status: int | None, message: str, function: str) -> Problem:
    """A predict or train call that did not give an answer."""
    if status is None:
        return Problem(
            "The gateway did not answer",
            message,
            ["Check that the OpenFaaS gateway runs and that the console reaches it (CONSOLE_GATEWAY_URL)."],
        )
    if status == 404:
        return Problem(
            f"The gateway does not know function {function}",
            message,
            [
                (
                    "The MLFunction's Function is not deployed yet, or was removed: look at the MLFunction's "
                    "Ready condition above."
                )
            ],
        )
    if status == 503:
        return Problem(
            f"Function {function} cannot start",
            message,
            [
                (
                    "The function could not get a ready replica. Its Function's conditions below and its "
                    "logs say why (a crash at start names the missing setting)."
                ),
                (
                    "If the model store is down, a predict function without a loaded model answers 503 too: "
                    "see the Models page."
                ),
            ],
        )
    if status == 502:
        return Problem(
            f"Function {function} failed the request",
            message,
            [
                (
                    "Either the function crashed on the request, or it refused the model store's credential "
                    "(the message says which): see the function's logs."
                )
            ],
        )
    if status == 504:
        return Problem(
            f"Function {function} did not answer in time",
            message,
            ["A long training may need a longer gateway timeout (and CONSOLE_INVOKE_TIMEOUT_SECONDS)."],
        )
    if status in (401, 403):
        return Problem(
            f"Function {function} refused the console's credential",
            message,
            [
                (
                    "The console sends the credential the function requires from its Secret: check that "
                    "the Secret exists and the console's Role may read it."
                )
            ],
        )
    if 400 <= status < 500:
        return Problem("The function refused the input", message, ["Correct the input as the message says."])
    return Problem(f"Function {function} answered {status}", message, ["See the function's logs."])


def store(kind: str, message: str, url: str) -> Problem:
    todo = {
        "unconfigured": [
            (
                "Give the console a read-only token for the model store: create one with the store's "
                'admin token (POST /v1/tokens with rights ["read"]) and put it in the Secret named by '
                "the chart's console.modelStore.readTokenSecretRef (key: token)."
            )
        ],
        "unreachable": [
            (
                "The model store is down or unreachable: check the ModelStore's Ready condition "
                "(kubectl get modelstores -A) and its pod; for make up, .stack/model-store/iris-server.log."
            )
        ],
        "unauthorized": [
            (
                "The store does not know the console's read token (revoked, or minted for another "
                "store): mint a new read token and update the console's Secret."
            )
        ],
        "forbidden": [
            'The console\'s token may not read this model: mint a read token for its models (or "*").'
        ],
        "not_found": ["The model has no versions yet: train it with the train button of its train function."],
    }.get(kind, ["See the model store's logs."])
    where = f" ({url})" if url else ""
    titles = {
        "unconfigured": "The model store is not configured",
        "unreachable": "The model store is down",
        "unauthorized": "The model store refused the console's token",
        "forbidden": "The console may not read this model",
        "not_found": "No such model in the store",
    }
    return Problem(titles.get(kind, "The model store failed") + where, message, todo)


def kube(status: int | None, message: str) -> Problem:
    if status is None:
        return Problem(
            "The Kubernetes API server does not answer",
            message,
            ["Check the cluster; the console retries on the next page load."],
        )
    if status in (401, 403):
        return Problem(
            "The console may not read this from Kubernetes",
            message,
            [
                (
                    "Install the chart's console RBAC (console.rbac.create=true): the console's "
                    "ServiceAccount needs get and list on MLFunctions, ModelStores and Functions."
                )
            ],
        )
    if status == 404:
        return Problem(
            "A kind is not installed in the cluster",
            message,
            [
                (
                    "Install the CRDs (kubectl apply --server-side -f charts/mlfunctions/crds/) and "
                    "OpenFaaS's Function CRD."
                )
            ],
        )
    return Problem(f"The Kubernetes API server answered {status}", message, ["Reload the page in a moment."])
