"""Domain errors raised by services; their messages are constants that tests and screens reuse."""


class ServiceError(Exception):
    """An action refused because of the state or the input; nothing was changed."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class Conflict(ServiceError):
    code = "conflict"


REASON_REQUIRED = "A reason is required to pause syncs."
UNTIL_IN_PAST = "The pause must end in the future."
NOT_OAUTH = "This provider uses an API key: update the key instead of refreshing a token."
NO_REFRESH_TOKEN = "No refresh token is stored: the integration must be re-authorized."
