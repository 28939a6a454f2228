"""The pod pool: per function image, `size` pods of that image already started in pool mode (its libraries
imported, no function's variables or secrets), shared by every function that runs the image. A function
scaling from zero takes one instead of waiting for a new pod (Fission's poolmgr, "specialization"):

1. specialize: POST the function's variables and secrets to it, with the pool's token (a Secret only the pool's
   pods mount; a new one at each start of the gateway, which rolls the pool);
2. claim: relabel it out of the pool (its ReplicaSet lets go and starts a replacement) and into the function,
   for good (pool_objects.claim_patch);
3. it serves the function until the function's own pod is ready, or the function scales to zero: then it is
   deleted. A pool pod is never handed back, so it never serves a second function.

Claimed pods left by an earlier run (the gateway stopped) are deleted at start."""

from __future__ import annotations

import logging
import secrets

import aiohttp

from local_openfaas.faas_netes.kube import NamespaceClient
from local_openfaas.faas_netes.objects import DeploymentConfig
from local_openfaas.pods import pool_objects
from local_openfaas.pods.pod_state import PodView
from local_openfaas.pods.pod_watch import PodWatch

log = logging.getLogger("mlfunctions.pods.pool")
SPECIALIZE_SECONDS = 30.0
ATTEMPTS = 2  # pool pods tried per cold start before the function waits for its own pod


class PodPool:
    def __init__(self, kube: NamespaceClient, size: int, config: DeploymentConfig | None = None):
        self.size, self._kube, self._config = size, kube, config or DeploymentConfig()
        self._token = secrets.token_urlsafe(32)
        self.pods = PodWatch(kube, pool_objects.MEMBER_LABEL, pool_objects.watch_key)
        self._images: set[str] = set()
        self._taken: set[str] = set()      # pods claimed in this run (the watch may not show the relabel yet)
        self._retired: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self._kube.apply(pool_objects.token_secret(self._kube.namespace, self._token))
        await self.pods.start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SPECIALIZE_SECONDS))
        for view in self.pods.all():
            if not view.function.startswith("pool/"):
                await self.retire(view)  # specialized by an earlier run of the gateway: nobody routes to it

    async def close(self) -> None:
        await self.pods.stop()
        if self._session is not None:
            await self._session.close()

    async def ensure(self, image: str) -> None:
        """The pool of `image` exists (applied once per run: the token's digest rolls older pool pods)."""
        if image in self._images or self.size <= 0:
            return
        await self._kube.apply(pool_objects.pool_deployment(self._kube.namespace, image, self.size, self._token,
                                                            self._config))
        self._images.add(image)
        log.info("pod pool ready to fill", extra={"image": image, "size": self.size})

    async def take(self, function: dict | None, secrets_of_function: dict[str, dict]) -> PodView | None:
        """A pool pod of the function's image, claimed and specialized as `function`; None if none was ready."""
        image = ((function or {}).get("spec") or {}).get("image", "")
        if image not in self._images:
            return None
        name = function["metadata"]["name"]
        body = pool_objects.specialization(function, secrets_of_function)
        for _ in range(ATTEMPTS):
            waiting = [p for p in self.pods.pods(pool_objects.pool_pods_key(image))
                       if p.ready and not p.deleting and p.name not in self._taken]
            if not waiting:
                return None
            pod = waiting[0]
            self._taken.add(pod.name)
            try:
                # Specialized first, claimed after (`_taken` keeps it ours meanwhile): the claim makes the pool's
                # ReplicaSet start a replacement, whose start would take the CPU the cold start needs. Either
                # failing spends the pod.
                await self._specialize(pod, body)
                await self._kube.patch_pod(pod.name, pool_objects.claim_patch(name))
            except Exception as error:  # refused, unreachable, or the function would not start: spent
                log.warning("specializing a pool pod failed", extra={"pod": pod.name, "function": name,
                                                                    "error": repr(error)})
                await self.retire(pod)
                continue
            log.info("pool pod specialized", extra={"pod": pod.name, "function": name})
            return PodView(pod.name, name, pod.ip, ready=True, running=True, deleting=False)
        return None

    def gone(self, pod: PodView) -> bool:
        """Whether a claimed pod no longer serves: retired here, or being deleted (by anyone)."""
        return pod.name in self._retired or any(p.name == pod.name and p.deleting for p in self.pods.pods(pod.function))

    async def retire(self, pod: PodView) -> None:
        self._retired.add(pod.name)
        try:
            await self._kube.delete_pod(pod.name)
        except Exception as error:  # the API server is away: the next start deletes it
            log.warning("deleting a pool pod failed", extra={"pod": pod.name, "error": repr(error)})

    async def _specialize(self, pod: PodView, body: dict) -> None:
        url = f"http://{pod.ip}:{pod.address[1]}{pool_objects.SPECIALIZE_PATH}"
        async with self._session.post(url, json=body, headers={"Authorization": f"Bearer {self._token}"}) as answer:
            if answer.status != 200:
                raise RuntimeError(f"{answer.status}: {(await answer.text())[:300]}")
