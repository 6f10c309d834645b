"""The Serve config in the repo: valid for Serve, and `serve deploy` of it on a Ray started with
``ray start --head`` serves the same app as ``engram serve``, its secrets from the nodes'
environment: a create-tenant, ingest, search session through it. With no admin key anywhere,
the application does not start, and says why."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import BIN, RayHead, free_port

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "serving" / "serve_config.yaml"


def test_the_serve_config_is_valid_and_holds_no_secret() -> None:
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load(CONFIG.read_text())
    ServeDeploySchema.model_validate(config)
    text = CONFIG.read_text()
    assert not any(word in text for word in ("admin_key:", "master_key:", "database_url:", "env_vars"))


def deploy(head: RayHead, config: dict[str, Any], folder: Path) -> None:
    path = folder / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    deployed = subprocess.run(
        [str(BIN / "serve"), "deploy", str(path), f"--address={head.url}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,  # the nodes import the project from their environment (installed, as the image's)
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr


def app_status(head: RayHead) -> dict[str, Any]:
    body = httpx.get(f"{head.url}/api/serve/applications/", timeout=30).json()
    return dict(body["applications"].get("engram") or {})


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_deploy_runs_a_session(ray_head: RayHead, tmp_path: Path) -> None:
    port = free_port()
    settings = tmp_path / "engram.yaml"  # not a secret in it: the nodes' environment has those
    settings.write_text(yaml.safe_dump({"llm": {"min_replicas": 0}, "api": {"builder_interval_s": 0.2}}))
    config = yaml.safe_load(CONFIG.read_text())
    config["http_options"] |= {"host": "127.0.0.1", "port": port}
    config["proxy_location"] = "HeadOnly"
    config["applications"][0]["args"]["config"] = str(settings)
    config["applications"][0]["deployments"][0]["autoscaling_config"]["min_replicas"] = 1  # 2 cores
    deploy(ray_head, config, tmp_path)
    deadline = time.monotonic() + 300
    while (status := app_status(ray_head).get("status")) != "RUNNING":
        assert status not in ("DEPLOY_FAILED", "UNHEALTHY"), app_status(ray_head)
        assert time.monotonic() < deadline, app_status(ray_head)
        time.sleep(1)

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        admin = {"Authorization": f"Bearer {ray_head.admin_key}"}
        created = http.post("/admin/tenants", json={"tenant_id": "acme"}, headers=admin)
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['api_key']['key']}"}
        signal = {
            "user_id": "u1",
            "source": "chat",
            "role": "user",
            "text": "I moved to Porto last spring",
            "occurred_at": "2024-05-10T10:00:00Z",
        }
        posted = http.post("/v1/signals", headers=key, json={"signals": [signal]})
        assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
        body = {"user_id": "u1", "query": "where did I move", "k": 3}
        deadline = time.monotonic() + 120
        while not (found := http.post("/v1/memories/search", headers=key, json=body).json()["results"]):
            assert time.monotonic() < deadline, "the signal was never built into a memory"
            time.sleep(0.5)
        assert "Porto" in found[0]["text"]

    # The same config with a settings file that names no admin key, on nodes that give none:
    # the app fails to deploy and its status says what is missing.
    empty = tmp_path / "no-admin.yaml"
    empty.write_text(yaml.safe_dump({"llm": {"min_replicas": 0}}))
    config["applications"][0]["args"]["config"] = str(empty)
    config["applications"][0]["runtime_env"] = {"env_vars": {"ENGRAM_ADMIN_KEY": ""}}
    deploy(ray_head, config, tmp_path)
    deadline = time.monotonic() + 180
    while (status := app_status(ray_head).get("status")) != "DEPLOY_FAILED":
        assert time.monotonic() < deadline, app_status(ray_head)
        time.sleep(1)
    assert "api.admin_key is not set" in app_status(ray_head)["message"]
    subprocess.run([str(BIN / "serve"), "shutdown", "-y", f"--address={ray_head.url}"], timeout=120)
