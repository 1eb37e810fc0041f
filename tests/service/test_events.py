"""GET /jobs/{id}/events: Server-Sent Events of a job's progress, from one shared poller."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from core.protocol import Stage
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for


def read_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of a text/event-stream, as they arrive."""
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def test_events_follow_a_job_from_the_queue_to_its_end(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=6)
    with stack.api(events_interval=0.1) as client:
        ahead = submit(client, source, driving).json()["id"]
        job_id = submit(client, source, driving, seed="2").json()["id"]
        events: list[tuple[str, dict[str, Any]]] = []
        with client.stream("GET", f"/jobs/{job_id}/events", timeout=120) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for name, data in read_events(stream.iter_lines()):
                events.append((name, data))
                if len(events) == 1:
                    first = (name, data["status"], data["queue_position"])
                    assert first == ("progress", "queued", 2)
                    assert client.delete(f"/jobs/{ahead}").status_code == 202
                    stack.start_worker(wait=False)
        # the stream closed by itself after the job ended
    names = [name for name, _ in events]
    assert names[-1] == "end" and names.count("end") == 1
    final = events[-1][1]
    assert final["id"] == job_id and final["status"] == "finished"
    assert final["progress"] == {"stage": "done", "frames_done": 6, "frames_total": 6}
    assert final["queue_position"] is None and final["result_url"]
    positions = [data["queue_position"] for _, data in events if data["status"] == "queued"]
    assert positions[0] == 2 and 1 in positions, positions
    order = [(Stage(d["progress"]["stage"]).order, d["progress"]["frames_done"]) for _, d in events]
    assert order == sorted(order), "progress went backwards"
    assert any(d["progress"]["stage"] == "animating" for _, d in events), names
    assert len({json.dumps(d, sort_keys=True) for _, d in events}) == len(events), "repeats"


def test_events_of_a_job_that_ended_and_of_none(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        client.delete(f"/jobs/{job_id}")
        answer = client.get(f"/jobs/{job_id}/events", timeout=30)
        events = list(read_events(iter(answer.text.splitlines())))
        assert [(n, d["status"]) for n, d in events] == [("end", "canceled")]
        missing = client.get("/jobs/123e4567-e89b-42d3-a456-426614174000/events")
        assert missing.status_code == 404 and "detail" in missing.json()


def _metric(client: httpx.Client, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", client.get("/metrics").text, re.M)
    assert found, name
    return float(found.group(1))


def test_many_streams_share_one_poller(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    interval, streams = 0.2, 8
    with stack.api(events_interval=interval) as client:
        ids = [submit(client, source, driving, seed=str(s)).json()["id"] for s in range(4)]
        listening: list[str] = []
        stop = threading.Event()

        def watch(job_id: str) -> None:
            with (
                httpx.Client(base_url=str(client.base_url)) as own,
                own.stream("GET", f"/jobs/{job_id}/events", timeout=60) as stream,
            ):
                events = read_events(stream.iter_lines())
                next(events)  # kept open (not closed by a `break`) until told to stop
                listening.append(job_id)
                stop.wait(30)

        threads = [
            threading.Thread(target=watch, args=(ids[i % len(ids)],), daemon=True)
            for i in range(streams)
        ]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(listening) == streams, 30, "every stream's first event")
        assert _metric(client, "mcnet_event_streams") == streams
        before = _metric(client, "mcnet_event_reads_total")
        started = time.monotonic()
        time.sleep(2.0)
        reads = _metric(client, "mcnet_event_reads_total") - before
        ticks = (time.monotonic() - started) / interval
        # one read of all watched jobs per tick, not one per stream per tick
        assert 2 <= reads <= ticks + 2, (reads, ticks)
        stop.set()
        for thread in threads:
            thread.join(10)
        wait_for(lambda: _metric(client, "mcnet_event_streams") == 0, 10, "streams to close")
