"""`ray_cluster.yaml` is a valid `ray up` definition with the node types and setup Engram needs.

Validation uses Ray's own autoscaler code, offline: ``prepare_config`` merges the AWS defaults
and the setup lists exactly as ``ray up`` does, and ``validate_config`` checks the result
against ``ray/autoscaler/ray-schema.json`` plus Ray's cross-field rules. The steps of
``ray up`` that call AWS (resource autodetection, IAM/subnet/key bootstrap) are not run.
Which setup commands each node type really runs is read through the autoscaler v2
``AutoscalingConfig`` (the autoscaler `ray up` starts on the head in Ray 2.60).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO_ROOT / "ray_cluster.yaml"
CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec")


def load_raw() -> dict[str, Any]:
    with CLUSTER_YAML.open() as f:
        raw = yaml.safe_load(f)
    assert isinstance(raw, dict), "ray_cluster.yaml must hold a mapping"
    return raw


def ray_validate(raw: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does to the file before it talks to the cloud: merge defaults, validate."""
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_raw()


@pytest.fixture(scope="module")
def prepared(raw: dict[str, Any]) -> dict[str, Any]:
    return ray_validate(raw)


@pytest.fixture(scope="module")
def autoscaling(raw: dict[str, Any]) -> AutoscalingConfig:
    return AutoscalingConfig(copy.deepcopy(raw), skip_content_hash=True)


def worker_types(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def setup_paths(autoscaling: AutoscalingConfig, cfg: dict[str, Any]) -> dict[str, list[str]]:
    """Node type -> the setup commands that node type runs, resolved the way Ray resolves them."""
    paths = {cfg["head_node_type"]: autoscaling.get_head_setup_commands()}
    for name in worker_types(cfg):
        paths[name] = autoscaling.get_worker_setup_commands(name)
    return paths


def install_index(commands: list[str], extra: str) -> int | None:
    """Index of the command that installs this repo with `extra` by its own scripts/setup.sh,
    into the node's environment (the path a developer machine and the image take too)."""
    for i, cmd in enumerate(commands):
        if (
            re.search(r"\bcd ~/engram\b", cmd)
            and re.search(r"\./scripts/setup\.sh\b", cmd)
            and re.search(rf"\bENGRAM_EXTRA={extra}\b", cmd)
            and "ENGRAM_VENV=~/engram-venv" in cmd
        ):
            return i
    return None


def is_cpu_type(node: dict[str, Any]) -> bool:
    return node["resources"].get("GPU", 0) == 0


# --------------------------------------------------------------------------- validation


def test_ray_accepts_the_cluster_file(prepared: dict[str, Any]) -> None:
    # The fixture already ran prepare_config + validate_config; spot-check the result.
    assert prepared["provider"]["type"] == "aws"
    assert prepared["provider"]["region"] == "us-west-2"
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_autoscaler_v2_loads_the_cluster_file(autoscaling: AutoscalingConfig, raw: dict[str, Any]) -> None:
    assert set(autoscaling.get_node_type_configs()) == set(raw["available_node_types"])
    assert autoscaling.get_max_num_worker_nodes() == raw["max_workers"]


def test_the_file_uses_no_key_unknown_to_ray_schema(raw: dict[str, Any]) -> None:
    # jsonschema straight on the raw file too, before Ray's defaults could mask anything.
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(raw, schema)


# A copy broken in one way must fail Ray's validation: proof that the check has teeth.
def _unknown_top_level_key(cfg: dict[str, Any]) -> None:
    cfg["gpu_pools"] = {"a10g": 4}


def _fractional_gpu(cfg: dict[str, Any]) -> None:
    gpu = next(n for n in cfg["available_node_types"].values() if n["resources"].get("GPU"))
    gpu["resources"]["GPU"] = 0.5


def _fractional_custom_resource(cfg: dict[str, Any]) -> None:
    cfg["available_node_types"][cfg["head_node_type"]]["resources"]["control_plane"] = 0.25


def _negative_resource(cfg: dict[str, Any]) -> None:
    cfg["available_node_types"][cfg["head_node_type"]]["resources"]["CPU"] = -1


def _unknown_node_type_key(cfg: dict[str, Any]) -> None:
    next(iter(worker_types(cfg).values()))["start_ray_commands"] = ["ray start"]


def _head_type_not_defined(cfg: dict[str, Any]) -> None:
    cfg["head_node_type"] = "no_such_type"


def _min_workers_above_max_workers(cfg: dict[str, Any]) -> None:
    for node in worker_types(cfg).values():
        node["min_workers"] = cfg["max_workers"]


BROKEN_COPIES = [
    (_unknown_top_level_key, jsonschema.ValidationError, "'gpu_pools' was unexpected"),
    (_fractional_gpu, jsonschema.ValidationError, "0.5 is not of type 'integer'"),
    (_fractional_custom_resource, jsonschema.ValidationError, "0.25 is not of type 'integer'"),
    (_negative_resource, jsonschema.ValidationError, "less than the minimum of 0"),
    (_unknown_node_type_key, jsonschema.ValidationError, "'start_ray_commands' was unexpected"),
    (_head_type_not_defined, ValueError, "head_node_type"),
    (_min_workers_above_max_workers, ValueError, "min_workers"),
]


@pytest.mark.parametrize(
    ("breakage", "error", "match"),
    BROKEN_COPIES,
    ids=[breakage.__name__.strip("_") for breakage, _, _ in BROKEN_COPIES],
)
def test_a_broken_copy_fails_ray_validation(
    raw: dict[str, Any], breakage: Any, error: type[Exception], match: str
) -> None:
    broken = copy.deepcopy(raw)
    breakage(broken)
    with pytest.raises(error, match=re.escape(match)):
        ray_validate(broken)


# --------------------------------------------------------------------------- node types


def test_node_types_head_cpu_worker_gpu_worker(raw: dict[str, Any]) -> None:
    head = raw["available_node_types"][raw["head_node_type"]]
    assert is_cpu_type(head), "the head is a CPU node"
    assert head["resources"].get("CPU", 0) >= 1

    workers = worker_types(raw)
    cpu = {k: v for k, v in workers.items() if is_cpu_type(v)}
    gpu = {k: v for k, v in workers.items() if not is_cpu_type(v)}
    assert cpu, "a CPU worker type"
    assert gpu, "a GPU worker type"
    for name, node in gpu.items():
        assert node["resources"]["GPU"] >= 1, name
        assert node["resources"].get("gpu_pool", 0) >= 1, f"{name} must carry the gpu_pool resource"
    for name, node in cpu.items():
        assert node["resources"].get("CPU", 0) >= 1, name
        assert node["resources"].get("cpu_pool", 0) >= 1, f"{name} must carry the cpu_pool resource"
    for name, node in workers.items():
        assert node.get("min_workers", 0) == 0, f"{name} scales from zero"
        assert node.get("max_workers", 0) >= 1, f"{name} can scale up"
    # The global cap leaves room for every type to reach its own maximum.
    assert raw["max_workers"] >= sum(n["max_workers"] for n in workers.values())


def test_instance_types(raw: dict[str, Any]) -> None:
    types = {name: node["node_config"]["InstanceType"] for name, node in raw["available_node_types"].items()}
    assert types[raw["head_node_type"]].startswith("m6i.")
    gpu = [n for n, node in worker_types(raw).items() if not is_cpu_type(node)]
    assert all(types[n].startswith("g5.") for n in gpu), "GPU workers are A10G (g5) instances"


def test_every_resource_is_a_non_negative_integer(raw: dict[str, Any]) -> None:
    for name, node in raw["available_node_types"].items():
        assert node["resources"], f"{name} declares its resources"
        for key, value in node["resources"].items():
            # `type(...) is int`: not bool, and not a float such as 1.0 that jsonschema lets through.
            assert type(value) is int and value >= 0, f"{name}.resources.{key} = {value!r}"


# --------------------------------------------------------------------------- setup commands


def test_every_setup_path_installs_the_project(autoscaling: AutoscalingConfig, raw: dict[str, Any]) -> None:
    nodes = raw["available_node_types"]
    for name, commands in setup_paths(autoscaling, raw).items():
        joined = "\n".join(commands)
        assert "uv venv --python 3.11" in joined and "~/engram-venv" in joined, name
        mine, other = ("cpu", "gpu") if is_cpu_type(nodes[name]) else ("gpu", "cpu")
        assert install_index(commands, mine) is not None, f"{name} must run ENGRAM_EXTRA={mine} setup.sh"
        assert install_index(commands, other) is None, name
        # One way to install: no step pip-installs the project (or torch, vLLM) by itself.
        for cmd in commands:
            assert not re.search(r"pip install .*(-e\b|\btorch\b|\bvllm\b)", cmd), (name, cmd)


def test_every_script_a_step_names_is_in_the_repo(raw: dict[str, Any]) -> None:
    named = {m for cmd in _all_commands(raw) for m in re.findall(r"\./(scripts/[\w./-]+)", cmd)}
    assert named, "the install steps run the repo's scripts"
    for script in named:
        path = REPO_ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), f"{script} is not an executable file in the repo"


def test_the_setup_script_takes_every_setting_the_cluster_passes(raw: dict[str, Any]) -> None:
    script = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    passed = {m for cmd in _all_commands(raw) for m in re.findall(r"\b(ENGRAM_[A-Z_]+)=\S", cmd)}
    passed &= {"ENGRAM_VENV", "ENGRAM_DEV", "ENGRAM_WITH_POSTGRES", "ENGRAM_EXTRA"}
    assert len(passed) == 4
    for setting in passed:
        assert "${" + setting + ":-" in script, f"scripts/setup.sh ignores {setting}"


def test_head_installs_boto3_for_the_aws_autoscaler(autoscaling: AutoscalingConfig) -> None:
    assert any(re.search(r"pip install .*boto3", c) for c in autoscaling.get_head_setup_commands())


def test_repo_is_synced_to_every_node(raw: dict[str, Any]) -> None:
    mounts = raw["file_mounts"]
    assert "~/engram" in mounts
    assert (REPO_ROOT / mounts["~/engram"]).resolve() == REPO_ROOT
    # Local build outputs (.venv/ above all) stay out of the sync.
    assert ".gitignore" in raw.get("rsync_filter", [])
    assert ".venv/" in (REPO_ROOT / ".gitignore").read_text().split()


# --------------------------------------------------------------------------- start commands


def test_start_commands(raw: dict[str, Any]) -> None:
    head = [c for c in raw["head_start_ray_commands"] if "ray start" in c]
    worker = [c for c in raw["worker_start_ray_commands"] if "ray start" in c]
    assert len(head) == 1 and len(worker) == 1
    assert "--head" in head[0]
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head[0]
    assert "--dashboard-host=0.0.0.0" in head[0]
    assert "--address=$RAY_HEAD_IP:6379" in worker[0]
    for cmd in head + worker:
        assert "source ~/engram.env" in cmd, f"ray start must get Engram's environment: {cmd}"
        assert "RAY_AUTH_MODE=disabled" not in cmd


def test_every_node_gets_an_object_store_storage_root(
    autoscaling: AutoscalingConfig, raw: dict[str, Any]
) -> None:
    for name, commands in setup_paths(autoscaling, raw).items():
        env_steps = [c for c in commands if "> ~/engram.env" in c]
        assert env_steps, f"{name} must write ~/engram.env"
        assert re.search(r"export ENGRAM_STORAGE_ROOT=s3://[^\s']+", env_steps[0]), name
        assert "export RAY_AUTH_MODE=token" in env_steps[0], name
        secrets = (
            ("ENGRAM_DATABASE_URL", "database-url"),
            ("ENGRAM_MASTER_KEY", "master-key"),
            ("ENGRAM_ADMIN_KEY", "admin-key"),
        )
        for variable, secret in secrets:
            read = f'export {variable}="$(aws secretsmanager get-secret-value --secret-id engram/{secret} '
            assert read in env_steps[0], (name, variable)  # from a secret store, never inline


def _all_commands(cfg: dict[str, Any]) -> list[str]:
    keys = (
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    )
    commands = [c for k in keys for c in cfg.get(k, [])]
    for node in cfg["available_node_types"].values():
        commands += node.get("worker_setup_commands", []) + node.get("initialization_commands", [])
    return commands


def test_every_command_is_valid_bash(raw: dict[str, Any]) -> None:
    for cmd in _all_commands(raw):
        result = subprocess.run(["bash", "-n", "-c", cmd], capture_output=True, text=True)
        assert result.returncode == 0, f"{cmd!r}: {result.stderr}"


def _engram_env_step(raw: dict[str, Any]) -> str:
    return next(c for c in raw["setup_commands"] if "> ~/engram.env" in c)


def _run_in_home(cmd: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env)


def test_env_step_refuses_the_bucket_placeholder(raw: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("")
    result = _run_in_home(_engram_env_step(raw), tmp_path)
    assert result.returncode != 0
    assert "ENGRAM_STORAGE_ROOT" in result.stderr


def test_env_step_with_a_real_bucket_exports_engram_settings(raw: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / ".bashrc").write_text("")
    step = _engram_env_step(raw).replace("YOUR-BUCKET", "acme-engram")
    for _ in range(2):  # idempotent: a re-run of setup appends nothing twice
        assert _run_in_home(step, tmp_path).returncode == 0
    assert (tmp_path / ".bashrc").read_text().count("source ~/engram.env") == 1
    shown = _run_in_home(
        "source ~/engram.env && echo $ENGRAM_STORAGE_ROOT $ENGRAM_RAY_ADDRESS $RAY_AUTH_MODE && echo $PATH",
        tmp_path,
    )
    lines = shown.stdout.splitlines()
    assert lines[0] == "s3://acme-engram/engram auto token"
    assert lines[1].startswith(f"{tmp_path}/engram-venv/bin:")


def test_nodes_load_the_cluster_settings_in_the_repo(raw: dict[str, Any]) -> None:
    """ENGRAM_CONFIG names the repo's cluster settings (synced to ~/engram): they load with what the
    environment step provides, and ask for GPUs by setting, since the GPU pool starts empty."""
    import base64

    from cluster import load_settings

    step = _engram_env_step(raw)
    found = re.search(r"export ENGRAM_CONFIG=\$HOME/engram/(\S+?)'", step)
    assert found, step
    secrets = {"database_url": "postgresql+psycopg://engram@db/engram", "admin_key": "a" * 20}
    settings = load_settings(
        REPO_ROOT / found.group(1),
        storage_root="s3://acme-engram/engram",
        api=secrets,
        security={"master_key": base64.b64encode(bytes(32)).decode()},
    )
    assert settings.training.use_gpu is True
    assert all(spec.gpus == 1 for spec in settings.llm.base_models.values())
    gpu_pool = raw["available_node_types"]["gpu_worker"]
    assert settings.broker.capacity_gpus == gpu_pool["max_workers"] * gpu_pool["resources"]["GPU"]
