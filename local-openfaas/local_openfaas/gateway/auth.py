"""Basic auth for the gateway's /system API, configured the way OpenFaaS configures it: a user and a password
in files named basic-auth-user and basic-auth-password (OpenFaaS mounts them from the basic-auth Secret)."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

USER_FILE, PASSWORD_FILE = "basic-auth-user", "basic-auth-password"


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str

    def allows(self, authorization: str | None) -> bool:
        """Whether an Authorization header carries these credentials (compared in constant time)."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, separator, password = decoded.partition(":")
        if not separator:
            return False
        # Both comparisons always run, so the timing does not tell which part was wrong.
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


def load(directory: Path) -> BasicAuth:
    """Credentials from `directory`/basic-auth-user and basic-auth-password (surrounding whitespace ignored)."""
    user = (directory / USER_FILE).read_text().strip()
    password = (directory / PASSWORD_FILE).read_text().strip()
    if not user or not password:
        raise ValueError(f"{directory}: {USER_FILE} and {PASSWORD_FILE} must not be empty")
    return BasicAuth(user, password)


def ensure(directory: Path, user: str = "admin") -> BasicAuth:
    """The credentials in `directory`, creating them (user `admin`, a random password) on first use."""
    if not (directory / PASSWORD_FILE).exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        for name, value in ((USER_FILE, user), (PASSWORD_FILE, secrets.token_urlsafe(24))):
            path = directory / name
            path.touch(mode=0o600)
            path.write_text(value + "\n")
    return load(directory)
