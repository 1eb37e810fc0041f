"""Write components/monitoring/prometheusrule.yaml from docker/prometheus/alerts.yml.

The compose stack's Prometheus reads the rule file itself; on Kubernetes the same rules go
to prometheus-operator as a PrometheusRule, whose `spec.groups` is the file's `groups`.
Kustomize cannot parse a file into a field, so this script writes the object and
tests/deploy_kubernetes checks that the two agree. After editing alerts.yml:

    python deploy/kubernetes/sync_rules.py          # rewrite the PrometheusRule
    python deploy/kubernetes/sync_rules.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docker" / "prometheus" / "alerts.yml"
TARGET = Path(__file__).resolve().parent / "components" / "monitoring" / "prometheusrule.yaml"
HEADER = (
    "# Written by deploy/kubernetes/sync_rules.py from docker/prometheus/alerts.yml (the\n"
    "# compose stack's rules): edit that file, then run the script.\n"
)


def prometheus_rule(rules: dict[str, Any]) -> dict[str, Any]:
    """The PrometheusRule object holding the rule file's groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mcnet", "labels": {"app.kubernetes.io/name": "mcnet"}},
        "spec": {"groups": rules["groups"]},
    }


def render() -> str:
    """The text prometheusrule.yaml should have."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return HEADER + yaml.safe_dump(prometheus_rule(rules), sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET} is out of date: run {Path(__file__).name}\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
