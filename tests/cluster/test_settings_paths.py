from pathlib import Path

import pytest

from cluster.errors import ConfigError, InvalidIdError, UnknownComponentError
from cluster.paths import area_key, validate_tenant_id, validate_user_id
from cluster.registry import Registry
from cluster.settings import load_settings


def test_yaml_settings_load_and_unknown_keys_fail(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "storage_root: /data/engram\npipeline:\n  batch_rows: 64\npii:\n  tenants:\n    acme: [email]\n"
    )
    s = load_settings(good)
    assert s.storage_root == "/data/engram"
    assert s.pipeline.batch_rows == 64
    assert s.pii.policy_for("acme") == ["email"]
    assert s.pii.policy_for("other") == ["card", "email", "phone"]

    assert load_settings(storage_root="rel/dir").storage_root == str(Path("rel/dir").resolve())
    local = load_settings(storage_root=f"file://{tmp_path}/engram")  # a file URI is a local folder
    assert (local.storage_root, local.control_db_url) == (
        f"{tmp_path}/engram",
        f"sqlite:///{tmp_path}/engram/control.db",
    )
    secrets = {
        "api": {"database_url": "postgresql+psycopg://db/engram"},
        "security": {"master_key": "A" * 43 + "="},
    }
    assert load_settings(storage_root="s3://bucket/engram", **secrets).storage_root == "s3://bucket/engram"
    for missing, named in (("api", "api.database_url"), ("security", "security.master_key")):
        given = {k: v for k, v in secrets.items() if k != missing}
        with pytest.raises(ConfigError, match=rf"object-store storage_root .* needs {named}"):
            load_settings(storage_root="s3://bucket/engram", **given)
    with pytest.raises(ConfigError, match=r"needs api\.database_url .* and security\.master_key"):
        load_settings(storage_root="s3://bucket/engram")

    typo = tmp_path / "typo.yaml"
    typo.write_text("pipeline:\n  batch_row: 64\n")
    with pytest.raises(ConfigError) as e:
        load_settings(typo)
    assert e.value.param == "pipeline.batch_row"

    bad = tmp_path / "bad.yaml"
    bad.write_text("pii:\n  redact: [ssn]\n")
    with pytest.raises(ConfigError, match=r"pii\.redact"):
        load_settings(bad)


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", "A", "x" * 64, "a\x00", "-a", "a b", None, 3])
def test_tenant_ids_that_could_escape_are_refused(bad: object) -> None:
    with pytest.raises(InvalidIdError):
        validate_tenant_id(bad)


@pytest.mark.parametrize("bad", ["", "../u", "u/1", "u'1", "u 1", ".u", "x" * 129, None])
def test_bad_user_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidIdError):
        validate_user_id(bad)


def test_a_key_stays_inside_the_tenant_folder() -> None:
    assert area_key("acme", "lance") == "tenants/acme/lance"
    assert area_key("acme", "adapters", "m1", "v2") == "tenants/acme/adapters/m1/v2"
    for part in ("..", "../other", "a/b", "/etc"):
        with pytest.raises(InvalidIdError):
            area_key("acme", "files", part)


def test_errors_pickle_with_their_fields() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(InvalidIdError("bad id", param="tenant_id", value="x")))
    assert isinstance(e, InvalidIdError) and e.param == "tenant_id" and e.context == {"value": "x"}


def test_registry_names_valid_choices() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("one")(lambda: 1)
    assert reg.create("one") == 1
    with pytest.raises(UnknownComponentError, match="valid names: one"):
        reg.create("two")


def test_llm_settings_validate_the_model_registry() -> None:
    s = load_settings(
        llm={"base_models": {"qwen2.5-7b": {"path": "s3://models/qwen", "max_model_len": 8192}}}
    )
    assert s.llm.base_models["qwen2.5-7b"].max_model_len == 8192
    assert load_settings().llm.base_models["engram-tiny"].path is None
    with pytest.raises(ConfigError, match="llm"):
        load_settings(llm={"base_models": {"../up": {}}})
    with pytest.raises(ConfigError) as e:
        load_settings(llm={"max_lora_rank": 12})
    assert e.value.param == "llm.max_lora_rank"
    with pytest.raises(ConfigError, match="min_replicas"):
        load_settings(llm={"min_replicas": 3, "max_replicas": 2})
    with pytest.raises(ConfigError) as e:
        load_settings(llm={"base_models": {"m": {"chat_tmpl": "x"}}})
    assert e.value.param == "llm.base_models.m.chat_tmpl"


def test_secrets_come_from_the_files_the_settings_name(tmp_path: Path) -> None:
    """A secret left unset is read from its ``<secret>_file`` (a mounted Kubernetes Secret); one set
    directly wins; a file that cannot be read is an error naming the setting."""
    import base64

    (tmp_path / "admin").write_text("adm_from_a_mounted_file_0123\n")
    (tmp_path / "master").write_text(base64.b64encode(bytes(range(32))).decode())
    (tmp_path / "db").write_text("postgresql+psycopg://engram@db/engram\n")
    files = {
        "storage_root": "s3://acme/engram",  # needs the database URL and the master key
        "api": {"admin_key_file": str(tmp_path / "admin"), "database_url_file": str(tmp_path / "db")},
        "security": {"master_key_file": str(tmp_path / "master")},
    }
    settings = load_settings(**files)
    assert settings.api.admin_key == "adm_from_a_mounted_file_0123"
    assert settings.api.database_url == "postgresql+psycopg://engram@db/engram"
    assert settings.security.master_key is not None
    assert base64.b64decode(settings.security.master_key.get_secret_value()) == bytes(range(32))
    direct = load_settings(**files | {"api": files["api"] | {"admin_key": "adm_set_directly_0123456"}})
    assert direct.api.admin_key == "adm_set_directly_0123456"
    with pytest.raises(ConfigError, match=r"admin_key_file .*missing"):
        load_settings(storage_root=str(tmp_path), api={"admin_key_file": str(tmp_path / "missing")})
