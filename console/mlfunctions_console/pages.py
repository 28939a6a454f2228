"""The pages: sign-in, the functions, one function with its trigger, a training job, the models."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from . import advice, predict_form, train_form, triggers
from .advice import Problem
from .auth import COOKIE
from .services import Services
from .store import StoreError
from .web import csrf_ok, page, problem_page, safe_next, templates

MAX_FORM_BYTES = 3 * 1024 * 1024


def services_of(request: Request) -> Services:
    return request.app.state.services


# ---- signing in ----


async def login_form(request: Request) -> Response:
    return page(request, "login.html", title="Sign in", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    form = await request.form()
    target = safe_next(form.get("next"))
    throttle, login_ = request.app.state.throttle, request.app.state.login
    wait = throttle.blocked_for()
    if wait:
        return page(
            request,
            "login.html",
            status_code=429,
            title="Sign in",
            next=target,
            error=f"Too many failed sign-ins: try again in {wait:.0f} seconds.",
        )
    if not login_.check(str(form.get("username", "")), str(form.get("password", ""))):
        throttle.failed()
        await asyncio.sleep(0.5)  # a guesser gets at most a few tries a second per connection
        return page(
            request,
            "login.html",
            status_code=401,
            title="Sign in",
            next=target,
            error="The user name or the password is wrong.",
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        login_.new_cookie(),
        max_age=int(login_.session_seconds),
        httponly=True,
        samesite="strict",
        secure=request.app.state.services.settings.secure_cookies,
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form):
        return _csrf_refused(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---- functions ----


async def functions_page(request: Request) -> Response:
    started = time.perf_counter()
    found = await services_of(request).functions()
    return page(
        request,
        "functions.html",
        title="Functions",
        functions=found.views,
        problems=found.problems,
        metrics_ok=found.metrics_ok,
        activity_since=services_of(request).activity.started,
        render_ms=(time.perf_counter() - started) * 1000,
    )


async def _one(request: Request):
    namespace, name = request.path_params["namespace"], request.path_params["name"]
    found = await services_of(request).functions(namespace, name)
    if not found.views:
        if found.problems:
            return None, problem_page(request, found.problems[0], 503)
        return None, problem_page(
            request,
            Problem(
                f"No MLFunction {namespace}/{name}",
                "",
                ["It was deleted, or never existed: see the functions page."],
            ),
            404,
        )
    return found, None


async def function_page(request: Request) -> Response:
    found, error = await _one(request)
    if error:
        return error
    return await _render_function(request, found, {})


async def _render_function(request: Request, found, context: dict, status_code: int = 200) -> Response:
    view = found.views[0]
    services = services_of(request)
    if view.task == "predict":
        metadata, note = await services.model_version(view.model, view.pinned_version)
        form = context.pop("form", None) or predict_form.for_model((metadata or {}).get("metadata"), note)
        context.setdefault("predict", form)
        context.setdefault("served", await triggers.served_version(services, view))
    else:
        context.setdefault("train", train_form.for_spec(view.training))
    return page(
        request,
        "function.html",
        status_code=status_code,
        title=f"{view.namespace}/{view.name}",
        view=view,
        problems=found.problems,
        calls=list(reversed(services.activity.calls(view.key))),
        **context,
    )


async def predict(request: Request) -> Response:
    found, error = await _one(request)
    if error:
        return error
    form = await request.form(max_part_size=MAX_FORM_BYTES)
    if not csrf_ok(request, form):
        return _csrf_refused(request)
    view, services = found.views[0], services_of(request)
    if view.task != "predict":
        return problem_page(request, Problem("Not a predict function", "", ["Use its train button."]), 400)
    metadata, note = await services.model_version(view.model, view.pinned_version)
    fitted = predict_form.for_model((metadata or {}).get("metadata"), note)
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    upload = form.get("image")
    picture = await upload.read(predict_form.MAX_IMAGE_BYTES + 1) if hasattr(upload, "read") else None
    shown = predict_form.with_values(fitted, values)
    try:
        body, content_type = predict_form.request_body(fitted, values, picture or None)
    except predict_form.FormError as invalid:
        return await _render_function(
            request, found, {"form": shown, "input_error": str(invalid), "values": values}, 400
        )
    outcome = await triggers.predict(services, view, body, content_type)
    if fitted.kind == "image":
        outcome.picture = predict_form.picture_url(body)
    if outcome.answer:
        # The version that answered is the truth about what is served: show it without asking again.
        found = await services.functions(view.namespace, view.name)
    return await _render_function(
        request, found, {"form": shown, "outcome": outcome, "values": values}, 200 if outcome.answer else 502
    )


async def train(request: Request) -> Response:
    found, error = await _one(request)
    if error:
        return error
    form = await request.form()
    if not csrf_ok(request, form):
        return _csrf_refused(request)
    view = found.views[0]
    if view.task != "train":
        return problem_page(request, Problem("Not a train function", "", ["Use its predict form."]), 400)
    values = {k: str(v) for k, v in form.items()}
    fitted = train_form.for_spec(view.training)
    try:
        body = train_form.request_body(fitted, values)
    except train_form.FormError as invalid:
        return await _render_function(
            request,
            found,
            {"train": train_form.for_spec(view.training, values), "input_error": str(invalid)},
            400,
        )
    job = request.app.state.jobs.start(view, body)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def job_page(request: Request) -> Response:
    job = request.app.state.jobs.get(request.path_params["job"])
    if job is None:
        return problem_page(
            request,
            Problem(
                "No such training job",
                "Jobs are kept in memory by the console "
                "that ran them: a restarted console has forgotten them.",
                ["Look at the model's versions on the Models page."],
            ),
            404,
        )
    return page(request, "job.html", title=f"Training {job.namespace}/{job.name}", job=job.public())


async def job_status(request: Request) -> Response:
    job = request.app.state.jobs.get(request.path_params["job"])
    if job is None:
        return JSONResponse({"error": "not_found", "message": "no such job"}, status_code=404)
    public = job.public()
    # The page's script swaps these in: rendered (and escaped) here, from the same partials as the page.
    fragments = {
        name: templates.get_template(f"_job_{name}.html").render(job=public) for name in ("status", "result")
    }
    return JSONResponse({**public, "html": fragments}, headers={"Cache-Control": "no-store"})


# ---- models ----


async def models_page(request: Request) -> Response:
    services = services_of(request)
    (store, stores), functions = await asyncio.gather(services.store(), services.functions())
    problems: list[Problem] = []
    models: list[dict] = []
    try:
        listed = await store.models()
        versions = await asyncio.gather(*(store.versions(m["name"]) for m in listed))
        for model, found in zip(listed, versions):
            by_version: dict[int, list[str]] = {}
            for alias, number in (model.get("aliases") or {}).items():
                by_version.setdefault(number, []).append(alias)
            serving = {}
            for view in functions.views:
                if view.task == "predict" and view.model == model["name"] and view.version is not None:
                    serving.setdefault(view.version, []).append(f"{view.namespace}/{view.name}")
            models.append(
                {
                    **model,
                    "versions": sorted(found, key=lambda v: -v["version"]),
                    "aliases_by_version": by_version,
                    "serving": serving,
                }
            )
    except StoreError as error:
        problems.append(advice.store(error.kind, str(error), error.url))
    return page(
        request,
        "models.html",
        title="Models",
        models=models,
        stores=stores,
        store_url=store.url,
        problems=problems + functions.problems[:1],
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _csrf_refused(request: Request) -> Response:
    return problem_page(
        request,
        Problem(
            "The form has expired",
            "It was not sent from this console's page (or the session changed since).",
            ["Go back, reload the page and send it again."],
        ),
        403,
    )
