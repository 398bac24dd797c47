"""The sandbox's memory: per provider the control settings, issued credentials, records, quota windows and stats.

Everything lives in memory behind one re-entrant lock (`SandboxState.lock`); callers hold it while they read or
change anything here. Nothing in this module knows about HTTP.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sandbox.facts import PROVIDER_FACTS, ProviderFacts

MODES = ("ok", "down", "refuse", "slow", "flaky")
DEFAULT_DELAY = 15.0
DEFAULT_ERROR_RATE = 0.5
REQUEST_LOG_SIZE = 10_000
DELIVERY_LOG_SIZE = 1_000
WINDOW_HISTORY = 100
CODE_TTL_SECONDS = 600


def _normal(value) -> str:
    return str("" if value is None else value).strip().lower()


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int) -> str:
    """UTC ISO 8601 with milliseconds and a Z: 2024-05-01T10:00:00.123Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value) -> int | None:
    """Milliseconds since the epoch from an ISO 8601 string, or from digits (ms, or seconds when small).

    None when the value can't be read.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        number = int(text)
        return number if abs(number) >= 100_000_000_000 else number * 1000
    text = text.replace(" ", "+") if "T" in text and " " in text else text  # a '+' lost in a query string
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00 (Salesforce style)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass
class Record:
    id: str
    account: str
    seq: int
    fields: dict
    created_ms: int
    updated_ms: int

    def control_view(self) -> dict:
        return {
            "id": self.id,
            "account": self.account,
            "fields": dict(self.fields),
            "created_at": iso_ms(self.created_ms),
            "updated_at": iso_ms(self.updated_ms),
        }


@dataclass
class AccessToken:
    account: str
    expires_ms: int


@dataclass
class RefreshToken:
    account: str
    revoked: bool = False


@dataclass
class AuthCode:
    account: str
    client_id: str
    redirect_uri: str
    expires_ms: int
    used: bool = False


@dataclass
class Subscription:
    id: int
    account: str
    url: str
    secret: str


@dataclass
class RateInfo:
    limit: int
    window: int  # seconds
    used: int  # accepted requests in the current window
    remaining: int
    reset_at: float  # epoch seconds when the window ends


@dataclass
class ProviderState:
    facts: ProviderFacts
    mode: str = "ok"
    mode_since_ms: int = field(default_factory=now_ms)
    delay: float = DEFAULT_DELAY
    error_rate: float = DEFAULT_ERROR_RATE
    rate_limit: int | None = None  # None: the provider's published quota (facts.py)
    window: int | None = None
    reject: dict | None = None
    token_ttl: int | None = None
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)  # key -> account
    codes: dict[str, AuthCode] = field(default_factory=dict)
    records: dict[str, dict[str, Record]] = field(default_factory=dict)  # account -> id -> record
    query_locators: dict[str, tuple] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    deliveries: deque = field(default_factory=lambda: deque(maxlen=DELIVERY_LOG_SIZE))
    requests: deque = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    by_status: dict[str, int] = field(default_factory=dict)
    request_count: int = 0
    refused: int = 0
    rate_limited: int = 0
    windows: deque = field(default_factory=lambda: deque(maxlen=WINDOW_HISTORY))
    current_window: dict | None = None
    max_accepted_in_window: int = 0
    seq: int = 0
    # (account, field) -> (the account's records dict, normalised value -> ids): find_by_field's index, built on
    # first use and kept by add/update/delete_record (a real provider's unique index: a batch of 100 creates
    # into an account of 20,000 records scanned and sorted all of them per input, seconds per batch).
    _field_index: dict = field(default_factory=dict, repr=False, compare=False)

    # ---------------------------------------------------------------- settings
    @property
    def slug(self) -> str:
        return self.facts.slug

    @property
    def effective_limit(self) -> int:
        return self.facts.quota if self.rate_limit is None else self.rate_limit

    @property
    def effective_window(self) -> int:
        return self.facts.window_seconds if self.window is None else self.window

    @property
    def effective_token_ttl(self) -> int | None:
        if self.facts.auth_type != "oauth2":
            return None
        return self.token_ttl if self.token_ttl is not None else self.facts.token_ttl

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ---------------------------------------------------------------- quota
    def quota(self, consume: bool, now: float | None = None) -> tuple[bool, RateInfo]:
        """Count one request against the app's fixed window (when consume) and say whether it is accepted."""
        now = time.time() if now is None else now
        limit, window = self.effective_limit, self.effective_window
        start = math.floor(now / window) * window
        cur = self.current_window
        if cur is None or cur["start_ts"] != start or cur["window"] != window:
            cur = {"start_ts": start, "window": window, "requests": 0, "rejected": 0}
            if consume:
                self.windows.append(cur)
                self.current_window = cur
        accepted = cur["requests"] - cur["rejected"]
        allowed = True
        if consume:
            cur["requests"] += 1
            if accepted >= limit:
                allowed = False
                cur["rejected"] += 1
                self.rate_limited += 1
            else:
                accepted += 1
                self.max_accepted_in_window = max(self.max_accepted_in_window, accepted)
        info = RateInfo(
            limit=limit,
            window=window,
            used=accepted,
            remaining=max(0, limit - accepted),
            reset_at=start + window,
        )
        return allowed, info

    def restart_window(self) -> None:
        self.current_window = None

    # ---------------------------------------------------------------- credentials
    def issue_access_token(self, account: str, prefix: str = "") -> tuple[str, int]:
        ttl = self.effective_token_ttl or 3600
        token = prefix + secrets.token_urlsafe(32)
        self.access_tokens[token] = AccessToken(account, now_ms() + ttl * 1000)
        return token, ttl

    def issue_refresh_token(self, account: str, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(32)
        self.refresh_tokens[token] = RefreshToken(account)
        return token

    def issue_api_key(self, account: str, prefix: str = "") -> str:
        key = prefix + secrets.token_hex(20)
        self.api_keys[key] = account
        return key

    def issue_code(self, account: str, client_id: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(account, client_id, redirect_uri, now_ms() + CODE_TTL_SECONDS * 1000)
        return code

    def expire_tokens(self) -> None:
        """Every issued access token expires now (API-key providers: every issued key stops working)."""
        now = now_ms()
        for token in self.access_tokens.values():
            token.expires_ms = min(token.expires_ms, now)
        self.api_keys.clear()

    def revoke_refresh_tokens(self) -> None:
        for token in self.refresh_tokens.values():
            token.revoked = True

    # ---------------------------------------------------------------- records
    def account_records(self, account: str) -> list[Record]:
        return sorted(self.records.get(account, {}).values(), key=lambda r: r.seq)

    def all_records(self) -> list[Record]:
        return sorted((r for recs in self.records.values() for r in recs.values()), key=lambda r: r.seq)

    def get_record(self, account: str | None, record_id: str) -> Record | None:
        if account is not None:
            return self.records.get(account, {}).get(record_id)
        for recs in self.records.values():
            if record_id in recs:
                return recs[record_id]
        return None

    def add_record(self, account: str, record_id: str, fields: dict) -> Record:
        now = now_ms()
        rec = Record(
            record_id, account, self.next_seq(), {k: v for k, v in fields.items() if v is not None}, now, now
        )
        self.records.setdefault(account, {})[record_id] = rec
        for (acct, name), (_, index) in self._field_index.items():
            if acct == account:
                index.setdefault(_normal(rec.fields.get(name)), set()).add(rec.id)
        return rec

    def update_record(self, rec: Record, changes: dict) -> dict:
        """Apply changes (None removes a field); returns the fields that really changed."""
        changed = {}
        for key, value in changes.items():
            if rec.fields.get(key) != value:
                changed[key] = value
                indexed = self._field_index.get((rec.account, key))
                if indexed is not None:
                    indexed[1].get(_normal(rec.fields.get(key)), set()).discard(rec.id)
                    indexed[1].setdefault(_normal(value), set()).add(rec.id)
                if value is None:
                    rec.fields.pop(key, None)
                else:
                    rec.fields[key] = value
        rec.updated_ms = max(now_ms(), rec.updated_ms)
        return changed

    def delete_record(self, rec: Record) -> None:
        self.records.get(rec.account, {}).pop(rec.id, None)
        for (acct, name), (_, index) in self._field_index.items():
            if acct == rec.account:
                index.get(_normal(rec.fields.get(name)), set()).discard(rec.id)

    def find_by_field(self, account: str, name: str, value, exclude_id: str | None = None) -> Record | None:
        if value in (None, ""):
            return None
        wanted = _normal(value)
        records = self.records.get(account, {})
        indexed = self._field_index.get((account, name))
        if (
            indexed is None or indexed[0] is not records
        ):  # first use, or the records were replaced (load_state)
            index: dict[str, set] = {}
            for rec in records.values():
                index.setdefault(_normal(rec.fields.get(name)), set()).add(rec.id)
            indexed = self._field_index[(account, name)] = (records, index)
        matches = [records[i] for i in indexed[1].get(wanted, ()) if i in records and i != exclude_id]
        return min(matches, key=lambda r: r.seq) if matches else None

    # ---------------------------------------------------------------- stats
    def log_request(
        self, method: str, path: str, query: str, account: str | None, status: int | None
    ) -> None:
        self.request_count += 1
        if status is None:
            self.refused += 1
        else:
            key = str(status)
            self.by_status[key] = self.by_status.get(key, 0) + 1
        self.requests.append(
            {
                "at": iso_ms(now_ms()),
                "method": method,
                "path": path,
                "query": query,
                "account": account,
                "status": status,
            }
        )

    def control_view(self) -> dict:
        windows = [
            {
                "start": iso_ms(int(w["start_ts"] * 1000)),
                "window": w["window"],
                "requests": w["requests"],
                "accepted": w["requests"] - w["rejected"],
                "rejected": w["rejected"],
            }
            for w in self.windows
        ]
        return {
            "provider": self.slug,
            "mode": self.mode,
            "delay": self.delay,
            "error_rate": self.error_rate,
            "rate_limit": self.effective_limit,
            "window": self.effective_window,
            # "catalog" (the control API's value since before facts.py): the provider's published quota
            "quota_source": "catalog" if self.rate_limit is None and self.window is None else "control",
            "reject": self.reject,
            "token_ttl": self.effective_token_ttl,
            "webhooks": len(self.subscriptions),
            "stats": {
                "requests": self.request_count,
                "by_status": dict(self.by_status),
                "refused": self.refused,
                "rate_limited": self.rate_limited,
                "windows": windows,
                "max_accepted_in_window": self.max_accepted_in_window,
            },
        }


class SandboxState:
    """All providers' state, one lock for all of it."""

    def __init__(self, client_id: str, client_secret: str):
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.generation = 0  # bumped by reset, so that pending webhook deliveries stop
        self.providers: dict[str, ProviderState] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.generation += 1
            self.providers = {slug: ProviderState(facts) for slug, facts in PROVIDER_FACTS.items()}

    def provider(self, slug: str) -> ProviderState:
        return self.providers[slug]


# What survives a restart when the sandbox keeps a state file: the accounts' credentials, records and webhook
# subscriptions, as a real provider would keep them. Faults, quotas and statistics start afresh.
DURABLE = ("access_tokens", "refresh_tokens", "api_keys", "records", "subscriptions", "seq")


def save_state(state: SandboxState, path) -> None:
    """Write the durable part of the state atomically (a temporary file renamed over the old one)."""
    import os
    import pickle

    with state.lock:
        data = {slug: {name: getattr(p, name) for name in DURABLE} for slug, p in state.providers.items()}
        blob = pickle.dumps(data)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def load_state(state: SandboxState, path) -> bool:
    """Restore what save_state wrote (a file this sandbox wrote itself); False when there is none."""
    import os
    import pickle

    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - our own file, written by save_state
    with state.lock:
        for slug, saved in data.items():
            if slug in state.providers:
                for name in DURABLE:
                    if name in saved:
                        setattr(state.providers[slug], name, saved[name])
    return True
