"""Basic auth for the gateway's /system API."""

import base64

from local_openfaas.gateway import auth


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_the_right_user_and_password_pass():
    credentials = auth.BasicAuth("admin", "s3cret:with:colons")
    assert credentials.allows(_header("admin", "s3cret:with:colons"))
    assert not credentials.allows(_header("admin", "wrong"))
    assert not credentials.allows(_header("root", "s3cret:with:colons"))
    assert not credentials.allows(None)
    assert not credentials.allows("Bearer abc")
    assert not credentials.allows("Basic !!!not-base64!!!")
    assert not credentials.allows("Basic " + base64.b64encode(b"no-colon").decode())


def test_ensure_creates_private_credentials_once(tmp_path):
    folder = tmp_path / "auth"
    first = auth.ensure(folder)
    assert first.user == "admin" and len(first.password) >= 24
    assert (folder / auth.PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert auth.ensure(folder) == first  # a second start keeps the password it printed the first time


def test_load_reads_openfaas_style_files(tmp_path):
    (tmp_path / "basic-auth-user").write_text("admin\n")
    (tmp_path / "basic-auth-password").write_text("pw\n")
    assert auth.load(tmp_path) == auth.BasicAuth("admin", "pw")
