"""The motion template file: written and read back, and refused in one line when damaged."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.template_format import (
    AudioTrack,
    Framing,
    MotionTemplate,
    TemplateError,
    TemplateHeader,
    check_compatible,
    is_template,
    read_template,
    template_from_bytes,
    write_template,
)


def _template(
    frames: int = 6, num_kp: int = 15, audio: bytes | None = b"\x00sound"
) -> MotionTemplate:
    rng = np.random.default_rng(3)
    header = TemplateHeader(
        frames=frames,
        num_kp=num_kp,
        fps=(30000, 1001),
        start=0.0,
        framing=Framing(crop="auto", box=(10, 20, 100), width=192, height=144),
        model="mcnet.safetensors sha256:0123456789ab",
        audio=None if audio is None else AudioTrack(codec="aac", container="mp4"),
    )
    return MotionTemplate(
        header=header,
        keypoints=rng.uniform(-1, 1, (frames, num_kp, 2)).astype(np.float32),
        jacobians=rng.normal(size=(frames, num_kp, 2, 2)).astype(np.float32),
        timestamps=np.arange(frames) * 1001 / 30000,
        audio=audio,
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    original = _template()
    path = tmp_path / "m.mcnet"
    size = write_template(path, original)
    assert size == path.stat().st_size and is_template(path)
    loaded = read_template(path)
    assert loaded.header == original.header
    assert loaded.keypoints.dtype == np.float32
    assert np.array_equal(loaded.keypoints, original.keypoints)
    assert loaded.jacobians is not None and original.jacobians is not None
    assert np.array_equal(loaded.jacobians, original.jacobians)
    assert np.array_equal(loaded.timestamps, original.timestamps)
    assert loaded.audio == b"\x00sound"
    assert np.array_equal(loaded.reference_keypoints, original.keypoints[0])
    assert template_from_bytes(path.read_bytes()).header == original.header
    assert [p.name for p in tmp_path.iterdir()] == ["m.mcnet"]  # no temporary left


def test_without_sound_or_jacobians(tmp_path: Path) -> None:
    original = _template(audio=None)
    original = MotionTemplate(original.header, original.keypoints, None, original.timestamps)
    write_template(tmp_path / "m.mcnet", original)
    loaded = read_template(tmp_path / "m.mcnet")
    assert loaded.audio is None and loaded.jacobians is None and loaded.reference_jacobians is None


def _one_line(error: pytest.ExceptionInfo[TemplateError]) -> str:
    message = str(error.value)
    assert "\n" not in message and error.value.status == 415
    return message


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _rezip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.mcnet"
    write_template(path, _template())
    members = _members(path)
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    header["version"] = 2
    members["header.npy"] = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
    _rezip(path, members)
    with pytest.raises(TemplateError) as error:
        read_template(path)
    assert "version 2" in _one_line(error) and "reads version 1" in str(error.value)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not a zip", "no keypoints"])
def test_a_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "m.mcnet"
    write_template(path, _template(frames=200))
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped byte":
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("keypoints.npy")
        # the member's compressed data: after its 30-byte local header, name and extra field
        name_length = int.from_bytes(
            data[info.header_offset + 26 : info.header_offset + 28], "little"
        )
        extra_length = int.from_bytes(
            data[info.header_offset + 28 : info.header_offset + 30], "little"
        )
        begins = info.header_offset + 30 + name_length + extra_length
        data[begins + info.compress_size // 2] ^= 0x55
        path.write_bytes(data)
    elif damage == "not a zip":
        path.write_bytes(b"\x00" * 64)
    else:
        members = _members(path)
        del members["keypoints.npy"]
        _rezip(path, members)
    with pytest.raises(TemplateError) as error:
        read_template(path)
    assert "not a readable MCNet motion template" in _one_line(error)


def test_inconsistent_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.mcnet"
    write_template(path, _template())
    members = _members(path)
    members["timestamps.npy"] = _npy(np.zeros(3))
    _rezip(path, members)
    with pytest.raises(TemplateError, match="3 timestamps for 6 frames"):
        read_template(path)


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "m.mcnet"
    write_template(path, _template())
    members = _members(path)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    members["keypoints.npy"] = buffer.getvalue()
    _rezip(path, members)
    with pytest.raises(TemplateError, match="not a readable"):
        read_template(path)


def test_another_model_or_keypoint_count_is_refused() -> None:
    template = _template()
    check_compatible(template, "mcnet.safetensors sha256:0123456789ab", 15)
    check_compatible(template, None, 15)
    with pytest.raises(TemplateError, match="holds 15 keypoints"):
        check_compatible(template, None, 10)
    with pytest.raises(TemplateError, match="measured by the model mcnet.safetensors"):
        check_compatible(template, "demo", 15)


def test_a_file_unpacking_past_the_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.template_format

    path = tmp_path / "m.mcnet"
    write_template(path, _template())
    monkeypatch.setattr(core.template_format, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(TemplateError, match="unpacked, over 1000"):
        read_template(path)
