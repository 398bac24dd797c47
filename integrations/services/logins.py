"""Issue 13 (M5): failed logins and lockouts (django-axes) are audited. Never the password."""

from integrations.access.actors import System
from integrations.models import AuditAction
from integrations.services.common import audit

LOGIN = System("login")


def _address(request) -> str:
    if request is None:
        return ""
    return str(getattr(request, "axes_ip_address", "") or request.META.get("REMOTE_ADDR", ""))[:100]


def login_failure_record(*, username: str, request=None) -> None:
    """One audit row per wrong password (the user name as typed, the client address)."""
    audit(
        actor=LOGIN,
        action=AuditAction.AUTH_LOGIN_FAILED,
        details={"username": str(username or "")[:150], "ip": _address(request)},
    )


def login_lockout_record(*, username: str, request=None) -> None:
    """django-axes locked a user name out from an address."""
    audit(
        actor=LOGIN,
        action=AuditAction.AUTH_LOCKED_OUT,
        details={"username": str(username or "")[:150], "ip": _address(request)},
    )


def connect_login_signals() -> None:
    """Hook the audit to Django's user_login_failed and django-axes' user_locked_out (apps.ready)."""
    from django.contrib.auth.signals import user_login_failed

    def failed(sender, credentials=None, request=None, **kwargs):
        login_failure_record(username=(credentials or {}).get("username", ""), request=request)

    user_login_failed.connect(failed, dispatch_uid="lineup_audit_login_failed", weak=False)
    try:
        from axes.signals import user_locked_out
    except ImportError:  # pragma: no cover - axes is a dependency
        return

    def locked(sender, request=None, username=None, ip_address=None, **kwargs):
        login_lockout_record(username=username or "", request=request)

    user_locked_out.connect(locked, dispatch_uid="lineup_audit_locked_out", weak=False)
