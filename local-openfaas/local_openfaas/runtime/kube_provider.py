"""The /system deploy API on a cluster: it writes Function resources, and the binding's watch then runs them (as
faas-netes does with OpenFaaS Pro's operator)."""

from __future__ import annotations

from kubernetes_asyncio.client.exceptions import ApiException

from local_openfaas.runtime.kube import REQUEST_SECONDS, UNREACHABLE, KubeBinding
from local_openfaas.runtime.provider import FunctionExists, ProviderUnavailable
from local_openfaas.runtime.runtime import FunctionNotFound, FunctionRuntime
from local_openfaas.runtime.spec import GROUP, PLURAL, VERSION, FunctionSpec, InvalidFunction, to_custom_object

APPLIED_SECONDS = 5.0  # how long a call waits for the watch to apply its change (a describe right after agrees)
CONFLICT_ATTEMPTS = 5  # an update whose read went stale (409) is read and written again, up to this many times


class KubeProvider:
    def __init__(self, binding: KubeBinding, runtime: FunctionRuntime):
        self._binding, self._objects, self._runtime = binding, binding.objects, runtime

    async def deploy(self, spec: FunctionSpec) -> None:
        try:
            created = await self._objects.create_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, PLURAL, to_custom_object(spec), _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status == 409:
                raise FunctionExists(f"function {spec.name} already exists in namespace {spec.namespace}") from None
            _raise_for(error, "creating", spec)
        except UNREACHABLE as error:
            raise _unreachable(error) from None
        await self._seen(spec, created["metadata"].get("generation", 0))

    async def update(self, spec: FunctionSpec) -> None:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                updated = await self._replace(spec)
                break
            except ApiException as error:
                if error.status == 409 and attempt < CONFLICT_ATTEMPTS:
                    continue  # the object changed between our read and write (a status write, say): read again
                if error.status == 404:
                    raise FunctionNotFound(f"function {spec.name} not found in namespace {spec.namespace}") from None
                _raise_for(error, "updating", spec)
            except UNREACHABLE as error:
                raise _unreachable(error) from None
        await self._seen(spec, updated["metadata"].get("generation", 0))

    async def _replace(self, spec: FunctionSpec) -> dict:
        current = await self._objects.get_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL, spec.name,
                                                                   _request_timeout=REQUEST_SECONDS)
        body = to_custom_object(spec)
        body["metadata"] = current["metadata"]  # resourceVersion: an optimistic-concurrency update
        return await self._objects.replace_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL,
                                                                    spec.name, body, _request_timeout=REQUEST_SECONDS)

    async def delete(self, namespace: str, name: str) -> None:
        try:
            await self._objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                                _request_timeout=REQUEST_SECONDS)
        except ApiException as error:
            if error.status == 404:
                raise FunctionNotFound(f"function {name} not found in namespace {namespace}") from None
            raise ProviderUnavailable(f"deleting function {name}: {error.status} {error.reason}") from None
        except UNREACHABLE as error:
            raise _unreachable(error) from None
        # Until the watch has removed it, so a list right after the call agrees.
        await self._binding.until_applied(lambda: (namespace, name) not in self._runtime.functions,
                                          APPLIED_SECONDS)

    async def _seen(self, spec: FunctionSpec, generation: int) -> None:
        """Wait (briefly) until the watch has applied this generation, so a describe right after agrees."""
        def applied() -> bool:
            deployed = self._runtime.functions.get(spec.key)
            return deployed is not None and deployed.spec.generation >= generation

        await self._binding.until_applied(applied, APPLIED_SECONDS)


def _unreachable(error: BaseException) -> ProviderUnavailable:
    return ProviderUnavailable(f"the control plane cannot be reached: {error!r}")


def _raise_for(error: ApiException, action: str, spec: FunctionSpec):
    """The API server's refusal as the gateway's answer: its 4xx are the caller's to fix, the rest are ours."""
    message = f"{action} Function {spec.namespace}/{spec.name}: {error.status} {error.reason}: {error.body}"
    if error.status is not None and 400 <= error.status < 500:
        raise InvalidFunction(message) from None
    raise ProviderUnavailable(message) from None
