"""The errors a frontend turns into its protocol's error shape; each has a machine-readable ``code``."""


class SesameVoiceError(Exception):
    """Base class of the errors a frontend turns into its protocol's error shape."""

    code = "internal_error"


class InvalidRequest(SesameVoiceError):
    """The request is malformed or out of range."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        if code:
            self.code = code


class NotFound(InvalidRequest):
    """The request names something that does not exist (HTTP 404), e.g. an unknown conversation session."""

    code = "not_found"


class Conflict(InvalidRequest):
    """The request clashes with the current state (HTTP 409): something is busy or a limit is reached."""

    code = "conflict"


class UnknownVoice(InvalidRequest):
    """No voice of that name (or alias) exists."""

    code = "voice_not_found"


class ProviderUnavailable(SesameVoiceError):
    """A provider cannot serve now: missing weights, failed load, absent dependency."""

    code = "provider_unavailable"


class ProviderFailed(SesameVoiceError):
    """A provider raised while synthesising."""

    code = "provider_error"


class Overloaded(SesameVoiceError):
    """Too many requests are queued for a provider."""

    code = "overloaded"


class ShuttingDown(ProviderUnavailable):
    """The server is stopping: running requests finish, new ones are refused (HTTP 503)."""

    code = "shutting_down"
