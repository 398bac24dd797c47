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
NOT_API_KEY = "This provider uses OAuth: reconnect or re-authorize it instead of updating an API key."
API_KEY_REQUIRED = "An API key is required."
API_KEY_REJECTED = "The provider refused this API key; the stored key was kept."
API_KEY_UNTESTED = "The API key could not be tested (the provider did not answer); the stored key was kept."
OAUTH_STATE_INVALID = "This authorization link is invalid; nothing was changed. Start again from the integration's Re-authorize button."
OAUTH_STATE_EXPIRED = (
    "This authorization took more than 10 minutes and has expired; nothing was changed. Start again."
)
OAUTH_STATE_USED = (
    "This authorization was already used or was started in another session; nothing was changed. Start again."
)
OAUTH_DENIED = "The provider reported that access was not granted; nothing was changed."
OAUTH_CODE_REFUSED = "The provider refused the authorization code; nothing was changed. Start again."
OAUTH_OTHER_ACCOUNT = (
    "The grant is for another {provider} account ({granted}) than the one this integration is bound to "
    "({bound}); nothing was changed. Sign in to the tenant's own account and start again."
)

# Recovery actions (services/recovery.py).
UNKNOWN_PROVIDER = "Unknown provider '{provider}'."
MAX_RETRIES_RANGE = "Max retries must be between 1 and 100."
SINCE_IN_FUTURE = "The start time must be in the past."
WITHIN_POSITIVE = "The window must be longer than zero."
RESOLUTION_REQUIRED = "A resolution is required to clear defects."
UNKNOWN_DEFECT_TYPE = "Unknown defect type '{defect_type}'."
BAD_MODE = "The mode must be 'webhook' or 'polling'."
POLL_INTERVAL_RANGE = "The poll interval must be between 30 seconds and 24 hours."
POLL_INTERVAL_WEBHOOK = "A poll interval applies to polling mode only."
SAMPLE_SIZE_RANGE = "The sample size must be between 1 and 1000."
CLEAR_NEEDS_TARGET = "Name a provider or select the defects to clear."
SYNC_NOW_TOO_MANY = "Sync now takes at most {n} records at once; narrow the selection."

# Sync conflicts (services/conflicts.py).
CONFLICT_CHOICE = "Choose 'ours' (keep the local value) or 'theirs' (take the provider's)."
CONFLICT_NOT_OPEN = "No open sync conflict with this id."
