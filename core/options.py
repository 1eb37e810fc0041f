"""Options of one animation job: validated once, passed whole to the task.

Torch-free: the API validates form fields into this model, the worker and the CLI
read it back. Every field is documented, so OpenAPI shows each option.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import InvalidOptionsError

BestFrame = Literal["none", "auto"] | int
# How the face is framed: found and cropped (auto), or the inputs are aligned crops (none).
Crop = Literal["auto", "none"]
CROPS: tuple[str, ...] = get_args(Crop)


class JobOptions(BaseModel):
    """How to animate: the option fields of `POST /animate` and of `mcnet animate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    motion: Literal["relative", "absolute"] = Field(
        "relative",
        description="relative: the source moves by the driving video's motion since its "
        "reference frame (keeps the photo's face shape); absolute: the source takes the "
        "driving keypoints as they are.",
    )
    adapt_scale: bool = Field(
        True,
        description="Scale relative motion by the ratio of the face sizes (convex hulls of "
        "keypoints) of source and driving reference frame.",
    )
    best_frame: BestFrame = Field(
        "none",
        description="Reference frame of relative motion: none (the first frame), auto (the "
        "driving frame whose pose is nearest the photo's) or a frame index.",
    )
    crop: Crop = Field(
        "auto",
        description="auto: find the face in both inputs and crop it as the model was trained; "
        "none: the inputs are already aligned face crops and are only resized to 256x256.",
    )
    paste_back: bool | None = Field(
        None,
        description="Paste the animated face back into the full photo (default: true with "
        "crop=auto; not possible with crop=none).",
    )
    layout: Literal["result", "side_by_side"] = Field(
        "result",
        description="result: the animated video alone; side_by_side: source | driving | "
        "result, as the official demo writes.",
    )
    audio: bool = Field(True, description="Copy the driving video's sound into the result.")
    seed: int = Field(
        0,
        ge=0,
        le=2**63 - 1,
        description="Seed of the memory bank's noise: the same inputs and seed give the "
        "same pixels.",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_paste_back(cls, data: object) -> object:
        """An unset paste_back takes its default (on exactly when cropping), so the options a
        job echoes are the ones it runs with."""
        if isinstance(data, dict) and data.get("paste_back") is None:
            return {**data, "paste_back": data.get("crop", "auto") == "auto"}
        return data

    @field_validator("best_frame", mode="before")
    @classmethod
    def _parse_best_frame(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return value

    @field_validator("best_frame")
    @classmethod
    def _non_negative_frame(cls, value: BestFrame) -> BestFrame:
        if isinstance(value, int) and value < 0:
            raise ValueError("best_frame must be none, auto or a frame index >= 0")
        return value

    @model_validator(mode="after")
    def _paste_back_needs_crop(self) -> JobOptions:
        if self.paste_back and self.crop == "none":
            raise ValueError(
                "paste_back needs crop=auto: with crop=none there is no photo to paste into"
            )
        return self

    def check_best_frame(self, frames: int) -> None:
        """A frame index for best_frame must exist in a driving video of `frames` frames."""
        if isinstance(self.best_frame, int) and self.best_frame >= frames:
            raise InvalidOptionsError(
                f"Invalid options: best_frame {self.best_frame} is past the driving video's "
                f"last frame: it has only {frames} frames, numbered from 0."
            )

    @property
    def effective_paste_back(self) -> bool:
        """Paste-back as it applies: the explicit value, else on exactly when cropping."""
        if self.paste_back is None:
            return self.crop == "auto"
        return self.paste_back
