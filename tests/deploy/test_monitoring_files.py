"""The monitoring files, checked without containers: the alert rules and their unit tests
(promtool), the Alertmanager config (amtool), the Grafana provisioning and dashboard, and
the compose profile that runs them. Their queries are evaluated against a live Prometheus
in tests/service/test_monitoring.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.deploy.engine import COMPOSE_FILE, Compose
from tests.prerequisites import missing

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"
ALERTMANAGER = ROOT / "docker" / "alertmanager" / "alertmanager.yml"


def _tool(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    if binary is None:
        missing(f"`{name}` is needed: apt-get install prometheus prometheus-alertmanager")
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_pass_their_unit_tests_and_each_rule_fires_and_stays_quiet() -> None:
    checked = _tool("promtool", "check", "rules", PROMETHEUS / "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = _tool("promtool", "test", "rules", PROMETHEUS / "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    names = {rule["alert"] for group in rules for rule in group["rules"]}
    cases = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fires, quiet = set(), set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fires == names and quiet == names, (names - fires, names - quiet)


def test_alertmanager_config_passes_amtool() -> None:
    done = _tool("amtool", "check-config", ALERTMANAGER)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_provisions_the_dashboard_and_its_data_source() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in sources}
    dashboard = json.loads((GRAFANA / "dashboards" / "mcnet.json").read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == [
        "Are jobs flowing?",
        "How long do users wait?",
        "Which workers are busy or idle?",
        "What fails and why?",
        "Webhooks",
        "HTTP",
        "Uploads",
        "Motion templates",
    ]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mcnet.yml").read_text())[
        "providers"
    ]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_monitoring_profile_mounts_the_files_it_needs() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("grafana", "alertmanager"):
        assert services[name]["profiles"] == ["monitoring"], name
    mounts = [
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    for mount in mounts:
        assert (ROOT / mount).exists(), mount
    assert "./docker/prometheus/alerts.yml" in mounts
    assert "./docker/grafana/dashboards" in mounts and "./docker/grafana/provisioning" in mounts


def test_the_monitoring_profile_adds_grafana_and_alertmanager_only_when_asked() -> None:
    env = {"MCNET_CHECKPOINT": "/srv/models/mcnet.pth.tar"}
    plain = Compose("mcnet", [COMPOSE_FILE], env).config()["services"]
    assert not {"grafana", "alertmanager"} & set(plain)
    monitored = Compose("mcnet", [COMPOSE_FILE], {**env, "COMPOSE_PROFILES": "monitoring"})
    services = monitored.config()["services"]
    assert {"prometheus", "grafana", "alertmanager"} <= set(services)
    assert services["grafana"]["depends_on"].keys() == {"prometheus"}
