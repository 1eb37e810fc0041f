"""How results are encoded: H.264 (x264) quality and speed, declared once.

The worker's settings (`MCNET_ENCODE_CRF`, `MCNET_ENCODE_PRESET`) include these fields,
`mcnet animate` takes them as options, and `worker.media.encode` writes with them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# x264's speed/size trade-offs, fastest first
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class EncodeSettings(BaseModel):
    """H.264 quality and speed of the results."""

    model_config = ConfigDict(frozen=True)

    encode_crf: int = Field(
        default=18,
        ge=0,
        le=51,
        description="H.264 quality of the results: 0-51, lower is better (18: visually "
        "lossless, 23: x264's default).",
    )
    encode_preset: X264Preset = Field(
        default="medium",
        description="x264 preset of the results: faster ones keep up with a fast GPU, for "
        "larger files.",
    )
