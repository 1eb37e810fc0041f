"""The motion template file: a driving video's motion, without its pixels.

MCNet's generator never looks at the driving frames: it takes the source image, the
source keypoints and the driving keypoints. A driving video's whole contribution to a job
is, per frame, its keypoints (`K x 2`) and jacobians (`K x 2 x 2`), plus its frame rate,
its timing and its sound. A template holds exactly that, so any number of photos can be
animated with it without keeping, decoding, cropping or detecting the video again.

The file is a compressed `.npz` (a zip of `.npy` arrays, written and read with
`allow_pickle=False`, each member checked by its CRC-32 on reading):

- `header`: UTF-8 JSON as uint8 (`TemplateHeader`: format name, version, frame count, rate,
  first frame's time, the crop's framing, the model that measured the keypoints, the sound)
- `keypoints`: `N x K x 2` float32, (x, y) in [-1, 1] in the 256x256 crop
- `jacobians`: `N x K x 2 x 2` float32 (absent for a model without jacobians)
- `reference_keypoints`, `reference_jacobians`: the reference frame's (frame
  `header.reference_frame`, the first) for relative motion
- `timestamps`: `N` float64, each frame's presentation time in seconds (NaN: unknown)
- `audio`: the driving video's first sound track, its packets copied into a container of
  its own (`header.audio`), not re-encoded; absent when the video has no sound

best_frame=auto and best_frame=N need nothing more: every frame's keypoints are there to be
compared with a photo's pose, or taken as the reference. A reader refuses a file of another
format version or a damaged one with one line (`TemplateError`).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidInputError
from core.files import replaced_atomically
from core.options import Crop

FORMAT = "mcnet-motion-template"
VERSION = 1
SUFFIX = ".mcnet"
_ZIP_MAGIC = b"PK\x03\x04"
# A template of the longest clip a job takes is a few MB (mostly its sound): a bound on
# what a (damaged or hostile) file may unpack to.
MAX_UNPACKED_BYTES = 512 * 2**20
_REQUIRED = ("header", "keypoints", "reference_keypoints", "timestamps")
# A template keeps no driving pixels: the refusal of the one layout that shows them (the
# API's at submit, the worker's for an offline job).
SIDE_BY_SIDE_NEEDS_VIDEO = (
    "Invalid options: layout=side_by_side shows the driving video's frames, and a motion "
    "template keeps none of them; use layout=result, or send the video as driving."
)


class TemplateError(InvalidInputError):
    """A motion template that cannot be used: damaged, of another version, or of another model."""


class AudioTrack(BaseModel):
    """The sound's facts: its codec and the container its copied packets are kept in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codec: str  # as FFmpeg names it: aac, mp3, opus, ...
    container: str  # the FFmpeg muxer the packets were copied into: mp4 or matroska


class Framing(BaseModel):
    """How the 256x256 crops the keypoints were measured on were cut from the video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    crop: Crop  # auto: the clip's one face box; none: the frame resized
    box: tuple[int, int, int] | None = None  # (x, y, side) in the frames below (crop=auto)
    width: int = Field(gt=0)  # the upright (capped) decoded frames' size
    height: int = Field(gt=0)
    warnings: tuple[str, ...] = ()  # what a job's result should tell about the framing


class TemplateHeader(BaseModel):
    """The JSON header of a template file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    version: int = VERSION
    frames: int = Field(gt=0)
    num_kp: int = Field(gt=0)
    fps: tuple[int, int]  # average rate as a fraction (numerator, denominator)
    start: float  # the first frame's presentation time (s): the sound is aligned to it
    reference_frame: int = 0
    framing: Framing
    model: str | None = None  # the checkpoint that measured the keypoints (describe_model)
    precision: str = "fp32"
    audio: AudioTrack | None = None

    @property
    def rate(self) -> Fraction:
        return Fraction(*self.fps)


@dataclass(frozen=True)
class MotionTemplate:
    """A template in memory: the header and the arrays (see the module's docstring)."""

    header: TemplateHeader
    keypoints: np.ndarray  # N x K x 2 float32
    jacobians: np.ndarray | None  # N x K x 2 x 2 float32
    timestamps: np.ndarray  # N float64
    audio: bytes | None = None

    @property
    def frames(self) -> int:
        return self.header.frames

    @property
    def reference_keypoints(self) -> np.ndarray:
        return self.keypoints[self.header.reference_frame]

    @property
    def reference_jacobians(self) -> np.ndarray | None:
        if self.jacobians is None:
            return None
        return self.jacobians[self.header.reference_frame]


def write_template(path: str | os.PathLike[str], template: MotionTemplate) -> int:
    """Write `template` to `path` (under a temporary name, then renamed); returns its size."""
    _check(template)
    arrays: dict[str, np.ndarray] = {
        "header": np.frombuffer(template.header.model_dump_json().encode(), dtype=np.uint8),
        "keypoints": np.ascontiguousarray(template.keypoints, dtype=np.float32),
        "reference_keypoints": np.ascontiguousarray(template.reference_keypoints, np.float32),
        "timestamps": np.ascontiguousarray(template.timestamps, dtype=np.float64),
    }
    if template.jacobians is not None:
        arrays["jacobians"] = np.ascontiguousarray(template.jacobians, dtype=np.float32)
        arrays["reference_jacobians"] = np.ascontiguousarray(
            template.reference_jacobians, dtype=np.float32
        )
    if template.audio is not None:
        arrays["audio"] = np.frombuffer(template.audio, dtype=np.uint8)
    with replaced_atomically(path) as temp, temp.open("wb") as file:
        np.savez_compressed(file, allow_pickle=False, **arrays)
    return Path(path).stat().st_size


def is_template(path: str | os.PathLike[str]) -> bool:
    """Whether the file at `path` is a template rather than a video (a zip; no video is)."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == _ZIP_MAGIC
    except OSError:
        return False


def read_template(path: str | os.PathLike[str]) -> MotionTemplate:
    """Read and check a template file. Raises TemplateError (one line) if it is damaged, not
    a template, or of another format version."""
    name = Path(path).name
    try:
        with open(path, "rb") as file:
            return _read(name, file)
    except FileNotFoundError:
        raise TemplateError(f"{name}: no such motion template file.") from None
    except OSError as exc:
        raise _damaged(name, _one_line(exc)) from None


def template_from_bytes(data: bytes, name: str = "template") -> MotionTemplate:
    """`read_template` of a file's bytes."""
    return _read(name, io.BytesIO(data))


def _read(name: str, file: BinaryIO) -> MotionTemplate:
    try:
        with zipfile.ZipFile(file) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ValueError(f"{unpacked} bytes unpacked, over {MAX_UNPACKED_BYTES}")
        file.seek(0)
        with np.load(file, allow_pickle=False) as npz:
            members = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise _damaged(name, _one_line(exc)) from None
    return _from_members(name, members)


def _from_members(name: str, members: dict[str, np.ndarray]) -> MotionTemplate:
    missing = [key for key in _REQUIRED if key not in members]
    if missing:
        raise _damaged(name, f"no {missing[0]}")
    try:
        raw = json.loads(members["header"].astype(np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(name, f"unreadable header ({_one_line(exc)})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _damaged(name, "not an MCNet motion template")
    if raw.get("version") != VERSION:
        raise TemplateError(
            f"{name} is a motion template of format version {raw.get('version')!r}; this "
            f"MCNet reads version {VERSION}: extract it again from its video."
        )
    try:
        header = TemplateHeader.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise _damaged(name, f"header field {where}: {first['msg']}") from None
    audio = members.get("audio")
    template = MotionTemplate(
        header=header,
        keypoints=members["keypoints"],
        jacobians=members.get("jacobians"),
        timestamps=members["timestamps"],
        audio=None if audio is None else audio.astype(np.uint8).tobytes(),
    )
    try:
        _check(template)
        reference = members["reference_keypoints"]
        if not np.array_equal(reference, template.reference_keypoints):
            raise ValueError("the reference keypoints differ from the reference frame's")
        reference_jacobians = members.get("reference_jacobians")
        if template.jacobians is not None and (
            reference_jacobians is None
            or not np.array_equal(reference_jacobians, template.jacobians[header.reference_frame])
        ):
            raise ValueError("the reference jacobians differ from the reference frame's")
    except ValueError as exc:
        raise _damaged(name, str(exc)) from None
    return template


def check_compatible(template: MotionTemplate, model: str | None, num_kp: int) -> None:
    """Raise TemplateError if the template's keypoints cannot drive this model: another
    number of keypoints, or (both known) keypoints measured by another checkpoint."""
    header = template.header
    if header.num_kp != num_kp:
        raise TemplateError(
            f"This motion template holds {header.num_kp} keypoints per frame; the model here "
            f"uses {num_kp}: extract the template again with this model."
        )
    if model is not None and header.model is not None and header.model != model:
        raise TemplateError(
            f"This motion template was measured by the model {header.model}; the model here "
            f"is {model}: extract the template again with this model."
        )


def _check(template: MotionTemplate) -> None:
    """The arrays agree with the header and hold finite fp32 numbers. Raises ValueError."""
    header = template.header
    n, k = header.frames, header.num_kp
    if template.keypoints.dtype != np.float32 or template.keypoints.shape != (n, k, 2):
        raise ValueError(f"keypoints are {template.keypoints.shape}, not {n} x {k} x 2 fp32")
    jac = template.jacobians
    if jac is not None and (jac.dtype != np.float32 or jac.shape != (n, k, 2, 2)):
        raise ValueError(f"jacobians are {jac.shape}, not {n} x {k} x 2 x 2 fp32")
    if template.timestamps.shape != (n,):
        raise ValueError(f"{template.timestamps.shape[0]} timestamps for {n} frames")
    if not np.isfinite(template.keypoints).all() or (
        jac is not None and not np.isfinite(jac).all()
    ):
        raise ValueError("keypoints that are not finite numbers")
    if not 0 <= header.reference_frame < n:
        raise ValueError(f"reference frame {header.reference_frame} of {n}")
    if header.fps[0] <= 0 or header.fps[1] <= 0 or not math.isfinite(header.start):
        raise ValueError(f"frame rate {header.fps[0]}/{header.fps[1]}")
    if (header.audio is None) != (template.audio is None):
        raise ValueError("the sound's header and data disagree")


def _damaged(name: str, reason: str) -> TemplateError:
    return TemplateError(
        f"{name} is not a readable MCNet motion template ({reason}); extract it again from "
        "its video with `mcnet template extract`."
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
