"""Who may use the console, over real sockets: every page behind the login, cookies that cannot be forged or
outlive their session, forms that need the page's CSRF token, no cross-site POST, no open redirect, a throttle
on guessing, and no secret in anything the console sends to a browser."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from .console_support import csrf_of, sign_in
from kubernetes import client
from mlfunctions_harness.processes import wait_for

pytestmark = pytest.mark.server
PAGES = ("/", "/models", "/functions/{ns}/iris-predict", "/functions/{ns}/iris-train", "/jobs/nothing")


def test_every_page_needs_the_login(console_stack):
    for page in PAGES:
        url = console_stack.url + page.format(ns=console_stack.namespace)
        browser = requests.get(url, headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
        assert browser.status_code == 303, page
        assert browser.headers["Location"].startswith("/login?next=/"), browser.headers["Location"]
        script = requests.get(url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=10)
        assert script.status_code == 401 and script.json()["error"] == "unauthorized"
    post = requests.post(
        f"{console_stack.url}/functions/{console_stack.namespace}/iris-train/train",
        data={"estimator": "SVC"},
        allow_redirects=False,
        timeout=10,
    )
    assert post.status_code == 401
    # What a sign-in page needs is public; nothing else is.
    assert requests.get(f"{console_stack.url}/static/console.css", timeout=10).status_code == 200
    assert requests.get(f"{console_stack.url}/healthz", timeout=10).json() == {"status": "ok"}
    login = requests.get(f"{console_stack.url}/login", timeout=10)
    assert login.status_code == 200 and 'id="password"' in login.text
    assert "default-src 'self'" in login.headers["Content-Security-Policy"]


def test_sign_in_gives_a_strict_cookie_that_cannot_be_forged_and_sign_out_ends_it(console_stack):
    wrong = requests.post(
        f"{console_stack.url}/login",
        data={"username": console_stack.user, "password": "nope"},
        allow_redirects=False,
        timeout=10,
    )
    assert wrong.status_code == 401 and "wrong" in wrong.text and "Set-Cookie" not in wrong.headers

    answer = requests.post(
        f"{console_stack.url}/login",
        data={"username": console_stack.user, "password": console_stack.password, "next": "/models"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/models"
    cookie = answer.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    session = requests.Session()
    session.cookies.update(answer.cookies)
    assert session.get(f"{console_stack.url}/", timeout=10).status_code == 200

    value = answer.cookies["mlfunctions_console"]
    expires, session_id, signature = value.split(".")
    for forged in (
        f"{int(expires) + 86400}.{session_id}.{signature}",
        f"{expires}.{session_id}x.{signature}",
        f"{expires}.{session_id}.{signature[:-2]}AA",
        "garbage",
    ):
        refused = requests.get(
            f"{console_stack.url}/",
            cookies={"mlfunctions_console": forged},
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=10,
        )
        assert refused.status_code == 303, forged

    page = session.get(f"{console_stack.url}/", timeout=10).text
    out = session.post(
        f"{console_stack.url}/logout", data={"csrf": csrf_of(page)}, allow_redirects=False, timeout=10
    )
    assert out.status_code == 303 and 'mlfunctions_console=""' in out.headers["Set-Cookie"]


def test_sessions_end_when_they_expire(console_stack, other_console):
    url = other_console(CONSOLE_SESSION_HOURS="0.0005")  # 1.8 s
    session = sign_in(url, console_stack.user, console_stack.password)
    assert session.get(f"{url}/", timeout=10).status_code == 200
    wait_for(
        lambda: (
            session.get(
                f"{url}/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10
            ).status_code
            == 303
        ),
        timeout=10,
        what="the session to expire",
    )


def test_forms_need_the_pages_csrf_token_and_cross_site_posts_are_refused(console_stack):
    session = console_stack.session()
    target = f"{console_stack.url}/functions/{console_stack.namespace}/iris-predict/predict"
    form = {"f0": "5.1", "f1": "3.5", "f2": "1.4", "f3": "0.2"}
    for csrf in (None, "", "forged-token"):
        refused = session.post(
            target, data={**form, **({"csrf": csrf} if csrf is not None else {})}, timeout=30
        )
        assert refused.status_code == 403 and "The form has expired" in refused.text
    page = session.get(
        f"{console_stack.url}/functions/{console_stack.namespace}/iris-predict", timeout=30
    ).text
    csrf = csrf_of(page)
    elsewhere = session.post(
        target, data={**form, "csrf": csrf}, headers={"Origin": "http://evil.example"}, timeout=30
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["message"] == "cross-site request refused"
    accepted = session.post(target, data={**form, "csrf": csrf}, timeout=60)
    assert accepted.status_code == 200 and 'id="prediction">setosa<' in accepted.text


def test_scripts_use_http_basic(console_stack):
    good = (console_stack.user, console_stack.password)
    assert requests.get(f"{console_stack.url}/models", auth=good, timeout=30).status_code == 200
    refused = requests.get(
        f"{console_stack.url}/models", auth=(console_stack.user, "x" * 20), allow_redirects=False, timeout=30
    )
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    # The console never asks a browser for Basic credentials, so a browser never holds them as ambient ones.
    assert "WWW-Authenticate" not in requests.get(f"{console_stack.url}/", timeout=10).headers


def test_sign_in_never_redirects_off_the_console(console_stack):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        answer = requests.post(
            f"{console_stack.url}/login",
            data={"username": console_stack.user, "password": console_stack.password, "next": target},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.headers["Location"] == "/", target


def test_guessing_is_throttled(console_stack, other_console):
    url = other_console()
    for _ in range(10):
        assert (
            requests.post(
                f"{url}/login", data={"username": "admin", "password": "guess"}, timeout=10
            ).status_code
            == 401
        )
    blocked = requests.post(
        f"{url}/login",
        data={"username": console_stack.user, "password": console_stack.password},
        allow_redirects=False,
        timeout=10,
    )
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text


def _secrets_of(k8s, console_stack) -> dict[str, str]:
    """Every secret value the console could know: the store's tokens, its login, the train functions'
    credentials, the model-store credentials of the functions."""
    found = {
        "store admin token": console_stack.admin_token,
        "store read token": console_stack.read_token,
        "console password": console_stack.password,
    }
    core = client.CoreV1Api(k8s)
    for namespace in (console_stack.namespace, console_stack.function_namespace):
        for secret in core.list_namespaced_secret(namespace).items:
            for key, value in (secret.data or {}).items():
                text = base64.b64decode(value).decode(errors="replace")
                if len(text) >= 16:
                    found[f"{namespace}/{secret.metadata.name}/{key}"] = text
    return found


def test_no_secret_reaches_the_browser(console_stack, k8s):
    session = console_stack.session()
    ns = console_stack.namespace
    seen = []
    for page in ("/", "/models", *(f"/functions/{ns}/{name}" for name in console_stack.mlfunctions)):
        seen.append(session.get(console_stack.url + page, timeout=60).text)
    page = seen[2 + list(console_stack.mlfunctions).index("iris-train")]
    started = session.post(
        f"{console_stack.url}/functions/{ns}/iris-train/train",
        data={"csrf": csrf_of(page), "estimator": "LogisticRegression", "param.max_iter": "300"},
        timeout=30,
    )
    assert started.status_code == 200 and "/jobs/" in started.url
    status_url = started.url.replace("/jobs/", "/jobs/", 1) + "/status"
    job = wait_for(
        lambda: (j := session.get(status_url, timeout=10).json())["phase"] in ("done", "failed") and j,
        timeout=120,
        what="the training to end",
    )
    assert job["phase"] == "done", job
    seen += [started.text, session.get(status_url, timeout=10).text]
    everything = "\n".join(seen)
    for what, value in _secrets_of(k8s, console_stack).items():
        assert value not in everything, f"{what} reached the browser"
    assert "Traceback" not in everything


@pytest.mark.parametrize("page", ["/", "/models"])
def test_first_page_answers_within_200_ms(console_stack, page):
    session = console_stack.session()
    session.get(console_stack.url + page, timeout=30)  # connections opened
    times = []
    for _ in range(15):
        started = time.perf_counter()
        assert session.get(console_stack.url + page, timeout=30).status_code == 200
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    median = times[len(times) // 2]
    print(f"{page}: median {median:.1f} ms, slowest {times[-1]:.1f} ms over {len(times)} requests")
    assert median < 200, times


def test_a_body_larger_than_a_form_needs_is_refused_before_it_is_read(console_stack):
    session = console_stack.session()
    target = f"{console_stack.url}/functions/{console_stack.namespace}/digits-predict/predict"
    answer = session.post(target, files={"image": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 2**20))},
                          timeout=30)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
