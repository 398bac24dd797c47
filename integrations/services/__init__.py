"""Every write on integrations is one function here, called alike by admin, API, commands, tasks and incidents.

The functions live in modules by area (`services/<area>.py`); callers import them from `integrations.services`.
"""

from integrations.services.admin_audit import (
    admin_write_record,
)
from integrations.services.api_tokens import (
    api_token_create,
    api_token_revoke,
)
from integrations.services.common import (
    ActionResult,
    audit,
)
from integrations.services.conflicts import (
    conflict_keep_ours,
    conflict_resolve,
    conflict_take_theirs,
    open_conflicts,
)
from integrations.services.credentials import (
    credentials_rotate,
    integration_authorize_complete,
    integration_authorize_start,
    integration_reconnect,
    integration_update_api_key,
    integrations_reconnect,
)
from integrations.services.diagnostics import (
    ConnectivityStep,
    integration_test_connectivity,
    provider_check_status_page,
)
from integrations.services.logins import (
    login_failure_record,
    login_lockout_record,
)
from integrations.services.recovery import (
    DEFAULT_RESOLUTION,
    MAX_POLL_INTERVAL,
    MAX_SAMPLE_SIZE,
    MAX_WEBHOOK_RETRIES,
    MIN_POLL_INTERVAL,
    STALE_TYPES,
    clearable_defects,
    defects_clear_stale,
    defects_create_stale,
    integrations_reconcile,
    integrations_reconcile_in_background,
    integrations_set_enrichment_defer,
    integrations_set_mode,
    integrations_verify_sync,
    retryable_logs,
    retryable_webhooks,
    stale_defect_type,
    stale_records,
    sync_logs_retry_failed,
    webhooks_queue_retries,
)
from integrations.services.switches import (
    integration_disable,
    integration_enable,
    integration_pause,
    integration_resume,
    integrations_resume_expired_pauses,
)
from integrations.services.syncs import (
    crm_targets,
    enqueue_syncs,
    records_changed,
)
from integrations.services.throttle import (
    integrations_pause_non_critical,
    integrations_resume_non_critical,
    provider_quota_restore,
    records_sync_now,
)
from integrations.services.tokens import (
    integration_refresh_token,
    tokens_refresh_expiring,
)
from integrations.services.webhooks import (
    integration_rotate_webhook_secret,
    webhook_events_store,
)

__all__ = [
    "ActionResult",
    "audit",
    "integration_pause",
    "integration_resume",
    "integration_disable",
    "integration_enable",
    "integrations_resume_expired_pauses",
    "api_token_create",
    "api_token_revoke",
    "integration_refresh_token",
    "tokens_refresh_expiring",
    "enqueue_syncs",
    "crm_targets",
    "records_changed",
    "integration_reconnect",
    "integrations_reconnect",
    "integration_authorize_start",
    "integration_authorize_complete",
    "integration_update_api_key",
    "credentials_rotate",
    "ConnectivityStep",
    "integration_test_connectivity",
    "provider_check_status_page",
    "DEFAULT_RESOLUTION",
    "MAX_POLL_INTERVAL",
    "MAX_SAMPLE_SIZE",
    "MAX_WEBHOOK_RETRIES",
    "MIN_POLL_INTERVAL",
    "STALE_TYPES",
    "clearable_defects",
    "defects_clear_stale",
    "defects_create_stale",
    "integrations_reconcile",
    "integrations_reconcile_in_background",
    "integrations_set_enrichment_defer",
    "integrations_set_mode",
    "integrations_verify_sync",
    "retryable_logs",
    "retryable_webhooks",
    "stale_defect_type",
    "stale_records",
    "sync_logs_retry_failed",
    "webhooks_queue_retries",
    "integrations_pause_non_critical",
    "integrations_resume_non_critical",
    "records_sync_now",
    "provider_quota_restore",
    "conflict_keep_ours",
    "conflict_take_theirs",
    "conflict_resolve",
    "open_conflicts",
    "webhook_events_store",
    "integration_rotate_webhook_secret",
    "login_failure_record",
    "admin_write_record",
    "login_lockout_record",
]
