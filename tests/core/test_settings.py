"""Settings from the environment: names, values, refusals."""

from __future__ import annotations

from typing import get_args

import pytest

from core.protocol import PRECISIONS
from core.settings import ApiSettings, WorkerSettings, settings_from_env


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/2")
    monkeypatch.setenv("STORAGE_URL", "s3://b/p")
    monkeypatch.setenv("API_KEYS", " a, b ,,c ")
    monkeypatch.setenv("MCNET_MAX_VIDEO_FRAMES", "123")
    monkeypatch.setenv("MCNET_CHECKPOINT", "/m/x.pth.tar")
    monkeypatch.setenv("MCNET_DEVICE", "cuda")
    monkeypatch.setenv("MCNET_PRECISION", "fp16")
    monkeypatch.setenv("MCNET_BATCH_SIZE", "16")
    monkeypatch.setenv("MCNET_MODEL_CONFIG", "tiny")
    monkeypatch.setenv("MCNET_COMPILE", "1")
    monkeypatch.setenv("MCNET_ENCODE_PRESET", "veryfast")
    monkeypatch.setenv("MCNET_ENCODE_CRF", "20")
    api = ApiSettings()
    assert api.redis_url == "redis://r:6379/2" and api.storage_url == "s3://b/p"
    assert api.api_keys == ["a", "b", "c"]
    assert api.media_limits().max_video_frames == 123
    worker = WorkerSettings()
    assert str(worker.checkpoint) == "/m/x.pth.tar"
    assert (worker.device, worker.precision, worker.batch_size) == ("cuda", "fp16", 16)
    assert worker.net_config == "tiny"
    assert worker.compile and (worker.encode_preset, worker.encode_crf) == ("veryfast", 20)
    for name, value in (("MCNET_PRECISION", "fp8"), ("MCNET_ENCODE_PRESET", "quick")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError):
            WorkerSettings()
        monkeypatch.delenv(name)


def test_command_line_values_lie_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MCNET_BATCH_SIZE", "4")
    monkeypatch.setenv("REDIS_URL", "redis://env:6379/0")
    monkeypatch.setenv("MCNET_DEMO_WEIGHTS", "false")
    settings = settings_from_env(
        WorkerSettings, {"batch_size": 8, "precision": None, "workers": "auto"}
    )
    assert (settings.batch_size, settings.precision, settings.workers) == (8, "fp32", "auto")
    assert settings.redis_url == "redis://env:6379/0" and settings.demo_weights is False
    assert settings_from_env(ApiSettings, {"redis_url": "redis://cli:1/0"}).redis_url == (
        "redis://cli:1/0"
    )
    with pytest.raises(SystemExit) as stop:
        settings_from_env(WorkerSettings, {"batch_size": 0})
    assert stop.value.code == 2
    line = capsys.readouterr().err
    assert line.startswith("mcnet: invalid setting: --batch-size=0: ") and "MCNET_" not in line
    monkeypatch.setenv("MCNET_WORKERS", "many")
    with pytest.raises(SystemExit):
        settings_from_env(WorkerSettings)
    assert "MCNET_WORKERS='many'" in capsys.readouterr().err


def test_precisions_are_declared_once() -> None:
    assert get_args(WorkerSettings.model_fields["precision"].annotation) == PRECISIONS
    assert PRECISIONS == ("fp32", "bf16", "fp16")
