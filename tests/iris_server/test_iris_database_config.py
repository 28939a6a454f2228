"""Where the catalog is: IRIS_DATABASE_URL, its _FILE variant and the password from a mounted Secret."""

from __future__ import annotations

import pytest
from iris_server.config import ConfigError, DatabaseSettings
from iris_server.database import Database


def _settings(monkeypatch, tmp_path, **env) -> DatabaseSettings:
    for name in ("IRIS_DATABASE_URL", "IRIS_DATABASE_URL_FILE", "IRIS_DATABASE_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IRIS_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return DatabaseSettings()


def test_the_default_is_the_sqlite_file_in_the_data_dir(monkeypatch, tmp_path):
    target = _settings(monkeypatch, tmp_path).database_target()
    assert target == f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    assert Database(target).description == f"SQLite at {tmp_path / 'catalog.sqlite3'}"


def test_the_url_file_wins_and_the_password_file_fills_in_the_password(monkeypatch, tmp_path):
    (tmp_path / "url").write_text("postgresql://iris@db.example:6432/catalog\n")  # as the operator mounts it
    (tmp_path / "password").write_text("s3cr:t/@x\n")  # characters a URL must escape
    settings = _settings(
        monkeypatch,
        tmp_path,
        IRIS_DATABASE_URL="postgresql+psycopg://other@elsewhere/other",
        IRIS_DATABASE_URL_FILE=tmp_path / "url",
        IRIS_DATABASE_PASSWORD_FILE=tmp_path / "password",
    )
    database = Database(settings.database_target())
    assert database.description == "PostgreSQL at db.example:6432"  # never the password
    assert database.engine.url.password == "s3cr:t/@x" and database.engine.url.username == "iris"
    assert database.engine.url.drivername == "postgresql+psycopg"  # psycopg 3, the driver the image has
    assert "s3cr" not in database.unavailable_message()


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"IRIS_DATABASE_URL": "not a url"}, "not a database URL"),
        ({"IRIS_DATABASE_URL": "mysql://u@h/db"}, "unsupported database 'mysql'"),
        ({"IRIS_DATABASE_URL_FILE": "/nonexistent/url"}, "cannot read IRIS_DATABASE_URL_FILE"),
        ({"IRIS_DATABASE_PASSWORD_FILE": "/nonexistent/pw"}, "needs IRIS_DATABASE_URL"),
    ],
)
def test_a_bad_database_setting_is_refused_naming_it(monkeypatch, tmp_path, env, complaint):
    with pytest.raises(ConfigError, match=complaint):
        _settings(monkeypatch, tmp_path, **env).database_target()
