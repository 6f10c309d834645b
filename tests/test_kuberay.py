"""The KubeRay manifests (cluster/kuberay/) and the image they run (Dockerfile), checked offline:
each manifest against KubeRay's own CRD schema (../shared/kuberay), the RayService's Serve config
against Serve's schema and against serving/serve_config.yaml, secrets only from Secrets, every
RayJob's entrypoint against the job parser, and the Dockerfile's install against scripts/setup.sh."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "cluster" / "kuberay"
CRDS = ROOT.parent / "shared" / "kuberay"
SECRETS = {"ENGRAM_ADMIN_KEY", "ENGRAM_MASTER_KEY", "ENGRAM_DATABASE_URL"}


@cache
def crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"ray.io_{kind.lower()}s.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def documents() -> list[dict[str, Any]]:
    return [d for path in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] == kind]


def containers(cluster_spec: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


@pytest.mark.skipif(not CRDS.is_dir(), reason="the KubeRay CRDs are not beside the repository")
def test_every_manifest_validates_against_the_kuberay_crd() -> None:
    kinds = {d["kind"] for d in documents()}
    assert kinds == {"RayCluster", "RayService", "RayJob"}, kinds
    for document in documents():
        assert document["apiVersion"] == "ray.io/v1"
        jsonschema.validate(document, crd_schema(document["kind"]))


@pytest.mark.skipif(not CRDS.is_dir(), reason="the KubeRay CRDs are not beside the repository")
def test_a_broken_manifest_fails_the_crd_schema() -> None:
    cluster = of_kind("RayCluster")[0]
    cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, crd_schema("RayCluster"))


def test_the_rayservice_runs_the_repos_serve_config_on_the_rayclusters_spec() -> None:
    from ray.serve.schema import ServeDeploySchema

    (service,) = of_kind("RayService")
    (cluster,) = of_kind("RayCluster")
    assert service["spec"]["rayClusterConfig"] == cluster["spec"]
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(embedded)
    repo = yaml.safe_load((ROOT / "serving" / "serve_config.yaml").read_text())
    assert embedded["applications"] == repo["applications"]


def test_secrets_come_from_kubernetes_secrets_and_gpu_pods_ask_for_gpus() -> None:
    (cluster,) = of_kind("RayCluster")
    for container in containers(cluster["spec"]):
        env = {e["name"]: e for e in container["env"]}
        assert env.keys() >= SECRETS, container["name"]
        for name in SECRETS:
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"]
    gpu = next(g for g in cluster["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu-workers")
    assert gpu["minReplicas"] == 0  # started by the autoscaler on GPU demand
    (container,) = gpu["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["image"].endswith("-gpu")


def test_every_rayjob_entrypoint_is_a_job_operation() -> None:
    from engram.jobs import OPERATIONS, parser

    templates = set()
    for job in of_kind("RayJob"):
        argv = shlex.split(job["spec"]["entrypoint"])
        assert argv[:3] == ["python", "-m", "engram.jobs"], argv
        templates.add(parser().parse_args(argv[3:]).op)  # SystemExit on an unknown operation/argument
        assert job["spec"]["clusterSelector"] == {
            "ray.io/cluster": of_kind("RayCluster")[0]["metadata"]["name"]
        }
    assert templates == set(OPERATIONS), "a RayJob template for every batch operation"


def test_the_dockerfile_installs_with_the_setup_script_and_names_the_images() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", dockerfile, re.MULTILINE | re.DOTALL)
    assert any("bash scripts/setup.sh" in run for run in runs), runs
    assert re.search(r"^ARG ENGRAM_EXTRA=cpu$", dockerfile, re.MULTILINE)
    config = re.search(r"ENGRAM_CONFIG=(\S+)", dockerfile)
    assert config and (ROOT / config.group(1).removeprefix("/app/")).is_file()
    images = {c["image"] for c in containers(of_kind("RayCluster")[0]["spec"])}
    for image in images:  # each image the manifests run is a documented build of this Dockerfile
        assert f"-t {image} ." in dockerfile, image
    if shutil.which("hadolint"):
        linted = subprocess.run(["hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout
