"""Where inputs and results live: a folder (`file://`) or an S3-compatible bucket (`s3://`).

Keys are made here from a job id only (a random UUID the API generates), so nothing a
client sends ever becomes part of a path or an object name:

    inputs/<job id>/source    inputs/<job id>/driving    results/<job id>.mp4
    templates/<template id>/motion.mcnet

(a template's upload waits under `inputs/<template id>/driving` until it is made)

Writes are atomic: a file is written under a temporary name in its final folder and
renamed; an S3 object appears only when its upload completes. Objects older than their
TTL are deleted by `expire` (workers call it periodically).
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from core.files import replaced_atomically

logger = logging.getLogger(__name__)

InputName = Literal["source", "driving"]
INPUT_NAMES: tuple[InputName, ...] = ("source", "driving")  # the two uploads of a job
_CHUNK = 1 << 20
_TMP_MARK = ".tmp-"

_S3_CONNECT_TIMEOUT_S = 3.0
_S3_READ_TIMEOUT_S = 30.0  # between two reads of one answer, not the whole transfer


class StorageError(Exception):
    """The store cannot be reached or refused an operation."""


class ObjectMissingError(StorageError):
    """No object under this key (never written, deleted, or expired)."""


def check_job_id(job_id: str) -> str:
    """Return `job_id` if it is a canonical UUID string, else raise ValueError."""
    try:
        canonical = str(uuid.UUID(job_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a job id: {job_id!r}") from exc
    if canonical != job_id:
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def input_key(job_id: str, name: InputName) -> str:
    """Key of one uploaded input of a job."""
    if name not in INPUT_NAMES:
        raise ValueError(f"unknown input {name!r}")
    return f"inputs/{check_job_id(job_id)}/{name}"


def result_key(job_id: str) -> str:
    """Key of a job's MP4."""
    return f"results/{check_job_id(job_id)}.mp4"


def template_key(template_id: str) -> str:
    """Key of a motion template's file (core.template_format)."""
    return f"templates/{check_job_id(template_id)}/motion.mcnet"


class Storage(abc.ABC):
    """A flat key -> bytes store with atomic writes and age-based expiry."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Store the local file `path` under `key` atomically (`move`: the file may be consumed)."""

    @abc.abstractmethod
    def get_file(self, key: str, path: Path) -> None:
        """Copy the object to the local file `path`; ObjectMissingError if absent."""

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """Size in bytes of the object, None if absent."""

    @abc.abstractmethod
    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes `start`..`end` (inclusive) of the object, in chunks."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object if present."""

    @abc.abstractmethod
    def expire(self, prefix: str, max_age: float, now: float | None = None) -> int:
        """Delete objects under `prefix` last written more than `max_age` seconds ago."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StorageError when the store cannot be used."""

    def presigned_url(self, key: str, seconds: int, filename: str) -> str | None:
        """A URL that serves the object without credentials for `seconds` (Range requests
        included), or None where the store has none (file://)."""
        return None

    def delete_inputs(self, job_id: str) -> None:
        """Delete both inputs of a job."""
        self.delete(input_key(job_id, "source"))
        self.delete(input_key(job_id, "driving"))

    def expire_all(
        self,
        *,
        input_ttl: float,
        result_ttl: float,
        template_ttl: float,
        now: float | None = None,
    ) -> int:
        """Apply the TTLs; returns how many objects were deleted."""
        return (
            self.expire("inputs/", input_ttl, now)
            + self.expire("results/", result_ttl, now)
            + self.expire("templates/", template_ttl, now)
        )


def _moved(path: Path, to: Path) -> bool:
    """Rename `path` to `to` if they are on one file system; False when it cannot."""
    try:
        os.replace(path, to)
    except OSError:
        return False
    return True


class FileStorage(Storage):
    """Objects are files under a root folder (one host, or a shared volume)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad storage key {key!r}")
        return self.root / key

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(target) as tmp:
                if not (move and _moved(path, tmp)):
                    shutil.copyfile(path, tmp)
        except OSError as exc:
            self._prune(target.parent)  # a refused write leaves no empty job folder
            raise StorageError(f"cannot write {key}: {exc}") from exc

    def get_file(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError as exc:
            raise ObjectMissingError(key) from exc

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # closed by _read_range
        except FileNotFoundError as exc:
            raise ObjectMissingError(key) from exc
        return _read_range(handle, start, end)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove `folder` (a job's folder, as `inputs/<id>/`) once it is empty; the
        top folders (`inputs/`, `results/`, `templates/`) stay."""
        if folder == self.root or folder.parent == self.root:
            return
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty, or already gone

    def expire(self, prefix: str, max_age: float, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - max_age
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return 0
        removed = 0
        for folder, _dirs, files in os.walk(base, topdown=False):
            for name in files:
                file = Path(folder) / name
                try:
                    if file.stat().st_mtime < cutoff:
                        file.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
            if Path(folder) != base:
                try:
                    Path(folder).rmdir()  # only when empty
                except OSError:
                    pass
        return removed

    def expire_all(
        self,
        *,
        input_ttl: float,
        result_ttl: float,
        template_ttl: float,
        now: float | None = None,
    ) -> int:
        """The TTLs, and uploads an API process left in `.spool` when it stopped mid-request."""
        removed = super().expire_all(
            input_ttl=input_ttl, result_ttl=result_ttl, template_ttl=template_ttl, now=now
        )
        return removed + self.expire(".spool/", max(input_ttl, 3600.0), now)

    def check(self) -> None:
        """Write and remove a small file in each folder the service writes to (a read-only
        or full store fails here)."""
        for folder in (
            self.root,
            self.root / "inputs",
            self.root / "results",
            self.root / "templates",
        ):
            check_writable(folder)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed, then write and remove a small file in it; StorageError
    when that fails (missing permission, read-only, full)."""
    probe = folder / f".probe{_TMP_MARK}{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(probe, "wb") as handle:
                handle.write(b"mcnet storage check\n")
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"storage folder {folder} is not writable: {exc.strerror}") from exc


def _read_range(handle: Any, start: int, end: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


class S3Storage(Storage):
    """Objects in an S3 bucket under a prefix (workers on several hosts)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client

    def _name(self, key: str) -> str:
        return self.prefix + key

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # A (multipart) upload becomes visible only once it is complete.
            self.client.upload_file(str(path), self.bucket, self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot upload {key}: {exc}") from exc
        if move:
            Path(path).unlink(missing_ok=True)

    def get_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with replaced_atomically(path) as tmp:
                self.client.download_file(self.bucket, self._name(key), str(tmp))
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissingError(key) from exc
            raise StorageError(f"cannot download {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot download {key}: {exc}") from exc

    def size(self, key: str) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StorageError(f"cannot read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc
        return int(head["ContentLength"])

    def presigned_url(self, key: str, seconds: int, filename: str) -> str | None:
        from botocore.exceptions import BotoCoreError

        params = {
            "Bucket": self.bucket,
            "Key": self._name(key),
            "ResponseContentType": "video/mp4",
            "ResponseContentDisposition": f'inline; filename="{filename}"',
        }
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds
            )
        except BotoCoreError as exc:
            raise StorageError(f"cannot sign a URL for {key}: {exc}") from exc
        return url

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self._name(key), Range=f"bytes={start}-{end}"
            )
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissingError(key) from exc
            raise StorageError(f"cannot read {key}: {exc}") from exc
        return _iter_body(answer["Body"])

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot delete {key}: {exc}") from exc

    def expire(self, prefix: str, max_age: float, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - max_age
        paginator = self.client.get_paginator("list_objects_v2")
        old: list[dict[str, str]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._name(prefix)):
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < cutoff:
                    old.append({"Key": item["Key"]})
        for first in range(0, len(old), 1000):
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": old[first : first + 1000], "Quiet": True}
            )
        return len(old)

    def check(self) -> None:
        """Write and delete a small object under each prefix the service writes to."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for prefix in ("inputs/", "results/", "templates/"):
                name = self._name(f"{prefix}.probe{_TMP_MARK}{uuid.uuid4().hex}")
                self.client.put_object(Bucket=self.bucket, Key=name, Body=b"mcnet storage check")
                self.client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"bucket {self.bucket} cannot be written: {exc}") from exc


def _iter_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(_CHUNK)
    finally:
        body.close()


def _is_missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def open_storage(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    """The store a `STORAGE_URL` names: file:///path, a bare path, or s3://bucket/prefix."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.netloc + parsed.path) if parsed.scheme else url
        if not path:
            raise ValueError(f"STORAGE_URL {url!r} names no folder")
        return FileStorage(Path(path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"STORAGE_URL {url!r} names no bucket")
        import boto3
        from botocore.config import Config

        # Bounded: an unreachable endpoint is an error within seconds, not minutes. SigV4
        # (presigned result URLs too): every AWS region accepts it, SigV2 not.
        bounds = Config(
            signature_version="s3v4",
            connect_timeout=_S3_CONNECT_TIMEOUT_S,
            read_timeout=_S3_READ_TIMEOUT_S,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        client = boto3.client("s3", endpoint_url=s3_endpoint_url or None, config=bounds)
        return S3Storage(parsed.netloc, unquote(parsed.path), client=client)
    raise ValueError(f"STORAGE_URL {url!r}: use file:///path or s3://bucket/prefix")
