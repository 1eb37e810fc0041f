"""Jobs belong to the key that made them; GET /jobs lists them; idempotent submits."""

from __future__ import annotations

import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status

KEYS = ["alice:k-alice-secret", "bob:k-bob-secret", "k-bare-secret"]


def _as(client: httpx.Client, key: str) -> None:
    client.headers["Authorization"] = f"Bearer {key}"


def test_a_job_is_seen_only_with_the_key_that_made_it(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=KEYS) as client:
        _as(client, "k-alice-secret")
        first = submit(client, source, driving).json()["id"]
        second = submit(client, source, driving, seed="1").json()["id"]
        _as(client, "k-bob-secret")
        bobs = submit(client, source, driving).json()["id"]
        for method, path in (
            ("GET", f"/jobs/{first}"),
            ("GET", f"/jobs/{first}/result"),
            ("GET", f"/jobs/{first}/events"),
            ("DELETE", f"/jobs/{first}"),
        ):
            answer = client.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
            other = str(uuid.uuid4())
            unknown = client.request(method, path.replace(first, other))
            assert unknown.status_code == 404, "another key's job looks like no job at all"
            assert unknown.json()["detail"] == answer.json()["detail"].replace(first, other)
        listed = client.get("/jobs").json()
        assert [job["id"] for job in listed["jobs"]] == [bobs]
        _as(client, "k-bare-secret")
        assert client.get("/jobs").json() == {"jobs": [], "next_cursor": None}
        assert client.get(f"/jobs/{bobs}").status_code == 404

        _as(client, "k-alice-secret")
        assert client.get(f"/jobs/{first}").status_code == 200
        listed = client.get("/jobs").json()
        assert [job["id"] for job in listed["jobs"]] == [second, first], "newest first"
        assert listed["next_cursor"] is None
        page = client.get("/jobs", params={"limit": 1}).json()
        assert [job["id"] for job in page["jobs"]] == [second] and page["next_cursor"]
        rest = client.get("/jobs", params={"limit": 1, "cursor": page["next_cursor"]}).json()
        assert [job["id"] for job in rest["jobs"]] == [first]
        assert rest["next_cursor"] is None, "the last page says so"
        older = client.get("/jobs", params={"limit": 1, "cursor": "1000.5"}).json()
        assert older == {"jobs": [], "next_cursor": None}
        assert client.get("/jobs", params={"cursor": "nonsense"}).status_code == 422
        assert client.get("/jobs", params={"status": "nonsense"}).status_code == 422

        assert client.delete(f"/jobs/{first}").status_code == 202
        canceled = client.get("/jobs", params={"status": "canceled"}).json()["jobs"]
        assert [job["id"] for job in canceled] == [first]
        queued = client.get("/jobs", params={"status": "queued"}).json()["jobs"]
        assert [job["id"] for job in queued] == [second]
        stack.start_worker()
        assert wait_status(client, second, timeout=90)["status"] == "finished"
        assert client.get(f"/jobs/{second}/result").status_code == 200
        _as(client, "k-bob-secret")
        assert client.get(f"/jobs/{second}/result").status_code == 404

    # Redis knows keys by their names only, never the keys themselves.
    for redis_key in stack.redis.scan_iter("mcnet:*"):
        assert b"secret" not in redis_key
        if stack.redis.type(redis_key) == b"string":
            assert b"secret" not in (stack.redis.get(redis_key) or b"")
    assert stack.redis.get(f"mcnet:owner:{first}") == b"alice"
    assert not any(b"secret" in key for key in stack.redis.keys(f"*{stack.queue}*"))


def test_without_keys_every_caller_lists_every_job(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        ids = [submit(client, source, driving, seed=str(s)).json()["id"] for s in range(3)]
        listed = client.get("/jobs").json()
        assert [job["id"] for job in listed["jobs"]] == ids[::-1]
        assert all(job["status"] == "queued" for job in listed["jobs"])


def _files(source: Path, driving: Path) -> dict[str, tuple[str, bytes, str]]:
    return {
        "source": (source.name, source.read_bytes(), "application/octet-stream"),
        "driving": (driving.name, driving.read_bytes(), "application/octet-stream"),
    }


def test_idempotent_submit(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    _, other_driving = make_inputs(tmp_path, frames=3, seed=1)
    with stack.api(api_keys=KEYS) as client:
        _as(client, "k-alice-secret")
        retry = {"Idempotency-Key": "order-17"}
        data = {"crop": "none", "seed": "3"}
        first = client.post("/animate", files=_files(source, driving), data=data, headers=retry)
        assert first.status_code == 202 and "idempotent-replayed" not in first.headers
        again = client.post("/animate", files=_files(source, driving), data=data, headers=retry)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        for files, fields in (
            (_files(source, other_driving), data),
            (_files(source, driving), {**data, "seed": "4"}),
        ):
            clash = client.post("/animate", files=files, data=fields, headers=retry)
            assert clash.status_code == 422 and "Idempotency-Key" in clash.json()["detail"]
        bad = client.post(
            "/animate",
            files=_files(source, driving),
            data=data,
            headers={"Idempotency-Key": "x" * 256},
        )
        assert bad.status_code == 422
        _as(client, "k-bob-secret")  # keys are scoped per owner
        bobs = client.post("/animate", files=_files(source, driving), data=data, headers=retry)
        assert bobs.status_code == 202 and bobs.json()["id"] != first.json()["id"]
        _as(client, "k-alice-secret")
        assert [job["id"] for job in client.get("/jobs").json()["jobs"]] == [first.json()["id"]]


def test_retries_after_a_cut_connection_give_one_job(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=KEYS) as client:
        _as(client, "k-alice-secret")

        def request(key: str) -> httpx.Request:
            return client.build_request(
                "POST",
                "/animate",
                files=_files(source, driving),
                data={"crop": "none"},
                headers={"Idempotency-Key": key},
            )

        def raw(sent: httpx.Request) -> tuple[tuple[str, int], bytes]:
            url = urlsplit(str(sent.url))
            head = f"POST /animate HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
                f"{name}: {value}\r\n" for name, value in sent.headers.items() if name != "host"
            )
            return (url.hostname or "", url.port or 80), head.encode() + b"\r\n" + sent.read()

        # Cut in the middle of the upload: no job; the retry makes the one job.
        address, data = raw(request("cut-early"))
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(data[: len(data) // 2])
        retried = client.send(request("cut-early"))
        assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
        assert [job["id"] for job in client.get("/jobs").json()["jobs"]] == [retried.json()["id"]]

        # Cut while waiting for the answer: the job was made; the retry gets it back.
        address, data = raw(request("cut-late"))
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(data)
            jobs = wait_for(
                lambda: client.get("/jobs").json()["jobs"][1:], 30, "the cut request's job"
            )
        retried = client.send(request("cut-late"))
        assert retried.status_code == 202 and retried.headers["idempotent-replayed"] == "true"
        assert retried.json()["id"] == client.get("/jobs").json()["jobs"][0]["id"]
        assert len(client.get("/jobs").json()["jobs"]) == 2 == len(jobs) + 1


def test_concurrent_retries_with_one_idempotency_key_never_answer_404(
    stack: Stack, tmp_path: Path
) -> None:
    source, driving = make_inputs(tmp_path, frames=24, size=96)
    with stack.api(api_keys=KEYS) as client:
        headers = {"Authorization": "Bearer k-alice-secret", "Idempotency-Key": "order-5"}

        def post(_: int) -> httpx.Response:
            with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
                return own.post(
                    "/animate",
                    files=_files(source, driving),
                    data={"crop": "none"},
                    headers=headers,
                )

        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(post, range(5)))
        codes = [answer.status_code for answer in answers]
        assert set(codes) <= {202, 409}, [(a.status_code, a.text) for a in answers]
        ids = {answer.json()["id"] for answer in answers if answer.status_code == 202}
        assert len(ids) == 1, ids
        for answer in answers:
            if answer.status_code == 409:
                assert int(answer.headers["retry-after"]) >= 1
                assert "still being" in answer.json()["detail"]
        again = post(0)
        assert again.status_code == 202 and again.json()["id"] in ids
        assert again.headers["idempotent-replayed"] == "true"
        client.headers["Authorization"] = headers["Authorization"]
        assert [job["id"] for job in client.get("/jobs").json()["jobs"]] == list(ids)


def test_a_status_filter_applies_before_paging(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=KEYS) as client:
        _as(client, "k-alice-secret")
        oldest, middle, newest = (
            submit(client, source, driving, seed=str(seed)).json()["id"] for seed in range(3)
        )
        assert client.delete(f"/jobs/{oldest}").status_code == 202
        first = client.get("/jobs", params={"status": "canceled", "limit": 1}).json()
        assert [job["id"] for job in first["jobs"]] == [oldest], "found on the first page"
        assert first["next_cursor"] is None
        seen, cursor, pages = [], None, 0
        while pages < 5:
            params = {"status": "queued", "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = client.get("/jobs", params=params).json()
            assert page["jobs"] or page["next_cursor"] is None, "no empty page before the end"
            seen += [job["id"] for job in page["jobs"]]
            cursor, pages = page["next_cursor"], pages + 1
            if cursor is None:
                break
        assert seen == [newest, middle]
