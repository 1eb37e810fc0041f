"""OpenAPI documents what programs use: listing, events, idempotency, webhooks, limits."""

from __future__ import annotations

from tests.service.conftest import Stack


def test_openapi_documents_the_api_for_programs(stack: Stack) -> None:
    with stack.api(api_keys=["k"]) as client:
        schema = client.get("/openapi.json", headers={"Authorization": "Bearer k"}).json()
    paths = schema["paths"]
    submit = paths["/animate"]["post"]
    assert [p["name"] for p in submit["parameters"]] == ["idempotency-key"]
    assert "first job" in submit["parameters"][0]["description"]
    assert "Idempotent-Replayed" in submit["responses"]["202"]["headers"]
    form = submit["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert "webhook-signature" in form["webhook"]["description"]
    assert "started" in form["webhook_events"]["description"]
    listing = paths["/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"status", "limit", "cursor"}
    events = paths["/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert (
        "queue_position"
        in events["responses"]["200"]["content"]["text/event-stream"]["schema"]["properties"]
    )
    assert "307" in paths["/jobs/{job_id}/result"]["get"]["responses"]
    for path, method in (
        ("/animate", "post"),
        ("/jobs", "get"),
        ("/jobs/{job_id}", "get"),
        ("/jobs/{job_id}", "delete"),
        ("/jobs/{job_id}/result", "get"),
        ("/jobs/{job_id}/events", "get"),
    ):
        responses = paths[path][method]["responses"]
        assert {"401", "429"} <= set(responses), (path, method)
        assert "Retry-After" in responses["429"]["headers"]
    assert "429" not in paths["/healthz"]["get"]["responses"]
    assert "events" in schema["components"]["schemas"]["Links"]["properties"]
    answer = schema["components"]["schemas"]["SubmitResponse"]["properties"]
    assert "replay" in answer["status"]["description"]  # not "always queued"
    assert "current status" in answer["status"]["description"]
    assert {"estimated_seconds", "warnings"} <= set(answer)
    assert "estimated_seconds" in schema["components"]["schemas"]["JobView"]["properties"]
