"""The triggers: a prediction (answered in the same page) and a training (a job the page follows).

A cold start is told from the replicas read just before the call: none ready means the gateway had to start
one for it. A training runs as a background task, so the page can show its progress (starting the function,
training, done) and, once done, which predict functions serve the new version, by asking the warm ones."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import advice
from .activity import Call
from .advice import Problem
from .overview import FunctionView
from .predict_form import Answer, read_answer
from .services import Services

log = logging.getLogger("mlfunctions_console")
JOBS_KEPT = 50
SERVED_WATCH_SECONDS = 180.0  # how long a finished job keeps looking for its version being served


@dataclass
class PredictOutcome:
    cold: bool
    ready_before: int | None
    seconds: float
    gateway_seconds: float | None
    answer: Answer | None = None
    problem: Problem | None = None
    raw: str = ""
    picture: str = ""  # the image sent, as a data: URL, shown beside the answer


async def predict(services: Services, view: FunctionView, body: bytes, content_type: str) -> PredictOutcome:
    ready = await services.live_ready(view)
    cold = not ready
    called = await services.gateway.invoke(view.function_name, view.function_namespace, body, content_type)
    outcome = PredictOutcome(
        cold=cold, ready_before=ready, seconds=called.seconds, gateway_seconds=called.gateway_seconds
    )
    if called.status == 200:
        try:
            document = called.json()
            outcome.answer = read_answer(document)
            outcome.raw = json.dumps(document, indent=2)[:20000]
        except ValueError as error:
            outcome.problem = Problem(
                "The function's answer is not a prediction", str(error), ["See the function's logs."]
            )
    else:
        outcome.problem = advice.invocation(
            called.status, called.error or _message(called.body), f"{view.namespace}/{view.name}"
        )
    services.activity.record(
        view.key,
        Call(
            time.time(),
            "predict",
            called.seconds,
            called.status,
            cold,
            outcome.answer.version if outcome.answer else None,
        ),
    )
    return outcome


@dataclass
class TrainJob:
    id: str
    namespace: str
    name: str
    model: str
    request: dict[str, Any]
    started: float = field(default_factory=time.time)
    phase: str = "starting"  # starting (cold start) | training | done | failed
    cold: bool = False
    finished: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    served: dict[str, int | None] = field(default_factory=dict)  # predict MLFunction -> version it serves

    def public(self) -> dict[str, Any]:
        """What the job page's script polls: never a credential (the request is what the form changed)."""
        end = self.finished or time.time()
        version = (self.result.get("model") or {}).get("version")
        return {
            "served_all": bool(self.served) and all(v == version for v in self.served.values()),
            "id": self.id,
            "function": f"{self.namespace}/{self.name}",
            "phase": self.phase,
            "cold": self.cold,
            "elapsedSeconds": round(end - self.started, 1),
            "request": self.request,
            "result": self.result,
            "served": self.served,
            "problem": None
            if self.problem is None
            else {"title": self.problem.title, "detail": self.problem.detail, "todo": self.problem.todo},
        }


class Jobs:
    def __init__(self, services: Services):
        self.services = services
        self._jobs: dict[str, TrainJob] = {}
        self._tasks: set[asyncio.Task] = set()

    def get(self, job_id: str) -> TrainJob | None:
        return self._jobs.get(job_id)

    def start(self, view: FunctionView, body: bytes) -> TrainJob:
        job = TrainJob(
            id=secrets.token_urlsafe(12),
            namespace=view.namespace,
            name=view.name,
            model=view.model,
            request=json.loads(body),
        )
        self._jobs[job.id] = job
        while len(self._jobs) > JOBS_KEPT:
            self._jobs.pop(next(iter(self._jobs)))
        task = asyncio.create_task(self._run(job, view, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, job: TrainJob, view: FunctionView, body: bytes) -> None:
        try:
            await self._train(job, view, body)
        except Exception as error:  # the page must say the job ended, whatever ended it
            log.exception("training job %s failed", job.id)
            job.problem = Problem(
                "The console failed while following the training",
                type(error).__name__,
                [
                    (
                        "The training may still have stored a version: see the Models page; the "
                        "console's log has the details."
                    )
                ],
            )
            job.phase, job.finished = "failed", time.time()

    async def _train(self, job: TrainJob, view: FunctionView, body: bytes) -> None:
        services = self.services
        headers, problem = await services.invoke_credential(view)
        if problem is not None:
            job.problem, job.phase, job.finished = problem, "failed", time.time()
            return
        ready = await services.live_ready(view)
        job.cold = not ready
        job.phase = "starting" if job.cold else "training"
        call = asyncio.create_task(
            services.gateway.invoke(
                view.function_name, view.function_namespace, body, "application/json", headers=headers
            )
        )
        while job.cold and job.phase == "starting" and not call.done():
            await asyncio.wait({call}, timeout=0.5)
            if not call.done() and await services.live_ready(view):
                job.phase = "training"  # a replica is up: the request is being trained on
        called = await call
        services.activity.record(
            view.key, Call(time.time(), "train", called.seconds, called.status, job.cold)
        )
        job.finished = time.time()
        if called.status == 200:
            try:
                job.result = called.json()
            except ValueError:
                job.result = {}
            job.phase = "done"
            await self._watch_served(job)
        else:
            job.problem = advice.invocation(
                called.status, called.error or _message(called.body), f"{view.namespace}/{view.name}"
            )
            job.phase = "failed"

    async def _watch_served(self, job: TrainJob) -> None:
        """Until every unpinned predict function of the model serves the new version (or a deadline): ask the
        warm ones which version they serve; a scaled-to-zero one loads the newest at its next start."""
        version = (job.result.get("model") or {}).get("version")
        deadline = time.monotonic() + SERVED_WATCH_SECONDS
        while version is not None and time.monotonic() < deadline:
            functions = await self.services.functions()
            predictors = [
                v
                for v in functions.views
                if v.task == "predict"
                and v.model == job.model
                and v.pinned_version is None
                and v.function_name
            ]
            for view in predictors:
                job.served[f"{view.namespace}/{view.name}"] = await served_version(self.services, view)
            if all(v == version for v in job.served.values()):
                return
            await asyncio.sleep(1.0)


async def served_version(services: Services, view: FunctionView) -> int | None:
    """The version a warm predict function answers with (GET /v2/models/<model>); None for a function with no
    ready replica: asking would start one."""
    if not view.ready:
        return None
    called = await services.gateway.invoke(
        view.function_name,
        view.function_namespace,
        b"",
        "application/json",
        path=f"/v2/models/{view.model}",
        method="GET",
        timeout=5.0,
    )
    try:
        return int(called.json()["versions"][0]) if called.status == 200 else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _message(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:500].decode(errors="replace")
    if isinstance(document, dict):
        return str(document.get("error") or document.get("message") or document)[:2000]
    return str(document)[:2000]
