"""Encryption at rest for integration credentials: MultiFernet over the keys in FERNET_KEYS."""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    keys = settings.FERNET_KEYS
    if not keys:
        raise ImproperlyConfigured("FERNET_KEYS must hold at least one key")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as e:
        raise ImproperlyConfigured(f"FERNET_KEYS holds a malformed key: {e}") from e


def _reset(*, setting, **kwargs):
    if setting == "FERNET_KEYS":
        _fernet.cache_clear()


setting_changed.connect(_reset)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as e:
        raise ImproperlyConfigured("a credential cannot be decrypted with any key in FERNET_KEYS") from e


def rotate(token: str) -> str:
    """Re-encrypt with the newest key (the first in FERNET_KEYS)."""
    return _fernet().rotate(token.encode()).decode()


def is_current(token: str) -> bool:
    """Whether a token was encrypted with the newest key (so older keys may be dropped)."""
    if not token:
        return True
    try:
        Fernet(settings.FERNET_KEYS[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


class EncryptedJSONField(models.TextField):
    """A dict stored as a Fernet token; the column never holds clear text."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if value in (None, ""):
            return {}
        return json.loads(decrypt(value))

    def get_prep_value(self, value):
        if value in (None, "", {}):
            return ""
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        # Serialisation (dumpdata) must not leak secrets either.
        return ""
