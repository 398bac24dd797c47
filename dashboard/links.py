"""Links from each number on the dashboard to the admin changelist filtered to the rows behind it.

The parameter names are the changelists' own: `provider__exact`, `status__exact`, `error_category__exact`,
`window=15m` (TimeWindowFilter), `token=24h` (TokenExpiryFilter), `defect_type__exact`.
"""

from urllib.parse import urlencode

from django.urls import reverse

from incidents.models import ACTIVE_STATUSES

# "Any error category": error_category is "" on success, so "> ''" is every row that failed with a category,
# which is what the rollups count as an error.
ANY_ERROR = {"error_category__gt": ""}


class Links:
    """Builds changelist URLs for one dashboard view (its tenant filter applies to every link)."""

    def __init__(self, *, tenant=None):
        self.tenant = tenant
        self._bases: dict[str, str] = {}  # reverse() once per changelist, not once per number

    def dashboard_query(self, provider: str) -> str:
        """The dashboard's own query string for one provider (keeping the tenant filter)."""
        params = {"provider": provider}
        if self.tenant is not None:
            params["tenant"] = self.tenant.slug
        return urlencode(params)

    def _url(self, name: str, params: dict) -> str:
        base = self._bases.get(name)
        if base is None:
            base = self._bases[name] = reverse(f"admin:{name}_changelist")
        return f"{base}?{urlencode(params)}" if params else base

    def _tenant(self, field: str = "tenant__id__exact") -> dict:
        return {field: self.tenant.pk} if self.tenant is not None else {}

    def integrations(self, provider: str | None = None, **params) -> str:
        base = {"provider__exact": provider} if provider else {}
        return self._url("integrations_integration", {**base, **params, **self._tenant()})

    def integrations_status(self, provider: str | None, status: str) -> str:
        return self.integrations(provider, status__exact=status)

    def tokens_expiring(self, provider: str | None) -> str:
        return self.integrations(provider, token="24h")

    def sync_logs(self, provider: str | None = None, **params) -> str:
        base = {"provider__exact": provider} if provider else {}
        return self._url("integrations_synclog", {**base, **params, **self._tenant()})

    def errors_15m(
        self, provider: str | None, *, endpoint: str | None = None, category: str | None = None
    ) -> str:
        params: dict = {"window": "15m"}
        if category:
            params["error_category__exact"] = category
        else:
            params.update(ANY_ERROR)
        if endpoint is not None:
            params["endpoint__exact"] = endpoint
        return self.sync_logs(provider, **params)

    def calls_15m(self, provider: str | None) -> str:
        return self.sync_logs(provider, window="15m")

    def sync_log(self, pk: int) -> str:
        return reverse("admin:integrations_synclog_change", args=[pk])

    def sync_queue(self, provider: str | None, status: str) -> str:
        if status == "RETRYING":
            # The retries still to come: an attempt already retried keeps its RETRYING outcome.
            return self.sync_logs(provider, retry="waiting")
        return self.sync_logs(provider, status__exact=status)

    def webhooks(self, provider: str | None, status: str, *, integration_ids=()) -> str:
        params: dict = {"status__exact": status}
        if provider:
            params["provider__exact"] = provider
        if self.tenant is not None:
            # The webhook changelist cannot filter by tenant: by the tenant's integrations (one per provider).
            params["integration__id__in"] = ",".join(str(i) for i in integration_ids) or "0"
        return self._url("integrations_webhookdelivery", params)

    def defects(self, provider: str | None, defect_type: str | None = None) -> str:
        params: dict = {"status__exact": "OPEN"}
        if provider:
            params["provider__exact"] = provider
        if defect_type:
            params["defect_type__exact"] = defect_type
        return self._url("integrations_defect", {**params, **self._tenant()})

    def incidents(self, provider: str | None = None) -> str:
        params: dict = {"status__in": ",".join(ACTIVE_STATUSES)}
        if provider:
            params["provider__exact"] = provider
        return self._url("incidents_incident", {**params, **self._tenant("affected_tenants__id__exact")})

    @staticmethod
    def incident(pk: int) -> str:
        # The change URL redirects to the incident's tracker page.
        return reverse("admin:incidents_incident_change", args=[pk])
