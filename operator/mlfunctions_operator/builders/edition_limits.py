"""What OpenFaaS Community Edition cannot do, decided before anything is deployed, so that an MLFunction asking
for it gets a condition saying so in words (and what still works) instead of a surprise.

CE (faas-netes without a licence) serves one function namespace (openfaas-fn), at most 15 functions, and has no
scale to zero (no faas-idler). Standard and Enterprise have none of these limits: everything passes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import MLFunctionSpec
from .status import ConditionValue

CE_NAMESPACE = "openfaas-fn"
CE_MAX_FUNCTIONS = 15
# The condition an MLFunction gets when the edition changed or refused what it asked for.
EDITION_SUPPORTED = "EditionSupported"


class EditionUnsupported(Exception):
    """The edition cannot deploy this MLFunction (its message says why and what to do)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class EditionDecision:
    """`spec`: what to deploy (None: deploy nothing); `stalled_reason`/`message`: why not; `condition`: what the
    MLFunction's status says about the edition (True: asked for nothing it lacks)."""

    spec: MLFunctionSpec | None
    condition: ConditionValue
    stalled_reason: str = ""

    @property
    def deploy(self) -> bool:
        return self.spec is not None


def decide(spec: MLFunctionSpec, *, edition: str, function_namespace: str, function: str,
           deployed: list[str]) -> EditionDecision:
    """`deployed`: the functions the gateway lists in the namespace now (this one among them when it is there)."""
    if edition != "ce":
        return EditionDecision(spec, ConditionValue(EDITION_SUPPORTED, True, "Supported",
                                                    f"OpenFaaS {edition} supports everything this spec asks for"))
    if function_namespace != CE_NAMESPACE:
        message = (f"OpenFaaS CE deploys functions only to namespace {CE_NAMESPACE}, and the operator is set to "
                   f"deploy to {function_namespace} (MLFUNCTIONS_FUNCTION_NAMESPACE / chart value "
                   f"functionNamespace); not deployed. Set it to {CE_NAMESPACE}, or use OpenFaaS Standard")
        return EditionDecision(None, ConditionValue(EDITION_SUPPORTED, False, "NamespaceNotSupported", message),
                               "NamespaceNotSupported")
    if function not in deployed and len(deployed) >= CE_MAX_FUNCTIONS:
        message = (f"OpenFaaS CE runs at most {CE_MAX_FUNCTIONS} functions and {len(deployed)} are deployed in "
                   f"{CE_NAMESPACE}; not deployed: limit reached. Delete a function, or use OpenFaaS Standard; "
                   "it is deployed as soon as there is room")
        return EditionDecision(None, ConditionValue(EDITION_SUPPORTED, False, "FunctionLimitReached", message),
                               "FunctionLimitReached")
    scaling = spec.scaling
    if scaling.min_replicas == 0:
        after = f" after {scaling.scale_to_zero_after}" if scaling.scale_to_zero_after else ""
        message = (f"spec.scaling.minReplicas 0 asks for scale to zero{after}, which OpenFaaS CE does not have; "
                   "deployed with minReplicas 1 (one replica always runs), everything else works as asked")
        lowered = spec.model_copy(update={"scaling": scaling.model_copy(
            update={"min_replicas": 1, "scale_to_zero_after": None})})
        return EditionDecision(lowered, ConditionValue(EDITION_SUPPORTED, False, "ScaleToZeroNotSupported", message))
    return EditionDecision(spec, ConditionValue(EDITION_SUPPORTED, True, "Supported",
                                                "OpenFaaS CE supports everything this spec asks for"))
