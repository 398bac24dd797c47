"""Issue 13: redaction misses no api_token, auth_token, oauth_token, secret_key, hapikey, url-encoded or nested."""

import json

import pytest

from integrations.access.redaction import REDACTED, redact_text

SECRET = "s3cr3t-VALUE-1234567"


@pytest.mark.parametrize(
    "key", ["api_token", "auth_token", "oauth_token", "secret_key", "hapikey", "apiToken"]
)
def test_named_secrets_are_masked_in_json_forms_and_queries(key):
    for text in (
        json.dumps({key: SECRET}),
        f"{key}={SECRET}&page=2",
        f"https://api.example/v1?{key}={SECRET}",
        json.dumps({"outer": {"inner": {key: SECRET}}}),
    ):
        out = redact_text(text)
        assert SECRET not in out and REDACTED in out, text


def test_url_encoded_and_json_in_json_values_are_masked():
    encoded = f"redirect=https%3A%2F%2Fx.example%2Fcb%3Faccess_token%3D{SECRET}%26state%3D1"
    assert SECRET not in redact_text(encoded) and "state%3D1" in redact_text(encoded)
    encoded_key = f"q=a%26hapikey%3D{SECRET}"
    assert SECRET not in redact_text(encoded_key)
    nested = json.dumps({"body": json.dumps({"refresh_token": SECRET, "n": 1})})
    assert SECRET not in redact_text(nested)


def test_ordinary_fields_are_kept():
    text = json.dumps({"token_type": "bearer", "email": "a@b.c", "next": "abc"})
    assert redact_text(text) == text
