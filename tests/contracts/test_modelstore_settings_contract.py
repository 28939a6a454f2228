"""The operator configures the iris-server pods it deploys through IRIS_* variables; iris-server reads them in
iris_server/config.py and iris_server/artifact_config.py. Every variable a ModelStore's Deployment sets must be a
setting the store reads, so a rename on either side fails here rather than in a pod."""

from __future__ import annotations

from iris_server.artifact_config import ArtifactSettings
from iris_server.config import Settings
from mlfunctions_operator.api import ModelStoreSpec
from mlfunctions_operator.builders import modelstore
from mlfunctions_operator.naming import Owner, StoreNames

EVERY_BACKEND = {
    "artifacts": {"s3": {"endpoint": "http://s3.example:8333", "bucket": "models", "prefix": "team/",
                         "addressing": "virtual", "credentialsSecretRef": {"name": "s3"}}},
    "catalog": {"postgres": {"urlSecretRef": {"name": "db", "key": "url"}}},
}


def _settings_variables() -> set[str]:
    return {f"IRIS_{name.upper()}" for model in (Settings, ArtifactSettings) for name in model.model_fields}


def test_every_variable_the_operator_sets_is_one_the_store_reads():
    for spec in ({}, EVERY_BACKEND):
        deployment = modelstore.build_deployment(Owner("ModelStore", "ns", "s", "uid"), StoreNames.for_store("s"),
                                                 ModelStoreSpec.model_validate(spec), "iris:1")
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        unknown = {e["name"] for e in env} - _settings_variables()
        assert not unknown, f"iris-server reads no setting named {sorted(unknown)}"


def test_the_values_the_operator_sets_are_ones_the_store_accepts(monkeypatch, tmp_path):
    deployment = modelstore.build_deployment(Owner("ModelStore", "ns", "s", "uid"), StoreNames.for_store("s"),
                                             ModelStoreSpec.model_validate(EVERY_BACKEND), "iris:1")
    for variable in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    settings = ArtifactSettings()
    assert (settings.artifact_backend, settings.s3_bucket, settings.s3_addressing_style) == ("s3", "models",
                                                                                            "virtual")
    assert settings.s3_access_key_id_file.name == modelstore.S3_ACCESS_KEY_ID
    url_file = tmp_path / "url"
    url_file.write_text("postgresql://iris:secret@db.example:5432/catalog\n")
    monkeypatch.setenv("IRIS_DATABASE_URL_FILE", str(url_file))
    target = Settings().database_target()
    assert target.startswith("postgresql+psycopg://iris:secret@db.example:5432/catalog")
