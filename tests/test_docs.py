"""docs/DESIGN.md against the code: its endpoint table against the app's routes, its job
JSON table against the API's schema, its metric tables against the API's and the
worker's registries. A route, field or metric added without a line in DESIGN.md fails
here, saying where to document it."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry
from redis import Redis

from core.job_view import JobView
from core.settings import ApiSettings
from service.app import create_app
from service.local import free_port
from service.metrics import ApiMetrics, QueueCollector, TemplateCollector
from worker.metrics import DeviceMemoryCollector, WorkerMetrics

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^`\s]*)`")
METRIC = re.compile(r"`(mcnet_[a-z0-9_]+)")
FIELD = re.compile(r"`([a-z_]+)`")
PARAMETER = re.compile(r"\{[^}]*\}")


def section(title: str) -> str:
    """The text of DESIGN.md under `title` (a `##` or `###` heading) up to the next one."""
    text = DESIGN.read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match is not None, f"docs/DESIGN.md has no section {title!r}"
    return match.group(1)


def table_rows(text: str) -> list[str]:
    """The first cell of each row of the table in `text` (its header left out)."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [
        row.split(" | ")[0]
        for row in rows
        if not row.startswith(("| ---", "| method", "| field", "| metric"))
    ]


def api_routes(folder: Path) -> set[str]:
    """`METHOD /path` of every route the API's OpenAPI schema shows, path parameters as
    `{}`. The app is built, not served: nothing connects to Redis."""
    settings = ApiSettings(redis_url="redis://127.0.0.1:1/0", storage_url=folder.as_uri())
    app = create_app(settings, redis=Redis(port=free_port()))
    return {
        f"{method.upper()} {PARAMETER.sub('{}', path)}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_endpoint_of_the_api_is_in_the_design(tmp_path: Path) -> None:
    documented = {
        f"{method} {PARAMETER.sub('{}', path)}"
        for method, path in ROUTE.findall(section("HTTP API"))
    }
    routes = api_routes(tmp_path)
    missing = sorted(routes - documented)
    assert not missing, f"add these routes to the table of docs/DESIGN.md's 'HTTP API': {missing}"
    stale = sorted(documented - routes)
    assert not stale, f"docs/DESIGN.md's 'HTTP API' names routes the API lacks: {stale}"


def test_every_field_of_the_job_json_is_in_the_design() -> None:
    cells = table_rows(section("The job JSON"))
    documented = {name for cell in cells for name in FIELD.findall(cell)}
    fields = set(JobView.model_fields)
    missing = sorted(fields - documented)
    assert not missing, f"add these job fields to docs/DESIGN.md's 'The job JSON': {missing}"
    stale = sorted(documented - fields)
    assert not stale, f"docs/DESIGN.md's 'The job JSON' names fields the API lacks: {stale}"


def _names(registry: CollectorRegistry) -> set[str]:
    """The project's metric names as Prometheus shows them (counters with their `_total`);
    the standard process collector's `process_*` are prometheus_client's, not ours."""
    return {
        family.name + "_total" if family.type == "counter" else family.name
        for family in registry.collect()
        if family.name.startswith("mcnet_")
    }


def api_metric_names() -> set[str]:
    """What the API's `/metrics` shows: ApiMetrics and the metrics read from Redis."""
    registry = CollectorRegistry()
    ApiMetrics(registry)
    registry.register(
        QueueCollector(
            lambda: 0, lambda: {"queued": 0}, lambda: 0, lambda: {"loaded": 0}, lambda: True
        )
    )
    registry.register(TemplateCollector(lambda: {"finished": 0}, lambda: 0))
    return _names(registry)


def worker_metric_names() -> set[str]:
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    # the CUDA memory gauges, as a worker on a GPU registers them
    registry.register(DeviceMemoryCollector("cuda:0", lambda: 0, lambda: 0))
    return _names(registry)


def test_every_metric_is_in_the_design() -> None:
    documented = set(METRIC.findall(section("Metrics")))
    names = api_metric_names() | worker_metric_names()
    missing = sorted(names - documented)
    assert not missing, f"add these metrics to the tables of docs/DESIGN.md's 'Metrics': {missing}"
    stale = sorted(documented - names)
    assert not stale, f"docs/DESIGN.md's 'Metrics' names metrics the code lacks: {stale}"
