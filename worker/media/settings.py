"""Settings of the media pipeline, in one frozen object the task receives whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.encoding import EncodeSettings
from core.media_probe import MAX_WORKING_SIDE, MediaLimits


@dataclass(frozen=True)
class MediaSettings:
    """Limits, output quality and working sizes of one animation job."""

    limits: MediaLimits = field(default_factory=MediaLimits)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    driving_max_side: int = (
        MAX_WORKING_SIDE  # driving frames are downscaled to this before cropping
    )
    detect_samples: int = 32  # driving frames sampled through the clip to place its crop box
    side_by_side_max_height: int = 720  # panel height of layout=side_by_side with paste-back

    @property
    def max_output_side(self) -> int:
        """Longer side of a pasted-back result and of the photo as read (MCNET_MAX_OUTPUT_SIDE)."""
        return self.limits.max_output_side
