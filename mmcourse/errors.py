"""The course's exceptions: each message says what went wrong and what to do."""


class MMCourseError(RuntimeError):
    """Base class for errors raised by mmcourse itself."""


class WeightsUnavailableError(MMCourseError):
    """Hub weights are not cached and the hub cannot be reached."""
