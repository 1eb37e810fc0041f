"""Settings of the API and the worker, read from the environment (pydantic-settings).

Pydantic-settings classes only. Only entry points (`mcnet api`, `mcnet worker`,
`mcnet serve`, `mcnet animate`) construct these classes; everything else receives the
values it needs as arguments, so tests build apps and workers with explicit settings.
The models they include (MediaLimits, EncodeSettings) are what the worker and the API
pass on, so each setting is declared once.

Environment names: `REDIS_URL`, `STORAGE_URL` and `API_KEYS` as they are; every other
setting is `MCNET_<FIELD NAME>` (for example `MCNET_MAX_VIDEO_BYTES`). An empty value
means unset (`MCNET_BATCH_SIZE=` from a compose file is the default), and a wrong value stops
the entry point with one line naming the variable (`settings_from_env`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.encoding import EncodeSettings
from core.keys import parse_api_keys
from core.media_probe import MediaLimits
from core.protocol import Precision
from core.webhooks import parse_networks, secret_bytes


def _comma_list(value: object) -> object:
    """A comma-separated environment value as its list of non-empty items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_CONFIG = SettingsConfigDict(
    env_prefix="MCNET_",
    env_file=None,
    env_ignore_empty=True,
    extra="ignore",
    populate_by_name=True,
    frozen=True,
)


class QueueSettings(BaseSettings, MediaLimits):
    """What API and worker share: where Redis and the files are, the queue and its TTLs,
    the limits of uploads (MediaLimits)."""

    model_config = _CONFIG

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "MCNET_REDIS_URL"),
        description="redis://host:6379/0. Unset: `mcnet serve` starts an embedded Redis; "
        "`mcnet api` and `mcnet worker` refuse to start.",
    )
    storage_url: str = Field(
        default="file:///data",
        validation_alias=AliasChoices("STORAGE_URL", "MCNET_STORAGE_URL"),
        description="file:///path (one host, shared volume) or s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, ...); unset: AWS."
    )
    queue_name: str = Field(default="mcnet", description="Name of the RQ queue.")
    result_ttl: int = Field(
        default=24 * 3600, ge=60, description="Seconds a finished job and its MP4 are kept."
    )
    failure_ttl: int = Field(
        default=24 * 3600, ge=60, description="Seconds a failed or canceled job is kept."
    )
    input_ttl: int = Field(
        default=24 * 3600,
        ge=60,
        description="Seconds uploaded inputs are kept (queued jobs included).",
    )
    template_ttl: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        description="Seconds a motion template (POST /templates) is kept after it is made.",
    )
    job_retries: int = Field(
        default=2, ge=0, le=10, description="Times a job is run again after its worker died."
    )
    job_timeout_base: float = Field(
        default=120.0, gt=0, description="Seconds every job may take besides its frames."
    )
    job_timeout_per_frame: float = Field(
        default=2.0, gt=0, description="Seconds each driving frame adds to a job's time limit."
    )
    worker_ttl: int = Field(
        default=60,
        ge=20,
        description="Seconds after its last heartbeat that a worker counts as gone.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs webhooks: `whsec_` + base64 of at least 16 random bytes. "
        "Unset: jobs cannot ask for webhooks.",
    )
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs webhooks may go to although private, loopback or "
        "link-local (e.g. 10.0.0.0/8); default: public addresses only.",
    )

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # ValueError when malformed
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _valid_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret_bytes(value.get_secret_value())  # ValueError when malformed
        return value

    def media_limits(self) -> MediaLimits:
        """The limits uploads are checked against (the fields of MediaLimits above)."""
        return MediaLimits.model_validate(self.model_dump(include=set(MediaLimits.model_fields)))


class ApiSettings(QueueSettings):
    """Settings of the HTTP API (`mcnet api`)."""

    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port the API listens on.")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("API_KEYS", "MCNET_API_KEYS"),
        description="Comma-separated bearer keys, each `name:key` (the name shows in logs "
        "and metrics and owns the key's jobs) or a bare key; empty: no authentication.",
    )
    rate_limit_per_minute: int | None = Field(
        default=None, gt=0, description="Requests each API key may make per minute; unset: any."
    )
    max_concurrent_jobs: int | None = Field(
        default=None, gt=0, description="Jobs each API key may have queued or running at once."
    )
    result_redirect: bool = Field(
        default=False,
        description="With s3:// storage, GET /jobs/{id}/result answers 307 to a presigned "
        "URL of the store, so the MP4's bytes do not pass through the API (file://: streamed).",
    )
    result_url_ttl: int = Field(
        default=900, ge=10, le=7 * 24 * 3600, description="Seconds a presigned result URL works."
    )
    events_interval: float = Field(
        default=0.5, gt=0, description="Seconds between reads of watched jobs (progress events)."
    )
    max_image_bytes: int = Field(default=32 * 2**20, gt=0, description="Largest source upload.")
    max_video_bytes: int = Field(default=512 * 2**20, gt=0, description="Largest driving upload.")
    spool_dir: Path | None = Field(
        default=None, description="Where uploads wait while they are checked (default: temp)."
    )
    metrics_public: bool = Field(
        default=False, description="With API keys on: /metrics answers without a key."
    )
    internal_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a second listener on MCNET_HOST that serves only /metrics, "
        "without a key, for Prometheus on an internal network (never publish it); 0: off.",
    )
    docs_public: bool = Field(
        default=False,
        description="With API keys on: /docs, /redoc and /openapi.json answer without a key.",
    )
    max_queued_jobs: int = Field(
        default=1000, ge=0, description="Jobs waiting in the queue; more answer 429. 0: no cap."
    )
    template_storage_per_key: int = Field(
        default=256 * 2**20,
        ge=0,
        description="Bytes of motion templates one API key may keep; POST /templates beyond "
        "answers 429. 0: no cap.",
    )
    max_frames_per_key: int = Field(
        default=0,
        ge=0,
        description="Driving frames one API key may submit per hour; more answer 429. 0: no cap.",
    )
    long_job_warning: float = Field(
        default=600,
        ge=0,
        description="Seconds: a new job estimated to take longer (from the live workers' "
        "measured speed and the jobs ahead) is accepted with a warning. 0: never warn.",
    )
    max_concurrent_uploads: int = Field(
        default=64, gt=0, description="Uploads received at once; more answer 503 + Retry-After."
    )
    max_uploads_per_client: int = Field(
        default=16,
        gt=0,
        description="Uploads one client (its API key, or its address without keys) may send "
        "at once, so one client cannot hold every upload slot; more answer 503.",
    )
    max_concurrent_probes: int = Field(
        default=2, gt=0, description="Uploads whose pictures are checked at once (memory)."
    )
    upload_idle_timeout: float = Field(
        default=30.0, gt=0, description="Seconds an upload may send nothing before it is dropped."
    )
    upload_min_rate: int = Field(
        default=16 * 1024,
        ge=0,
        description="Bytes per second an upload must average once it has run for "
        "upload_idle_timeout seconds; slower ones are dropped (408).",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("api_keys")
    @classmethod
    def _valid_keys(cls, value: list[str]) -> list[str]:
        parse_api_keys(value)  # ValueError (one line at start) when malformed
        return value


class ModelSettings(BaseSettings):
    """The model a process loads (`mcnet worker`, `mcnet animate`): weights, device, precision."""

    model_config = _CONFIG

    checkpoint: Path | None = Field(
        default=None,
        description="MCNet checkpoint (.pth.tar of the official code, or safetensors).",
    )
    checkpoint_host_path: str | None = Field(
        default=None,
        description="Where the checkpoint mounted at MCNET_CHECKPOINT is on the Docker host "
        "(docker-compose.yml sets it from .env's MCNET_CHECKPOINT); named in messages only.",
    )
    demo_weights: bool = Field(
        default=False,
        description="Use deterministic untrained weights (no checkpoint: demos, tests).",
    )
    net_config: Literal["vox256", "tiny"] = Field(
        default="vox256",
        validation_alias=AliasChoices("MCNET_MODEL_CONFIG", "MCNET_NET_CONFIG"),
        description="vox256: the published model; tiny: few channels (tests only).",
    )
    device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto: cuda when available, else cpu; or cuda, cuda:N, cpu.",
    )
    precision: Precision = Field(
        default="fp32",
        description="fp32: exact; bf16: CPUs with AVX-512 BF16 or AMX, and CUDA GPUs that "
        "support it; fp16: CUDA only. Refused at start where the device cannot run it.",
    )
    batch_size: int | None = Field(default=None, gt=0, description="Frames per model batch.")
    compile: bool = Field(
        default=False,
        description="torch.compile the generator (the first batch compiles; falls back to "
        "eager where compiling fails).",
    )


class WorkerSettings(QueueSettings, ModelSettings, EncodeSettings):
    """Settings of one GPU worker (`mcnet worker`), encoding of results included."""

    model_config = _CONFIG

    metrics_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="Port of this worker's /metrics; 0: off. With several workers (`workers`) "
        "the n-th (from 0) uses this port + n.",
    )
    workers: str | None = Field(
        default=None,
        pattern=r"^(auto|[1-9][0-9]*)$",
        description="Worker processes on this host (`mcnet serve`, `mcnet workers`): a number, "
        "or auto (unset): one per GPU on CUDA; on a CPU one single-thread worker per physical "
        "core, as many as memory holds (each loads its own model).",
    )
    worker_threads: int | None = Field(
        default=None,
        gt=0,
        description="CPU threads of each worker process's model (torch); unset: the host's "
        "physical cores shared out among the workers.",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address of this worker's /metrics.")
    worker_name: str | None = Field(default=None, description="RQ worker name (default: random).")
    heartbeat_interval: float = Field(
        default=5.0, gt=0, description="Seconds between heartbeats while a job runs."
    )
    lease_ttl: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a job's lease lasts without a renewal (heartbeat); once it has "
        "lapsed another worker recovers the job. At least twice the heartbeat interval.",
    )
    recovery_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between each worker's checks for jobs whose lease lapsed (a dead "
        "worker is noticed within lease_ttl + recovery_interval).",
    )
    redis_patience: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a running job waits for Redis to come back to record its "
        "progress or outcome; a finished render is kept that long.",
    )
    shutdown_grace: float = Field(
        default=20.0,
        ge=0,
        description="On SIGTERM, seconds the current job may still run; then it stops "
        "between batches and goes back to the front of the queue.",
    )
    maintenance_interval: int = Field(
        default=60, ge=1, description="Seconds between registry cleanups and storage expiry."
    )
    work_dir: Path | None = Field(
        default=None, description="Where a job's files are kept while it runs (default: temp)."
    )
    health_file: Path | None = Field(
        default=None,
        description="A file touched after each heartbeat sent to Redis, once the model is "
        "loaded (a container healthcheck reads its age); unset: none.",
    )

    webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per webhook message before it is given up."
    )
    webhook_backoff: float = Field(
        default=1.0, gt=0, description="Seconds before the first retry of a webhook (doubling)."
    )
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a webhook receiver has to answer."
    )
    webhook_progress_interval: float = Field(
        default=2.0, gt=0, description="Least seconds between two progress webhooks of a job."
    )

    def encode_settings(self) -> EncodeSettings:
        """How this worker encodes results (the fields of EncodeSettings above)."""
        return EncodeSettings.model_validate(
            self.model_dump(include=set(EncodeSettings.model_fields))
        )

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> WorkerSettings:
        if self.lease_ttl < 2 * self.heartbeat_interval:
            raise ValueError(
                f"lease_ttl ({self.lease_ttl} s) must be at least twice the heartbeat interval "
                f"({self.heartbeat_interval} s)"
            )
        return self


class LogSettings(BaseSettings):
    """How every `mcnet` command logs."""

    model_config = _CONFIG

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least level of the lines logged."
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: lines for people; json: one JSON object per line (time, level, "
        "logger, message and, where known, job id, key name, stage and request id).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ServeSettings(BaseSettings):
    """What only `mcnet serve` (everything on one machine) reads."""

    model_config = _CONFIG

    embedded_redis_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the Redis `mcnet serve` starts on 127.0.0.1 when REDIS_URL is "
        "unset; 0: a free port.",
    )


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def settings_from_env(cls: type[SettingsT], options: Mapping[str, Any] | None = None) -> SettingsT:
    """`cls` from the environment, with the command line's `options` (field name -> value;
    None: not given) over it. The one way every entry point layers its options.

    A wrong value exits (status 2) with one line, no traceback, naming each wrong variable
    or option, its value and what it accepts, for example `mcnet: invalid setting:
    MCNET_BATCH_SIZE='abc': Input should be a valid integer, ... (Frames per model batch.)`.
    """
    given = {name: value for name, value in (options or {}).items() if value is not None}
    try:
        # Keyed as the environment source keys them (a field's first alias, such as
        # REDIS_URL), so that the command line's value replaces the variable's rather than
        # standing beside it (older pydantic-settings then validate the alias's value).
        return cls(**{_init_key(cls, name): value for name, value in given.items()})
    except ValidationError as exc:
        problems = "; ".join(_describe_error(cls, error, given) for error in exc.errors())
        sys.stderr.write(f"mcnet: invalid setting: {problems}\n")
        raise SystemExit(2) from None


def _init_key(cls: type[BaseSettings], name: str) -> str:
    """The key under which `name`'s value is passed to `cls`: its first alias, if any."""
    field = cls.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return alias if isinstance(alias, str) else name


def _describe_error(
    cls: type[BaseSettings], error: ErrorDetails, given: Mapping[str, Any] | None = None
) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    if given:  # an alias the command line's value was passed under names its option
        name = next((option for option in given if _init_key(cls, option) == name), name)
    if given and name in given:  # a command-line option, not a variable
        field = cls.model_fields.get(name)
        hint = f" ({field.description})" if field is not None and field.description else ""
        return f"--{name.replace('_', '-')}={error['input']!r}: {error['msg']}{hint}"
    field = cls.model_fields.get(name)
    if field is None:  # the error names the alias, which is the variable itself
        field = next(
            (
                f
                for f in cls.model_fields.values()
                if isinstance(f.validation_alias, AliasChoices)
                and name in f.validation_alias.choices
            ),
            None,
        )
        variable = name
    else:
        variable = f"{cls.model_config.get('env_prefix', '')}{name}".upper()
    hint = f" ({field.description})" if field is not None and field.description else ""
    value = "<hidden>" if variable in _SECRET_VARIABLES else repr(error["input"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{variable}={value}: {message}{hint}"


_SECRET_VARIABLES = frozenset({"API_KEYS", "MCNET_API_KEYS", "MCNET_WEBHOOK_SECRET"})
