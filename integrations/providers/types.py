"""What provider clients return: plain values, no Django."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class CallInfo:
    """One HTTP exchange, for the SyncLog; everything in it is already redacted."""

    method: str
    endpoint: str  # path template below the base URL, e.g. "/crm/v3/objects/contacts/{id}"
    url: str  # query secrets masked
    http_status: int | None
    duration_ms: int
    rate_limit: dict[str, str] = field(default_factory=dict)
    request_excerpt: str = ""
    response_excerpt: str = ""


@dataclass
class RemoteRecord:
    remote_id: str
    fields: dict  # flat fields per the provider contract, incl. "lineup_id" when present
    updated_at: datetime | None = None
    raw: dict = field(default_factory=dict)


@dataclass
class Page:
    records: list[RemoteRecord]
    next_cursor: str | None = None


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_in: int | None = None
    extra: dict = field(default_factory=dict)  # e.g. {"instance_url": ...}


@dataclass
class ProviderStatus:
    indicator: str  # none | minor | major | critical
    description: str
    raw: dict = field(default_factory=dict)


@dataclass
class WebhookEvent:
    event_id: str
    remote_id: str
    action: str  # "created" | "updated" | "deleted", or the provider's own name when it is none of these
    occurred_at: datetime | None
    raw: dict = field(default_factory=dict)
