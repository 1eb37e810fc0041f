"""deploy/kubernetes, checked without a cluster: every overlay renders with `kubectl
kustomize`; every object validates against the Kubernetes OpenAPI schemas of the stated
versions (kubernetes-validate) or, for KEDA and prometheus-operator objects, against the
CRDs kept in deploy/kubernetes/crds; checkov finds nothing that is not justified in the
object; and the names agree with the code (selectors and labels, ports and settings,
environment variables and settings, the queue key KEDA reads and the one jobs go to).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from redis import Redis

from core.jobs import JobQueue
from core.media_probe import VideoInfo
from core.options import JobOptions
from core.settings import ApiSettings, WorkerSettings
from service.local import EmbeddedRedis
from service.metrics import ApiMetrics, QueueCollector
from tests.deploy_kubernetes.manifests import (
    NAMESPACE,
    OVERLAYS,
    ROOT,
    Object,
    containers,
    crd_schemas,
    env_of,
    find,
    matches,
    render,
)
from tests.prerequisites import missing

# The Kubernetes versions the core objects are validated against (oldest and newest).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PodMonitor",
             "PrometheusRule"}  # fmt: skip
# Variables the containers get that are not core/settings.py settings, and who reads them.
NOT_SETTINGS = {
    "AWS_ACCESS_KEY_ID": "boto3 (s3:// storage)",
    "AWS_SECRET_ACCESS_KEY": "boto3 (s3:// storage)",
    "AWS_DEFAULT_REGION": "boto3 (s3:// storage)",
    "MCNET_LOG_LEVEL": "core.logs",
}
EXPECTED = {
    ("Namespace", "mcnet"),
    ("Deployment", "mcnet-api"),
    ("Service", "mcnet-api"),
    ("Ingress", "mcnet-api"),
    ("PodDisruptionBudget", "mcnet-api"),
    ("HorizontalPodAutoscaler", "mcnet-api"),
    ("Deployment", "mcnet-worker"),
    ("ScaledObject", "mcnet-worker"),
    ("TriggerAuthentication", "mcnet-redis"),
    ("StatefulSet", "mcnet-redis"),
    ("Service", "mcnet-redis"),
    ("NetworkPolicy", "mcnet-default-deny"),
    ("ServiceMonitor", "mcnet-api"),
    ("PodMonitor", "mcnet-worker"),
    ("PrometheusRule", "mcnet"),
    ("ConfigMap", "mcnet-grafana-dashboard"),
}


@pytest.fixture(params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> tuple[Object, ...]:
    return render(request.param)


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    """A database of its own on the session's real redis-server, emptied afterwards."""
    url = redis_server.url.rsplit("/", 1)[0] + "/9"
    Redis.from_url(url).flushdb()
    yield url
    Redis.from_url(url).flushdb()


# rendering and schemas ------------------------------------------------------------------
def test_every_overlay_has_the_objects_of_the_design(objects: tuple[Object, ...]) -> None:
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert EXPECTED <= present, EXPECTED - present
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_validate_against_the_kubernetes_schemas(
    objects: tuple[Object, ...], version: str
) -> None:
    for obj in objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_kubernetes_validation_refuses_a_misspelt_field() -> None:
    """The schema check above can fail: an unknown field is an error."""
    api = json.loads(json.dumps(find(render("gpu"), "Deployment", "mcnet-api")))
    api["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[-1], strict=True)


def test_crd_objects_validate_against_the_kept_crd_schemas(objects: tuple[Object, ...]) -> None:
    schemas = crd_schemas()
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            schema, _ = schemas[(obj["apiVersion"], obj["kind"])]
            validate_crd_object(obj, schema)


def test_the_kept_crds_say_where_they_come_from_and_refuse_unknown_fields() -> None:
    schemas = crd_schemas()
    for (api_version, kind), (_, header) in schemas.items():
        source = "kedacore/keda" if api_version.startswith("keda.sh") else "prometheus-operator"
        assert source in header and " v" in header, (kind, header)
    scaled = json.loads(json.dumps(find(render("gpu"), "ScaledObject", "mcnet-worker")))
    scaled["spec"]["cooldownPeriods"] = 300
    with pytest.raises(jsonschema.ValidationError):
        validate_crd_object(scaled, schemas[("keda.sh/v1alpha1", "ScaledObject")][0])


def validate_crd_object(obj: Object, schema: Object) -> None:
    """Validate as JSON Schema draft 7 (OpenAPI v3's subset). The schema itself is not
    checked as a JSON Schema: CRDs carry Go regular expressions Python would refuse."""
    jsonschema.Draft7Validator(schema).validate(obj)


# security scan ---------------------------------------------------------------------------
def _checkov() -> str:
    for candidate in (ROOT / ".venv-checkov" / "bin" / "checkov", shutil.which("checkov")):
        if candidate is not None and Path(candidate).is_file():
            return str(candidate)
    missing(
        "checkov not found: python3 -m venv .venv-checkov && "
        ".venv-checkov/bin/pip install checkov==3.3.30 (as .ci/run does)"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_unjustified(overlay: str, tmp_path: Path) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(yaml.safe_dump_all(render(overlay), sort_keys=False))
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    scan = subprocess.run(
        [_checkov(), "-f", str(manifest), "--framework", "kubernetes", "-o", "json",
         "--skip-download", "--compact"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    report = json.loads(scan.stdout)
    results = (report if isinstance(report, dict) else report[0])["results"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in results["failed_checks"]]
    assert not failed, failed
    assert results["passed_checks"], "checkov checked nothing"
    for check in results["skipped_checks"]:  # each skip says why, in the object
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, (check["check_id"], check["resource"], reason)


# cross-checks with the code ---------------------------------------------------------------
def _env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in cls.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice) for choice in field.validation_alias.choices)
        else:
            names.add((prefix + name).upper())
    return names


_SECRET_STAND_INS = {
    "REDIS_URL": "redis://:password@mcnet-redis:6379/0",
    "STORAGE_URL": "s3://bucket/mcnet",
    "MCNET_S3_ENDPOINT_URL": "https://s3.example.com",
    "API_KEYS": "name:key",
}


def _settings(cls: type[Any], container: Object, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`cls` read from the container's environment, as its entry point reads it (values
    from Secrets replaced by stand-ins)."""
    for name in list(os.environ):
        if name.startswith("MCNET_") or name in ("REDIS_URL", "STORAGE_URL", "API_KEYS"):
            monkeypatch.delenv(name)
    for name, entry in env_of(container).items():
        value = entry.get("value", _SECRET_STAND_INS.get(name, "x"))
        monkeypatch.setenv(name, value)
    return cls()


def test_every_environment_variable_is_a_setting(
    objects: tuple[Object, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for workload, cls in (("mcnet-api", ApiSettings), ("mcnet-worker", WorkerSettings)):
        [container] = containers(find(objects, "Deployment", workload))
        unknown = set(env_of(container)) - _env_names(cls) - set(NOT_SETTINGS)
        assert not unknown, f"{workload}: not settings of {cls.__name__}: {unknown}"
        _settings(cls, container, monkeypatch)  # and every value is a valid one


def test_selectors_match_the_labels(objects: tuple[Object, ...]) -> None:
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    pods = {o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"] for o in workloads}
    for obj in workloads:
        assert matches(obj["spec"]["selector"], pods[obj["metadata"]["name"]])
    selected = {
        "Service/mcnet-api": "mcnet-api",
        "Service/mcnet-redis": "mcnet-redis",
        "PodDisruptionBudget/mcnet-api": "mcnet-api",
        "PodMonitor/mcnet-worker": "mcnet-worker",
    }
    for ref, workload in selected.items():
        kind, name = ref.split("/")
        spec = find(objects, kind, name)["spec"]
        chosen = [w for w, labels in pods.items() if matches(spec["selector"], labels)]
        assert chosen == [workload], (ref, chosen)
    api_service = find(objects, "Service", "mcnet-api")
    monitor = find(objects, "ServiceMonitor", "mcnet-api")
    assert matches(monitor["spec"]["selector"], api_service["metadata"]["labels"])
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        assert selector == {} or any(matches(selector, p) for p in pods.values()), policy
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    assert any(matches(peer["podSelector"], p) for p in pods.values()), peer
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for scaler in (o for o in objects if o["kind"] == kind):
            target = scaler["spec"]["scaleTargetRef"]
            find(objects, target.get("kind", "Deployment"), target["name"])
    scaled = find(objects, "ScaledObject", "mcnet-worker")
    for trigger in scaled["spec"]["triggers"]:
        if "authenticationRef" in trigger:
            find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])


def _ports(container: Object) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


def _size(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    return int(text[:-1]) * units[text[-1].lower()] if text[-1].isalpha() else int(text)


def test_ports_and_paths_match_the_settings(
    objects: tuple[Object, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    [api] = containers(find(objects, "Deployment", "mcnet-api"))
    api_settings = _settings(ApiSettings, api, monkeypatch)
    assert _ports(api) == {"http": api_settings.port} and api_settings.host == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["port"] in _ports(api)
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = find(objects, "Service", "mcnet-api")
    [port] = service["spec"]["ports"]
    assert _ports(api)[port["targetPort"]] == api_settings.port
    monitor = find(objects, "ServiceMonitor", "mcnet-api")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port["name"]]
    ingress = find(objects, "Ingress", "mcnet-api")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert (backend["name"], backend["port"]["name"]) == ("mcnet-api", port["name"])
    body = _size(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert body >= api_settings.max_image_bytes + api_settings.max_video_bytes + 2**20

    [worker] = containers(find(objects, "Deployment", "mcnet-worker"))
    worker_settings = _settings(WorkerSettings, worker, monkeypatch)
    assert _ports(worker) == {"metrics": worker_settings.metrics_port}
    podmonitor = find(objects, "PodMonitor", "mcnet-worker")
    assert [e["port"] for e in podmonitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    health = str(worker_settings.health_file)
    assert health in worker["startupProbe"]["exec"]["command"]
    assert health in " ".join(worker["livenessProbe"]["exec"]["command"])
    pod = find(objects, "Deployment", "mcnet-worker")["spec"]["template"]["spec"]
    # SIGKILL comes after terminationGracePeriodSeconds: the job's own grace, then one
    # batch and the requeue, must fit before it.
    assert pod["terminationGracePeriodSeconds"] >= worker_settings.shutdown_grace + 30

    [redis] = containers(find(objects, "StatefulSet", "mcnet-redis"))
    [redis_port] = find(objects, "Service", "mcnet-redis")["spec"]["ports"]
    assert _ports(redis)[redis_port["targetPort"]] == redis_port["port"]
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    for name, number in (("mcnet-api", api_settings.port),
                         ("mcnet-worker", worker_settings.metrics_port),
                         ("mcnet-redis", redis_port["port"])):  # fmt: skip
        [rule] = policies[name]["spec"]["ingress"]
        assert [p["port"] for p in rule["ports"]] == [number], name


def test_the_worker_has_its_device_in_each_overlay() -> None:
    [gpu] = containers(find(render("gpu"), "Deployment", "mcnet-worker"))
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env_of(gpu)["MCNET_DEVICE"]["value"] == "cuda"
    assert env_of(gpu)["MCNET_CHECKPOINT"]["value"].startswith("/models/")
    [demo] = containers(find(render("cpu-demo"), "Deployment", "mcnet-worker"))
    assert "nvidia.com/gpu" not in demo["resources"]["limits"]
    assert env_of(demo)["MCNET_DEMO_WEIGHTS"]["value"] == "true"


def test_secrets_the_objects_use_are_the_ones_the_guide_creates(
    objects: tuple[Object, ...],
) -> None:
    guide = (ROOT / "docs" / "KUBERNETES.md").read_text(encoding="utf-8")
    refs = set()
    for obj in objects:
        for node in _walk(obj):
            if "secretKeyRef" in node:
                refs.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
    for target in find(objects, "TriggerAuthentication", "mcnet-redis")["spec"]["secretTargetRef"]:
        refs.add((target["name"], target["key"]))
    for name, key in refs:
        assert f"generic {name}" in guide and f"--from-literal={key}=" in guide, (name, key)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_keda_reads_the_list_jobs_are_queued_on(
    objects: tuple[Object, ...], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ScaledObject's list is where the API's JobQueue puts a job (a real Redis), and
    its Redis address is the Redis Service."""
    [worker] = containers(find(objects, "Deployment", "mcnet-worker"))
    [api] = containers(find(objects, "Deployment", "mcnet-api"))
    settings = _settings(WorkerSettings, worker, monkeypatch)
    assert _settings(ApiSettings, api, monkeypatch).queue_name == settings.queue_name
    scaled = find(objects, "ScaledObject", "mcnet-worker")
    [trigger] = [t for t in scaled["spec"]["triggers"] if t["type"] == "redis"]
    list_name = trigger["metadata"]["listName"]

    connection = Redis.from_url(redis_url)
    queue = JobQueue(connection, settings)
    assert connection.llen(list_name) == 0
    video = VideoInfo(width=64, height=64, frames=2, fps=25.0, duration=0.08, has_audio=False)
    queue.submit(str(uuid.uuid4()), JobOptions(), video)
    assert connection.llen(list_name) == 1 == queue.depth()

    [port] = find(objects, "Service", "mcnet-redis")["spec"]["ports"]
    address = f"mcnet-redis.{NAMESPACE}.svc.cluster.local:{port['port']}"
    assert trigger["metadata"]["address"] == address
    assert int(trigger["metadata"]["activationListLength"]) == 0  # any waiting job wakes one
    assert scaled["spec"]["minReplicaCount"] == 0


def test_the_prometheus_trigger_reads_metrics_the_api_exports(
    objects: tuple[Object, ...],
) -> None:
    registry = CollectorRegistry()
    ApiMetrics(registry)
    registry.register(QueueCollector(lambda: 0, lambda: {"queued": 0, "started": 0}, lambda: 0))
    exported = generate_latest(registry).decode()
    scaled = find(objects, "ScaledObject", "mcnet-worker")
    [trigger] = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    query = trigger["metadata"]["query"]
    for name in ("mcnet_queue_depth", 'mcnet_jobs{status="started"}'):
        assert name.split("{")[0] in query and name in exported, name
    assert 'status="started"' in query and f'namespace="{NAMESPACE}"' in query


def test_alert_rules_and_dashboard_are_the_compose_stacks(objects: tuple[Object, ...]) -> None:
    rules = yaml.safe_load((ROOT / "docker" / "prometheus" / "alerts.yml").read_text())
    rule = find(objects, "PrometheusRule", "mcnet")
    assert rule["spec"]["groups"] == rules["groups"], (
        "out of date: run python deploy/kubernetes/sync_rules.py"
    )
    dashboard = find(objects, "ConfigMap", "mcnet-grafana-dashboard")
    text = (ROOT / "docker" / "grafana" / "dashboards" / "mcnet.json").read_text()
    assert dashboard["data"]["mcnet.json"] == text
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
