"""Settings of the media pipeline, in one frozen object the task receives whole."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.media_probe import MediaLimits
from worker.media.encode import EncodeSettings


@dataclass(frozen=True)
class MediaSettings:
    """Limits, output quality and working sizes of one animation job."""

    limits: MediaLimits = field(default_factory=MediaLimits)
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    max_output_side: int = 1920  # longer side of a pasted-back result (and of the photo we read)
    driving_max_side: int = 1920  # driving frames are downscaled to this before cropping
    detect_samples: int = 32  # driving frames sampled through the clip to place its crop box
    side_by_side_max_height: int = 720  # panel height of layout=side_by_side with paste-back
