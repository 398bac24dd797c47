"""Masking of secrets in text and mappings before anything is logged or stored in a sync-log excerpt."""

from __future__ import annotations

import re
from urllib.parse import unquote

REDACTED = "[REDACTED]"

# Compared after lower-casing and dropping "_" and "-", so access_token, accessToken and Access-Token all match.
_SENSITIVE_KEYS = frozenset(
    {
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "token",
        "apikey",
        "xapikey",
        "clientsecret",
        "secret",
        "password",
        "passwd",
        "code",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "signaturetoken",
        "webhooksecret",
        "privatekey",
        "sessionid",
    }
)


# Issue 13: any key ending in one of these names a secret too (api_token, auth_token, oauth_token, secret_key,
# hapikey, client_secret, db_password, ...).
_SENSITIVE_SUFFIXES = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "secretkey",
    "privatekey",
    "sessionid",
)


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key, header name or form field names a secret."""
    if not isinstance(key, str):
        return False
    flat = key.lower().replace("_", "").replace("-", "").replace(".", "")
    return flat in _SENSITIVE_KEYS or flat.endswith(_SENSITIVE_SUFFIXES)


_KEY = r"[A-Za-z][A-Za-z0-9_\-]*"
# "key": "value" / 'key': 'value' (JSON and Python reprs); the value may hold escaped quotes.
_QUOTED_PAIR = re.compile(
    r"""(?P<q>["'])(?P<key>"""
    + _KEY
    + r""")(?P=q)(?P<sep>\s*:\s*)(?P<vq>["'])(?P<val>(?:\\.|(?!(?P=vq)).)*)(?P=vq)""",
    re.DOTALL,
)
# "key": 12345 / "key": null (non-string JSON values).
_BARE_PAIR = re.compile(
    r"""(?P<q>["'])(?P<key>""" + _KEY + r""")(?P=q)(?P<sep>\s*:\s*)(?P<val>[^\s,"'{}\[\]]+)"""
)
# key=value in form bodies and query strings.
_FORM_PAIR = re.compile(r"(?P<pre>(?:^|[?&;\s,]))(?P<key>" + _KEY + r")=(?P<val>[^&\s#;,\"']*)")
# Authorization: <scheme> <credentials> header lines.
_HEADER_LINE = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization|\bx-api-key|\bcookie|\bset-cookie)(?P<sep>\s*:\s*)(?P<val>[^\r\n]*)",
    re.IGNORECASE,
)
# Credentials after an auth scheme anywhere in the text.
_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|API-Key)\s+(?P<val>[A-Za-z0-9\-._~+/=:]{8,})", re.IGNORECASE)


# A JSON document inside a JSON string: \"key\": \"value\".
_ESCAPED_PAIR = re.compile(
    r"""\\(?P<q>["'])(?P<key>"""
    + _KEY
    + r""")\\(?P=q)(?P<sep>\s*:\s*)\\(?P<vq>["'])(?P<val>(?:(?!\\(?P=vq)).)*)\\(?P=vq)""",
    re.DOTALL,
)
# key%3Dvalue inside a url-encoded value (a redirect URL carrying a token); the key may be encoded too.
_ENCODED_PAIR = re.compile(
    r"(?P<key>[A-Za-z][A-Za-z0-9_\-]*(?:%5[Ff][A-Za-z0-9_\-]*)*)%3[Dd](?P<val>(?:(?!%26)[^&\s\"'#,;])*)"
)


def _escaped(m: re.Match) -> str:
    if not is_sensitive_key(m.group("key")) or m.group("val") == REDACTED:
        return m.group(0)
    q, vq = m.group("q"), m.group("vq")
    return f"\\{q}{m.group('key')}\\{q}{m.group('sep')}\\{vq}{REDACTED}\\{vq}"


def _encoded(m: re.Match) -> str:
    key = unquote(m.group("key"))
    if not is_sensitive_key(key) or not m.group("val"):
        return m.group(0)
    return f"{m.group('key')}%3D{REDACTED}"


def _quoted(m: re.Match) -> str:
    if not is_sensitive_key(m.group("key")) or m.group("val") == REDACTED:
        return m.group(0)
    q, vq = m.group("q"), m.group("vq")
    return f"{q}{m.group('key')}{q}{m.group('sep')}{vq}{REDACTED}{vq}"


def _bare(m: re.Match) -> str:
    if not is_sensitive_key(m.group("key")) or m.group("val") in ("null", "None", "true", "false"):
        return m.group(0)
    q = m.group("q")
    return f'{q}{m.group("key")}{q}{m.group("sep")}"{REDACTED}"'


def _form(m: re.Match) -> str:
    if not is_sensitive_key(m.group("key")) or not m.group("val"):
        return m.group(0)
    return f"{m.group('pre')}{m.group('key')}={REDACTED}"


def _header(m: re.Match) -> str:
    val = m.group("val")
    if val.startswith(('"', "'")) or val.strip() in ("", REDACTED):
        return m.group(0)  # a quoted mapping value: handled by _QUOTED_PAIR
    return f"{m.group('name')}{m.group('sep')}{REDACTED}"


def redact_text(text: str | bytes | None) -> str:
    """Mask tokens, keys, secrets and passwords in JSON, form bodies, query strings and header dumps."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text:
        return text
    text = _ESCAPED_PAIR.sub(_escaped, text)
    text = _QUOTED_PAIR.sub(_quoted, text)
    text = _BARE_PAIR.sub(_bare, text)
    text = _FORM_PAIR.sub(_form, text)
    text = _ENCODED_PAIR.sub(_encoded, text)
    text = _HEADER_LINE.sub(_header, text)
    text = _SCHEME.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
    return text
