"""lineup-ops connect_integration: onboard a tenant's integration from a script (what the admin's add form does).

    lineup-ops connect_integration --tenant acme --provider greenhouse --base-url https://harvest.greenhouse.io \
        --api-key KEY
    lineup-ops connect_integration --tenant acme --provider hubspot --base-url https://api.hubapi.com \
        --refresh-token TOKEN
    lineup-ops connect_integration --tenant acme --provider hubspot --from-sandbox http://127.0.0.1:8765

The credentials are tested against the provider before they are kept; a refused one leaves nothing behind.
Bad input exits 2 with one line and changes nothing.
"""

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand
from django.core.validators import URLValidator, validate_slug

from integrations import errors, timespec
from integrations.access.actors import System
from integrations.catalog import PROVIDERS
from integrations.models import AuthType, SyncMode
from integrations.services.onboarding import integration_connect, webhook_url
from integrations.timespec import UsageError


class Command(BaseCommand):
    help = (
        "Create a tenant's integration and connect it with an API key, an OAuth refresh token or the sandbox."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug (created when new).")
        parser.add_argument("--tenant-name", default="", help="Name of a new tenant (default: the slug).")
        parser.add_argument("--provider", required=True, help=f"One of {', '.join(PROVIDERS)}.")
        parser.add_argument("--base-url", help="The provider's API base URL for this tenant.")
        creds = parser.add_mutually_exclusive_group(required=True)
        creds.add_argument("--api-key", help="For API-key providers; tested before it is saved.")
        creds.add_argument(
            "--refresh-token", help="For OAuth providers: refreshed and tested before it is saved."
        )
        creds.add_argument(
            "--from-sandbox",
            metavar="SANDBOX_URL",
            help="Ask the sandbox provider for fresh credentials (its control API) and point the "
            "integration at it; also subscribes the console's webhook URL there.",
        )
        parser.add_argument(
            "--mode", choices=[m.value for m in SyncMode], help="Default: webhook when supported."
        )
        parser.add_argument(
            "--critical", action="store_true", help="Keeps syncing when non-critical ones pause (RB-03)."
        )
        parser.add_argument(
            "--as", dest="username", help="Audit as this user (default: system:connect_integration)."
        )

    def handle(
        self,
        *args,
        tenant,
        tenant_name,
        provider,
        base_url,
        api_key,
        refresh_token,
        from_sandbox,
        mode,
        critical,
        username,
        **options,
    ):
        provider = timespec.provider(provider)
        info = PROVIDERS[provider]
        try:
            validate_slug(tenant)
        except ValidationError:
            raise UsageError(f"--tenant: '{tenant}' is not a slug (letters, digits, - and _)") from None
        actor = self._actor(username)
        if from_sandbox:
            sandbox = self._url(from_sandbox, "--from-sandbox")
            base_url = base_url or f"{sandbox}/{provider}"
            creds = self._sandbox_credentials(sandbox, provider, tenant)
            api_key, refresh_token = creds.get("api_key", ""), creds.get("refresh_token", "")
        if not base_url:
            raise UsageError(
                "--base-url is required (the provider's API address), unless --from-sandbox is given"
            )
        base_url = self._url(base_url, "--base-url")
        if api_key and info.auth_type != AuthType.API_KEY:
            raise UsageError(f"--api-key: {info.name} connects with OAuth; give --refresh-token")
        if refresh_token and info.auth_type != AuthType.OAUTH2:
            raise UsageError(f"--refresh-token: {info.name} connects with an API key; give --api-key")
        try:
            done = integration_connect(
                tenant_slug=tenant,
                tenant_name=tenant_name,
                provider=provider,
                base_url=base_url,
                actor=actor,
                api_key=api_key or "",
                refresh_token=refresh_token or "",
                mode=mode,
                is_critical=critical,
            )
        except errors.ServiceError as e:
            raise UsageError(e.message) from None
        integration = done.integration
        hook = webhook_url(settings.CONSOLE_URL, integration)
        if from_sandbox and info.supports_webhooks and integration.mode == SyncMode.WEBHOOK:
            self._subscribe(sandbox, provider, tenant, hook)
        self.stdout.write(
            f"Connected {info.name} for tenant {tenant} (integration {integration.pk}, {integration.status}, "
            f"{integration.mode}): {done.message} First sync queued."
        )
        if info.supports_webhooks:
            self.stdout.write(
                f"Webhook URL to give {info.name}: {hook} (signed with PROVIDER_WEBHOOK_SECRET)"
            )

    @staticmethod
    def _url(value: str, flag: str) -> str:
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            raise UsageError(f"{flag}: '{value}' is not an http(s) URL") from None
        return value.rstrip("/")

    @staticmethod
    def _actor(username: str | None):
        if not username:
            return System("connect_integration")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise UsageError(f"--as: no active user '{username}'")
        return user

    @staticmethod
    def _sandbox_credentials(sandbox: str, provider: str, tenant: str) -> dict:
        try:
            response = requests.post(
                f"{sandbox}/_control/{provider}/credentials", json={"account": tenant}, timeout=10
            )
        except requests.RequestException as e:
            raise UsageError(f"--from-sandbox: {sandbox} does not answer ({type(e).__name__})") from None
        if response.status_code != 200:
            raise UsageError(
                f"--from-sandbox: {sandbox} refused credentials for {provider}: HTTP {response.status_code}"
            )
        return response.json()

    @staticmethod
    def _subscribe(sandbox: str, provider: str, tenant: str, url: str) -> None:
        # The sandbox stands for the provider's app settings page, where the webhook URL is entered.
        requests.post(
            f"{sandbox}/_control/{provider}/webhooks",
            timeout=10,
            json={"account": tenant, "url": url, "secret": settings.PROVIDER_WEBHOOK_SECRET},
        ).raise_for_status()
