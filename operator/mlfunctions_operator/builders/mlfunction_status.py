"""An MLFunction's status, pure: the verdict's conditions plus ModelAvailable, where its Function is, the model
version in use and a scheduled train function's runs, built through MLFunctionStatus (the model the CRD's status
schema is generated from)."""

from __future__ import annotations

from datetime import datetime

from ..api import FunctionRef, MLFunctionSpec, MLFunctionStatus, ModelStatus
from .status import (
    MODEL_AVAILABLE,
    ConditionValue,
    Verdict,
    merge_conditions,
    observe_function,
    replicas_summary,
    verdict_conditions,
)
from .training_status import build_training_status


def model_verdict(spec: MLFunctionSpec, store: str, verdict: Verdict,
                  version: int | None) -> tuple[Verdict, ConditionValue]:
    """What the model lookup in `store` found (`version`, or None): the Function's `verdict` stands while the model
    is there, or while a train function has yet to write it; a predict function without its model waits for it."""
    what = f"model {spec.model.name}" + (f" version {spec.model.version}" if spec.model.version else "")
    if version is not None:
        return verdict, ConditionValue(MODEL_AVAILABLE, True, "Found", f"{what} is version {version} in {store}")
    if spec.task == "train":
        return verdict, ConditionValue(MODEL_AVAILABLE, False, "NotTrainedYet",
                                       f"{what} has no version in {store} until this function is invoked")
    hint = "pin an existing version" if spec.model.version else "train it first (an MLFunction with task: train)"
    message = f"{what} not found in {store}; {hint}"
    # Looked for again at every resync: a model appears when someone trains it, which may take days.
    return (Verdict.waiting_for("ModelNotFound", message, retry=False),
            ConditionValue(MODEL_AVAILABLE, False, "ModelNotFound", message))


def model_unknown(verdict: Verdict, message: str) -> tuple[Verdict, ConditionValue]:
    """The store could not be asked: the Function's `verdict` stands, still reconciling and soon retried, and
    whether the model is there is Unknown."""
    return (Verdict(ready=verdict.ready, reason=verdict.reason, message=verdict.message, reconciling=True,
                    retry=True),
            ConditionValue(MODEL_AVAILABLE, None, "ModelStoreUnavailable", message))


def build_mlfunction_status(body: dict, verdict: Verdict, now: str, *, spec: MLFunctionSpec | None,
                            function: dict | None, function_ref: FunctionRef, gateway_url: str,
                            model_version: int | None = None,
                            model_condition: ConditionValue | None = None,
                            edition_condition: ConditionValue | None = None) -> MLFunctionStatus:
    """The status after a reconcile of `body` that ended in `verdict`. What the reconcile did not get to (the
    Function, when it failed before applying it) is left unset, so writing the status keeps what is there."""
    generation = body["metadata"].get("generation")
    previous = (body.get("status") or {}).get("conditions")
    values = [*verdict_conditions(verdict), *(c for c in (model_condition, edition_condition) if c)]
    fields: dict = {"observed_generation": generation,
                    "conditions": merge_conditions(previous, values, generation, now)}
    if function is not None:
        observation = observe_function(function)
        fields.update(url=f"{gateway_url.rstrip('/')}/function/{function_ref.name}", function=function_ref,
                      replicas=observation.replicas, available_replicas=observation.available,
                      replicas_summary=replicas_summary(observation) or None)
        if spec is not None:
            previous_training = (body.get("status") or {}).get("training")
            fields["training"] = build_training_status(spec, function, previous_training,
                                                       datetime.fromisoformat(now))
    if spec is not None:
        # The version as the store told it, null when it has none (a version that is gone leaves the status);
        # left as it is when the store was not asked or could not answer.
        asked = model_condition is not None and model_condition.status is not None
        fields["model"] = ModelStatus(name=spec.model.name, version=model_version) if asked else \
            ModelStatus(name=spec.model.name)
    return MLFunctionStatus(**fields)
