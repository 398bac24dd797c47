"""Credential actions (RB-02, RB-09 recovery): reconnect, re-authorize, update an API key, rotate credentials.

Provider calls happen outside database transactions (a slow provider must not hold row locks); what they
return is persisted in one transaction with its audit row. Secrets are never logged, audited or returned.
"""

import copy
import secrets
import time
from collections.abc import MutableMapping

from django.core import signing
from django.db import transaction
from django.db.models import Case, TextField, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from integrations import errors
from integrations.access import crypto
from integrations.access.actors import (
    MANAGE_CREDENTIALS,
    OPERATE,
    Actor,
    actor_label,
    audit_fields,
    require,
    scope_integrations,
)
from integrations.catalog import PROVIDERS
from integrations.engine.quota import provider_quota
from integrations.models import AuditAction, AuditEvent, AuthType, ErrorCategory, Integration
from integrations.providers import ProviderError
from integrations.services.common import ActionResult, as_queryset, audit
from integrations.services.tokens import integration_refresh_token

# What integration_reconnect reports (details["outcome"]) and says to the operator (details["message"]).
CONNECTED = "connected"
REFRESHED = "refreshed"  # token refreshed, the test call waits for the provider quota
NEEDS_REAUTH = "needs_reauth"
UPDATE_API_KEY = "update_api_key"
FAILED = "failed"
MSG_CONNECTED = "Credentials work: a test call to the provider succeeded."
MSG_REFRESHED = "Token refreshed; the test call was skipped because the provider quota is exhausted."
MSG_NEEDS_REAUTH = "The token refresh was refused: re-authorize the integration (Re-authorize)."
MSG_UPDATE_API_KEY = "The provider refuses the stored API key: update the API key."
MSG_FAILED = "The provider could not be reached; try again later."

# The OAuth `state`: signed, bound to the integration and the user, single use through the browser session.
STATE_SALT = "integrations.oauth.state"
STATE_MAX_AGE = 600
SESSION_KEY = "integrations_oauth_states"
# A test call is one request; it waits a little for the shared provider quota, not a whole window.
TEST_CALL_QUOTA_WAIT = 5.0
# Re-encryption writes one CASE per chunk; keep its parameter count well under SQLite's limit.
REENCRYPT_CHUNK = 500
_AUTH_FAILURES = (ErrorCategory.AUTH_REFRESH_FAILED, ErrorCategory.AUTH_INVALID, ErrorCategory.AUTH_EXPIRED)


def _one(actor: Actor, integration: Integration | int, perm: str) -> Integration:
    require(actor, perm)
    pk = integration.pk if isinstance(integration, Integration) else integration
    found = scope_integrations(actor, Integration.objects.filter(pk=pk)).select_related("tenant").first()
    if found is None:
        raise errors.ServiceError("No such integration.", code="not_found")
    return found


def _client(integration: Integration, credentials: dict | None = None):
    from integrations.engine import calls

    probe = copy.copy(integration)
    probe.credentials = dict(integration.credentials if credentials is None else credentials)
    return calls.client_for(probe)


def _test_call(integration: Integration, credentials: dict | None = None) -> None:
    """One cheap authenticated call (RB-02 "Test API call succeeds"), inside the provider's shared quota."""
    from integrations.engine import calls

    if not provider_quota().acquire(integration.provider, timeout=TEST_CALL_QUOTA_WAIT):
        raise calls.QuotaUnavailable(integration.provider)
    _client(integration, credentials).check_credentials()


def _note_connected(integration_id: int, when) -> None:
    """The credentials just proved good: the last error is over, so the status settles (connected unless paused)."""
    Integration.objects.filter(pk=integration_id).update(
        last_success_at=when, last_error="", last_error_category=""
    )
    Integration.objects.filter(pk=integration_id).settle_status()


def _note_error(integration: Integration, error: ProviderError) -> None:
    from integrations.engine import calls, outcomes

    if not isinstance(error, calls.QuotaUnavailable):
        outcomes.note_error(integration, error, timezone.now())


def _details(source: str, **kw) -> dict:
    return {**kw, "source": source} if source else kw


# ------------------------------------------------------------------------------------------ reconnect


def integration_reconnect(*, integration: Integration | int, actor: Actor, source: str = "") -> ActionResult:
    """RB-02 step 1: refresh the OAuth token and make a test call; for API-key providers test the stored key.

    A refused refresh leaves the integration needs_reauth and the result says to re-authorize it; a refused
    API key says to update the key.
    """
    integration = _one(actor, integration, OPERATE)
    if integration.auth_type == AuthType.API_KEY:
        outcome, category, error = _verify(integration, missing=UPDATE_API_KEY, refused=UPDATE_API_KEY)
    else:
        outcome, category, error = _refresh_and_verify(integration, actor)
    message = {
        CONNECTED: MSG_CONNECTED,
        REFRESHED: MSG_REFRESHED,
        NEEDS_REAUTH: MSG_NEEDS_REAUTH,
        UPDATE_API_KEY: MSG_UPDATE_API_KEY,
        FAILED: MSG_FAILED,
    }[outcome]
    with transaction.atomic():
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_RECONNECT,
            integration=integration,
            details=_details(source, outcome=outcome, category=category, error=error[:500]),
        )
    ok = outcome in (CONNECTED, REFRESHED)
    return ActionResult(
        action=AuditAction.INTEGRATION_RECONNECT,
        changed=int(ok),
        unchanged=int(not ok),
        details={
            "outcome": outcome,
            "message": message,
            "category": category,
            "error": error,
            "needs_reauth": outcome == NEEDS_REAUTH,
        },
    )


def _refresh_and_verify(integration: Integration, actor: Actor) -> tuple[str, str, str]:
    if not integration.credentials.get("refresh_token"):
        # Nothing to refresh with: only a person at the provider's consent page can fix this.
        _note_error(integration, ProviderError(ErrorCategory.AUTH_REFRESH_FAILED, errors.NO_REFRESH_TOKEN))
        return NEEDS_REAUTH, ErrorCategory.AUTH_REFRESH_FAILED, errors.NO_REFRESH_TOKEN
    refreshed = integration_refresh_token(integration=integration, actor=actor)
    if not refreshed.changed:
        category = refreshed.details.get("category", "")
        outcome = (
            NEEDS_REAUTH
            if category in (ErrorCategory.AUTH_REFRESH_FAILED, ErrorCategory.AUTH_INVALID)
            else FAILED
        )
        return outcome, category, refreshed.details.get("error", "")
    integration.refresh_from_db()
    return _verify(integration, missing=NEEDS_REAUTH, refused=NEEDS_REAUTH)


def _verify(integration: Integration, *, missing: str, refused: str) -> tuple[str, str, str]:
    from integrations.engine import calls

    if not integration.has_credentials:
        return missing, "", "no credentials stored"
    try:
        _test_call(integration)
    except calls.QuotaUnavailable as e:
        return (REFRESHED if integration.auth_type == AuthType.OAUTH2 else FAILED), e.category, e.message
    except ProviderError as e:
        _note_error(integration, e)
        return (refused if e.category in _AUTH_FAILURES else FAILED), e.category, e.message
    _note_connected(integration.pk, timezone.now())
    return CONNECTED, "", ""


def integrations_reconnect(*, integrations, actor: Actor, source: str = "") -> ActionResult:
    """Reconnect each integration of a set (admin bulk action, `refresh_tokens`); counts per outcome."""
    require(actor, OPERATE)
    qs = scope_integrations(actor, as_queryset(integrations)).order_by()
    result = ActionResult(
        action=AuditAction.INTEGRATION_RECONNECT,
        details={"n_needs_reauth": 0, "n_update_api_key": 0, "n_failed": 0},
    )
    last_pk = 0
    while True:
        ids = list(qs.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:200])
        if not ids:
            return result
        last_pk = ids[-1]
        for pk in ids:
            outcome = integration_reconnect(integration=pk, actor=actor, source=source).details["outcome"]
            if outcome in (CONNECTED, REFRESHED):
                result.changed += 1
            else:
                result.unchanged += 1
                result.details[f"n_{outcome}"] += 1


# ------------------------------------------------------------------------------------------ re-authorization


def integration_authorize_start(
    *, integration: Integration, actor: Actor, redirect_uri: str, session: MutableMapping
) -> str:
    """RB-02 step 2: the provider's consent page URL, with a signed single-use `state` kept in the session."""
    integration = _one(actor, integration, MANAGE_CREDENTIALS)
    if integration.auth_type != AuthType.OAUTH2:
        raise errors.ServiceError(errors.NOT_OAUTH, field="provider")
    nonce = secrets.token_urlsafe(16)
    now = time.time()
    pending = {
        n: v for n, v in (session.get(SESSION_KEY) or {}).items() if v.get("at", 0) > now - STATE_MAX_AGE
    }
    pending[nonce] = {"integration": integration.pk, "redirect_uri": redirect_uri, "at": now}
    session[SESSION_KEY] = pending
    state = signing.dumps({"i": integration.pk, "a": actor_label(actor), "n": nonce}, salt=STATE_SALT)
    # The sandbox (and some providers) let the consent page preselect the customer's account.
    url = _client(integration).authorize_url(
        redirect_uri=redirect_uri, state=state, account=integration.tenant.slug
    )
    audit(
        actor=actor,
        action=AuditAction.INTEGRATION_AUTHORIZE_START,
        integration=integration,
        details={"outcome": "started"},
    )
    return url


def _pending_authorization(state: str, actor: Actor, session: MutableMapping) -> tuple[dict, dict]:
    """The signed state and its session entry, burnt on first use; ServiceError for a bad, old or reused one."""
    try:
        data = signing.loads(state or "", salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise errors.ServiceError(errors.OAUTH_STATE_EXPIRED, code="oauth_state") from None
    except signing.BadSignature:
        raise errors.ServiceError(errors.OAUTH_STATE_INVALID, code="oauth_state") from None
    pending = dict(session.get(SESSION_KEY) or {})
    entry = pending.pop(str(data.get("n")), None)
    session[SESSION_KEY] = pending
    if entry is None or entry.get("integration") != data.get("i") or data.get("a") != actor_label(actor):
        raise errors.ServiceError(errors.OAUTH_STATE_USED, code="oauth_state")
    return data, entry


def integration_authorize_complete(
    *, state: str, code: str, actor: Actor, session: MutableMapping, error: str = ""
) -> ActionResult:
    """The consent redirect came back: exchange the code, store the tokens encrypted, the status settles."""
    require(actor, MANAGE_CREDENTIALS)
    data, entry = _pending_authorization(state, actor, session)
    integration = _one(actor, data["i"], MANAGE_CREDENTIALS)
    if error or not code:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_AUTHORIZE_COMPLETE,
            integration=integration,
            details={"outcome": "denied", "error": (error or "no code")[:100]},
        )
        raise errors.ServiceError(errors.OAUTH_DENIED, code="oauth_denied")
    client = _client(integration)
    try:
        tokens = client.exchange_code(code=code, redirect_uri=entry["redirect_uri"])
        granted = client.account_of(tokens) or ""
    except ProviderError as e:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_AUTHORIZE_COMPLETE,
            integration=integration,
            details={"outcome": "failed", "category": e.category, "error": e.message[:500]},
        )
        raise errors.ServiceError(errors.OAUTH_CODE_REFUSED, code="oauth_code") from None
    from integrations.engine import calls

    # Issue 13 (H2): the integration is bound to the provider account of its first grant (or of the tokens it
    # holds); a grant for another account is refused, changes nothing and is audited with both accounts.
    bound = integration.provider_account or _current_account(integration)
    if bound and granted and granted != bound:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_AUTHORIZE_REFUSED,
            integration=integration,
            details={"outcome": "other_account", "bound_account": bound, "granted_account": granted},
        )
        raise errors.ServiceError(
            errors.OAUTH_OTHER_ACCOUNT.format(
                provider=PROVIDERS[integration.provider].name, granted=granted, bound=bound
            ),
            code="oauth_account",
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().select_related("tenant").get(pk=integration.pk)
        calls.store_tokens(locked, tokens, when=now)
        if granted and not locked.provider_account:
            locked.provider_account = granted
            locked.save(update_fields=["provider_account", "updated_at"])
        _note_connected(locked.pk, now)
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_AUTHORIZE_COMPLETE,
            integration=locked,
            details={
                "outcome": "authorized",
                "account": granted or None,
                "expires_at": locked.expires_at.isoformat() if locked.expires_at else None,
            },
        )
    return ActionResult(
        action=AuditAction.INTEGRATION_AUTHORIZE_COMPLETE,
        changed=1,
        details={"outcome": "authorized", "integration_id": locked.pk, "expires_at": locked.expires_at},
    )


def _current_account(integration: Integration) -> str:
    """The account of the tokens the integration holds now ("" when unknown or unreachable)."""
    creds = integration.credentials or {}
    if not creds.get("access_token"):
        return ""
    from integrations.providers import TokenSet

    try:
        return (
            _client(integration).account_of(
                TokenSet(access_token=creds["access_token"], extra={"id": creds.get("id")})
            )
            or ""
        )
    except ProviderError:
        return ""


# ------------------------------------------------------------------------------------------ API keys


def integration_update_api_key(
    *, integration: Integration, actor: Actor, api_key: str, source: str = ""
) -> ActionResult:
    """RB-02 step 3: test a new API key against the provider, and only if it works store it (encrypted)."""
    integration = _one(actor, integration, MANAGE_CREDENTIALS)
    if integration.auth_type != AuthType.API_KEY:
        raise errors.ServiceError(errors.NOT_API_KEY, field="api_key")
    api_key = (api_key or "").strip()
    if not api_key:
        raise errors.ServiceError(errors.API_KEY_REQUIRED, field="api_key")
    try:
        _test_call(integration, {**integration.credentials, "api_key": api_key})
    except ProviderError as e:
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_UPDATE_API_KEY,
            integration=integration,
            details=_details(
                source, outcome="rejected" if not e.transient else "untested", category=e.category
            ),
        )
        raise errors.ServiceError(
            errors.API_KEY_UNTESTED if e.transient else errors.API_KEY_REJECTED, field="api_key"
        ) from None
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        locked.credentials = {**locked.credentials, "api_key": api_key}
        locked.save(update_fields=["credentials", "updated_at"])
        _note_connected(locked.pk, now)
        audit(
            actor=actor,
            action=AuditAction.INTEGRATION_UPDATE_API_KEY,
            integration=integration,
            details=_details(source, outcome="updated"),
        )
    return ActionResult(
        action=AuditAction.INTEGRATION_UPDATE_API_KEY, changed=1, details={"outcome": "updated"}
    )


# ------------------------------------------------------------------------------------------ rotation


def credentials_rotate(
    *, provider: str, actor: Actor, store_in_vault: bool, integrations=None, source: str = ""
) -> ActionResult:
    """RB-09 recovery 2: refresh every OAuth token of a provider; with store_in_vault re-encrypt every
    credential with the newest FERNET_KEYS key so that older keys can be dropped.

    `integrations` narrows the set (an admin selection). Counts: n_refreshed, n_reencrypted, n_failed.
    """
    require(actor, MANAGE_CREDENTIALS)
    if provider not in PROVIDERS:
        raise errors.ServiceError(f"Unknown provider '{provider}'.", field="provider")
    base = Integration.objects.all() if integrations is None else as_queryset(integrations)
    qs = scope_integrations(actor, base).filter(provider=provider).order_by()
    oauth = PROVIDERS[provider].auth_type == AuthType.OAUTH2
    result = ActionResult(
        action=AuditAction.CREDENTIALS_ROTATE,
        details={
            "provider": provider,
            "store_in_vault": store_in_vault,
            "n_refreshed": 0,
            "n_reencrypted": 0,
            "n_failed": 0,
        },
    )
    last_pk = 0
    while True:
        ids = list(qs.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:REENCRYPT_CHUNK])
        if not ids:
            break
        last_pk = ids[-1]
        refreshed: dict[int, bool] = {}
        # A refresh saves its tokens under the newest key already: count what was stale before it.
        stale = _stale(ids) if store_in_vault else set()
        if oauth:
            for integration in Integration.objects.filter(pk__in=ids).select_related("tenant"):
                refreshed[integration.pk] = _rotate_refresh(integration, actor)
        reencrypted = stale | _reencrypt(ids) if store_in_vault else set()
        with transaction.atomic():
            who = audit_fields(actor)
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        action=AuditAction.INTEGRATION_ROTATE_CREDENTIALS,
                        integration_id=pk,
                        tenant_id=tenant_id,
                        provider=provider,
                        **who,
                        details=_details(
                            source,
                            refreshed=refreshed.get(pk),
                            reencrypted=pk in reencrypted,
                            store_in_vault=store_in_vault,
                        ),
                    )
                    for pk, tenant_id in Integration.objects.filter(pk__in=ids).values_list("pk", "tenant_id")
                ]
            )
        n_refreshed = sum(refreshed.values())
        result.details["n_refreshed"] += n_refreshed
        result.details["n_failed"] += len(refreshed) - n_refreshed
        result.details["n_reencrypted"] += len(reencrypted)
        touched = {pk for pk, ok in refreshed.items() if ok} | reencrypted
        result.changed += len(touched)
        result.unchanged += len(ids) - len(touched)
    return result


def _rotate_refresh(integration: Integration, actor: Actor) -> bool:
    if not integration.credentials.get("refresh_token"):
        return False
    return bool(integration_refresh_token(integration=integration, actor=actor).changed)


# Every encrypted column of an integration (issue 13 added the webhook secret): re-encryption covers them all.
ENCRYPTED_FIELDS = ("credentials", "webhook_secret")


def _raw(ids: list[int], field: str = "credentials"):
    """(pk, stored token) pairs: the column as stored, not decrypted."""
    return (
        Integration.objects.filter(pk__in=ids).annotate(raw=Cast(field, TextField())).values_list("pk", "raw")
    )


def _stale(ids: list[int]) -> set[int]:
    return {pk for pk, raw in _raw(ids) if raw and not crypto.is_current(raw)}


def _reencrypt(ids: list[int]) -> set[int]:
    """Re-encrypt the raw tokens not yet under the newest key; one UPDATE per chunk and column.

    Counts the integrations whose credentials were re-encrypted (the webhook secret follows silently)."""
    changed: set[int] = set()
    with transaction.atomic():
        for field in ENCRYPTED_FIELDS:
            rows = _raw(ids, field).select_for_update()
            fresh = {pk: crypto.rotate(raw) for pk, raw in rows if raw and not crypto.is_current(raw)}
            if fresh:
                # Value(..., TextField) writes the new token as is; the field would encrypt it a second time.
                Integration.objects.filter(pk__in=fresh).update(
                    **{
                        field: Case(
                            *[
                                When(pk=pk, then=Value(token, output_field=TextField()))
                                for pk, token in fresh.items()
                            ],
                            output_field=TextField(),
                        )
                    }
                )
                if field == "credentials":
                    changed |= set(fresh)
    return changed
