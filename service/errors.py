"""Domain exceptions, shared by model, worker and service.

The worker raises them; the API maps each class to an HTTP status with a message a
user can act on. Every message is written for the person who sent the input.
"""


class MCNetError(Exception):
    """Base of every error this project raises on purpose."""


class CheckpointError(MCNetError):
    """A checkpoint file is missing, damaged, unsafe or of another model."""


class InvalidInputError(MCNetError):
    """An uploaded file cannot be used (not an image/video, corrupted, empty)."""


class UnsupportedMediaError(InvalidInputError):
    """The file is of a kind we do not read."""


class InputTooLargeError(InvalidInputError):
    """The file, its pixel count or its duration is over a configured limit."""


class NoFaceError(InvalidInputError):
    """No face was found in the named input ("source" or "driving")."""

    def __init__(self, which: str) -> None:
        self.which = which
        what = "photo" if which == "source" else "driving video"
        super().__init__(
            f"No face was found in the {what} ({which}). Use a picture where one face is "
            "clearly visible, or send crop=none if the input is already an aligned 256x256 crop."
        )


class InvalidOptionsError(MCNetError):
    """Job options are out of range or inconsistent."""


class JobCanceledError(MCNetError):
    """The job was canceled by its owner while it ran."""
