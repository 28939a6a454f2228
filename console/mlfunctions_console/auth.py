"""Who may use the console: one login (user and password from a Secret), pure functions.

A browser signs in once on /login and gets a session cookie; scripts send HTTP Basic credentials on each
request. The cookie holds an expiry, a random id and an HMAC over both, keyed by a key derived from the
password: changing the password ends every session, and replicas sharing the Secret accept each other's
cookies. Forms that change something carry a CSRF token (an HMAC of the session id), checked on every POST
from a cookie session; the cookie is also HttpOnly and SameSite=Strict. Nothing here is ever sent to a browser
but the cookie and the CSRF token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "mlfunctions_console"


@dataclass(frozen=True)
class Session:
    id: str
    expires: int


class Login:
    def __init__(self, username: str, password: str, session_seconds: float):
        self._username = username.encode()
        self._password = password.encode()
        self._key = hmac.new(self._password, b"mlfunctions-console session key", hashlib.sha256).digest()
        self.session_seconds = session_seconds

    def check(self, username: str, password: str) -> bool:
        # Both compared, always, in constant time: the answer's timing tells nothing about which was wrong.
        user_ok = hmac.compare_digest(username.encode(), self._username)
        password_ok = hmac.compare_digest(password.encode(), self._password)
        return user_ok and password_ok

    def check_basic(self, header: str | None) -> bool:
        """An `Authorization: Basic ...` header with the console's user and password."""
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        return bool(sep) and self.check(username, password)

    # ---- sessions ----

    def new_cookie(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.session_seconds)
        session_id = secrets.token_urlsafe(18)
        return f"{expires}.{session_id}.{self._sign(f'{expires}.{session_id}')}"

    def session(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie proves, or None (absent, forged, or expired)."""
        if not cookie:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, session_id, signature = parts
        if not hmac.compare_digest(signature, self._sign(f"{expires}.{session_id}")):
            return None
        if int(expires) < (now or time.time()):
            return None
        return Session(id=session_id, expires=int(expires))

    def csrf_token(self, session: Session) -> str:
        return self._sign(f"csrf.{session.id}")

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented, self.csrf_token(session))

    def _sign(self, text: str) -> str:
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class Throttle:
    """Failed sign-ins, counted over a sliding window: past `limit` of them, every attempt is refused until
    the window has moved on. One counter for the whole console: the password is the only secret, and a
    guesser from many addresses is still one guesser."""

    def __init__(self, limit: int = 10, window_seconds: float = 60.0):
        self.limit, self.window = limit, window_seconds
        self._failures: list[float] = []

    def blocked_for(self, now: float | None = None) -> float:
        """Seconds until an attempt is allowed again (0: now)."""
        now = time.monotonic() if now is None else now
        self._failures = [t for t in self._failures if t > now - self.window]
        if len(self._failures) < self.limit:
            return 0.0
        return self._failures[0] + self.window - now

    def failed(self, now: float | None = None) -> None:
        self._failures.append(time.monotonic() if now is None else now)
