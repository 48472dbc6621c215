"""deploy/kubernetes as `kubectl apply -k` would send it (rendered by kubectl's kustomize, no cluster here):
valid against Kubernetes's own schemas, wired as README says, made from README's commands as written, and
every container's command and environment run here, the workers and the dashboard against the real PostgreSQL.

Schemas: kubernetes-validate carries Kubernetes's OpenAPI schemas, one set per release, inside the package (this
machine reaches package registries only); check-jsonschema would fetch them from the network at run time."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from _require_all import missing
from conftest import ADAMTUNE, REPO, postgres_url, write_study
from reliability_tests.deployments import (
    KUBERNETES,
    client_side,
    container_env,
    containers,
    find,
    kustomize,
    mounted,
    pod_spec,
    readme_block,
    without_comment,
)
from reliability_tests.workers import finish, free_port, spawn, wait_for

KUBERNETES_VERSION = "1.32.0"  # the schemas the manifests are checked against (strict: no unknown field)
KUSTOMIZATIONS = ("base", "gpu")
STORE_URL = "postgresql+psycopg://adamtune:{password}@postgres:5432/adamtune"


@pytest.fixture(scope="module")
def render() -> dict[str, list[dict]]:
    return {name: kustomize(KUBERNETES / name) for name in KUSTOMIZATIONS}


def readme_commands() -> tuple[str, str, str, str]:
    """README's three Kubernetes lines: the Secret, the ConfigMap (then `kubectl apply -k`), the port-forward."""
    lines = [without_comment(line) for line in readme_block("### Kubernetes")]
    assert len(lines) == 3, lines
    configmap, apply = lines[1].split(" && ")
    return lines[0], configmap, apply, lines[2]


def secret_data(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(render, kustomization):
    try:
        import kubernetes_validate
    except ImportError:
        missing("kubernetes-validate is not installed: pip install -e '.[test]'")
    files = {p.name for p in (KUBERNETES / "base").glob("*.yaml")} - {"kustomization.yaml"}
    rendered_from = {Path(o["metadata"]["annotations"]["config.kubernetes.io/origin"].split()[1]).name
                     for o in kustomize_with_origins()}
    assert files == rendered_from, "every manifest in base/ is rendered, so every one is validated"
    kinds = sorted(o["kind"] for o in render[kustomization])
    assert kinds == ["Deployment", "Job", "PersistentVolumeClaim", "Service", "Service", "StatefulSet"]
    for obj in render[kustomization]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def kustomize_with_origins() -> list[dict]:
    """The base rendered with each object's source file noted (kustomize's `originAnnotations`)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "base"
        shutil.copytree(KUBERNETES / "base", copy)
        kustomization = copy / "kustomization.yaml"
        kustomization.write_text(kustomization.read_text() + "buildMetadata: [originAnnotations]\n")
        return kustomize(copy)


def test_readme_commands_make_what_the_manifests_reference(render):
    secret_line, configmap_line, apply_line, forward_line = readme_commands()
    secret, configmap = client_side(secret_line), client_side(configmap_line)
    password = secret_data(secret)["password"]
    assert re.fullmatch(r"[0-9a-f]{48}", password), "a fresh random password, nothing to URL-encode"
    assert apply_line.startswith("kubectl apply -k ")
    applied = kustomize(REPO / apply_line.removeprefix("kubectl apply -k "))
    assert applied == render["base"]
    for objects in render.values():
        for container in containers(objects):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["data"]
    job = find(applied, "Job")
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    worker, = pod_spec(job)["containers"]
    study_mount, = (m for m in worker["volumeMounts"] if "configMap" in volumes[m["name"]])
    assert volumes[study_mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    study_path = worker["command"][2]
    assert Path(study_path).parent == Path(study_mount["mountPath"])
    assert Path(study_path).name in configmap["data"], "the worker reads the key README's ConfigMap holds"
    service_name, local, remote = re.fullmatch(r"kubectl port-forward service/(\S+) (\d+):(\d+)",
                                               forward_line).groups()
    service = find(applied, "Service", service_name)
    port, = (p for p in service["spec"]["ports"] if p["port"] == int(remote))
    dashboard = find(applied, "Deployment")
    assert service["spec"]["selector"].items() <= dashboard["spec"]["template"]["metadata"]["labels"].items()
    container, = pod_spec(dashboard)["containers"]
    named, = (p for p in container["ports"] if p["name"] == port["targetPort"])
    command = container["command"]
    assert command[command.index("--port") + 1] == str(named["containerPort"]), "it listens where the Service sends"


def test_the_secret_is_referenced_never_inlined(render):
    secrets = {"adamtune-db": {"password": "s3cr3t"}}
    for objects in render.values():
        assert not [o for o in objects if o["kind"] == "Secret"]
        assert "s3cr3t" not in json.dumps(objects)
        for container in containers(objects):
            for item in container.get("env", []):
                if "PASSWORD" in item["name"]:
                    assert item["valueFrom"]["secretKeyRef"], f"{container['name']}: {item['name']} from the Secret"
            env = container_env(container, secrets)
            if "ADAMTUNE_STORAGE" in env:
                raw, = (i["value"] for i in container["env"] if i["name"] == "ADAMTUNE_STORAGE")
                assert "s3cr3t" not in raw and env["ADAMTUNE_STORAGE"] == STORE_URL.format(password="s3cr3t")
    text = "\n".join(p.read_text() for p in KUBERNETES.rglob("*.yaml"))
    assert "kind: Secret" not in text


def test_workers_are_an_indexed_job_on_a_shared_volume(render):
    objects = render["base"]
    job = find(objects, "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == spec["completions"] >= 2, "one pod per worker, each run to its end"
    assert spec["backoffLimit"] >= spec["parallelism"], "a crashed worker's pod is replaced"
    assert pod_spec(job)["restartPolicy"] == "Never", "a replacement may land on any node"
    rules = {rule["action"]: rule for rule in spec["podFailurePolicy"]["rules"]}
    assert rules["FailJob"]["onExitCodes"] == {"containerName": "worker", "operator": "In", "values": [2]}
    assert rules["Ignore"]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    worker, = pod_spec(job)["containers"]
    assert worker["command"][:2] == ["adamtune", "run"]
    assert "livenessProbe" not in worker, "a worker serves nothing; its heartbeat is in the store"
    claims = {p["metadata"]["name"]: p for p in objects if p["kind"] == "PersistentVolumeClaim"}

    def shared_mount(workload: dict, container: dict) -> tuple[str, str, bool]:
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        path = next(i["value"] for i in container["env"] if i["name"] == "ADAMTUNE_ARTIFACTS")
        mount, = (m for m in container["volumeMounts"] if m["mountPath"] == path)
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        return claim, mount.get("subPath", ""), mount.get("readOnly", False)

    claim, subpath, _ = shared_mount(job, worker)
    assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"], "checkpoints reach a retry on any node"
    dashboard = find(objects, "Deployment")
    # the dashboard draws a learning curve when first opened and keeps it there (500 on a read-only mount)
    assert shared_mount(dashboard, pod_spec(dashboard)["containers"][0]) == (claim, subpath, False)


def test_every_container_requests_resources_and_the_servers_are_probed(render):
    objects = render["base"]
    for container in containers(objects):
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]
    postgres = pod_spec(find(objects, "StatefulSet"))["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert postgres[probe]["exec"]["command"][0] == "pg_isready"
    dashboard = pod_spec(find(objects, "Deployment"))["containers"][0]
    assert dashboard["livenessProbe"]["httpGet"]["port"] == dashboard["ports"][0]["name"]
    assert dashboard["command"][:2] == ["adamtune", "dashboard"] and "--read-only" in dashboard["command"]
    statefulset, service = find(objects, "StatefulSet"), find(objects, "Service", "postgres")
    assert statefulset["spec"]["serviceName"] == "postgres" and service["spec"]["ports"][0]["port"] == 5432
    assert "@postgres:5432/" in STORE_URL
    uid = int(re.search(r"useradd .*--uid (\d+)", (REPO / "Dockerfile").read_text()).group(1))
    for workload in (find(objects, "Job"), find(objects, "Deployment")):
        assert pod_spec(workload)["securityContext"]["runAsUser"] == uid, "the image's own user, not root"


def test_the_gpu_overlay_gives_each_worker_one_gpu_and_changes_nothing_else(render):
    base, gpu = render["base"], render["gpu"]
    job = find(gpu, "Job")
    worker, = pod_spec(job)["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1 == worker["resources"]["requests"]["nvidia.com/gpu"]
    assert worker["image"].endswith(":cuda")
    for container in containers(gpu):
        container.get("resources", {}).get("requests", {}).pop("nvidia.com/gpu", None)
        container.get("resources", {}).get("limits", {}).pop("nvidia.com/gpu", None)
        if container["image"].endswith(":cuda"):
            container["image"] = container["image"].removesuffix(":cuda") + ":latest"
    del pod_spec(job)["tolerations"]
    assert gpu == base


@pytest.mark.postgres
@pytest.mark.slow  # two worker processes and a dashboard server
def test_the_pods_commands_and_environments_run_against_postgres(render, tmp_path):
    url = postgres_url()
    objects = render["base"]
    secret_line, configmap_line, _, _ = readme_commands()
    secrets = {"adamtune-db": secret_data(client_side(secret_line))}
    name = f"k8s_{os.getpid()}"
    study = write_study(tmp_path, name, n_trials=3, epochs=2)
    configmap = client_side(configmap_line.replace("studies/digits_mlp.yaml", str(study)))
    volumes_dir = tmp_path / "volumes"

    def local_mounts(workload: dict, container: dict) -> dict[str, Path]:
        """Each mount's local folder: a ConfigMap's keys as files, a claim (and its subPath) a folder of its
        own, the same for every pod that mounts it."""
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        paths = {}
        for mount in container["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                folder = volumes_dir / "configmap" / volume["configMap"]["name"]
                folder.mkdir(parents=True, exist_ok=True)
                for key, text in configmap["data"].items():
                    (folder / key).write_text(text)
            else:
                folder = volumes_dir / volume["persistentVolumeClaim"]["claimName"] / mount.get("subPath", "")
                folder.mkdir(parents=True, exist_ok=True)
            paths[mount["mountPath"]] = folder
        return paths

    def local(workload: dict, container: dict) -> tuple[list[str], dict[str, str]]:
        paths = local_mounts(workload, container)
        env = container_env(container, secrets)
        env = dict(zip(env, mounted(container, paths, *env.values()), strict=True))
        assert env["ADAMTUNE_STORAGE"] == STORE_URL.format(password=secrets["adamtune-db"]["password"])
        env["ADAMTUNE_STORAGE"] = url  # the cluster's host `postgres` is the local server here
        return mounted(container, paths, *container["command"]), env

    postgres = pod_spec(find(objects, "StatefulSet"))["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        result = subprocess.run(postgres[probe]["exec"]["command"], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
    job = find(objects, "Job")
    worker, = pod_spec(job)["containers"]
    argv, env = local(job, worker)
    assert env["OMP_NUM_THREADS"] == "1" and argv[2].endswith("study.yaml")
    artifacts = Path(env["ADAMTUNE_ARTIFACTS"])
    dashboard_proc = None
    try:
        pods = [spawn(*argv[1:], env={**env, "JOB_COMPLETION_INDEX": str(i)}, cwd=tmp_path) for i in range(2)]
        for code, output in finish(pods):
            assert code == 0, output
        trials = optuna.load_study(study_name=name, storage=url).get_trials()
        assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) >= 3
        assert list((artifacts / name / "best").glob("*/model.pt")), "on the shared volume, not the study's path"

        deployment = find(objects, "Deployment")
        container, = pod_spec(deployment)["containers"]
        argv, env = local(deployment, container)
        assert Path(env["ADAMTUNE_ARTIFACTS"]) == artifacts, "the dashboard sees what the workers wrote"
        port = free_port()  # the container's 8080 may be taken on this machine
        argv[argv.index("--port") + 1] = str(port)
        dashboard_proc = subprocess.Popen([ADAMTUNE, *argv[1:]],
                                          env={"PATH": os.environ["PATH"], **env}, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        probes = {p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
        wait_for(lambda: status(f"{base}{probes['readinessProbe']}") == 200 or dashboard_proc.poll() is not None,
                 60, "the dashboard's readiness probe")
        assert status(f"{base}{probes['livenessProbe']}") == 200
        assert status(f"{base}/api/studies", "POST") == 403, "read-only"
        study_id = optuna.load_study(study_name=name, storage=url)._study_id
        detail = json.loads(urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=10).read())
        trial = next(t for t in detail["trials"] if any(a["mimetype"] == "image/png" for a in t["artifacts"]))
        png, = (a for a in trial["artifacts"] if a["mimetype"] == "image/png")
        assert not list(artifacts.rglob(f"*{png['artifact_id']}*")), "not drawn yet"
        body = urllib.request.urlopen(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{png['artifact_id']}",
                                      timeout=30).read()
        assert body.startswith(b"\x89PNG")
        assert list(artifacts.rglob(f"*{png['artifact_id']}*")), "the drawn curve is kept on the shared volume"
    finally:
        if dashboard_proc is not None:
            dashboard_proc.terminate()
            dashboard_proc.communicate(timeout=10)
        if name in optuna.study.get_all_study_names(url):
            optuna.delete_study(study_name=name, storage=url)


def status(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:  # not listening yet
        return 0
