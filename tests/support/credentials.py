"""Credentials as the database stores them, and the re-authorization flow as a customer's admin walks it."""

from urllib.parse import parse_qs, urlsplit

import requests
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse

from integrations.models import Integration


def raw_credentials(integration) -> str:
    """The column as stored: a Fernet token, never clear text."""
    return (
        Integration.objects.annotate(raw=Cast("credentials", TextField()))
        .values_list("raw", flat=True)
        .get(pk=integration.pk)
    )


# The re-authorization flow as a customer's admin walks it (the console, then the provider's consent page).


def start(client, integration) -> str:
    response = client.get(reverse("integration_authorize", args=[integration.pk]))
    assert response.status_code == 302
    return response["Location"]


def consent(sandbox_url: str, decision: str = "grant") -> str:
    """The customer's admin at the provider's consent page: GET the form, press a button; the redirect back."""
    page = requests.get(sandbox_url, timeout=10)
    assert page.status_code == 200 and "Grant access" in page.text
    account = parse_qs(urlsplit(sandbox_url).query)["account"][0]
    answer = requests.post(
        sandbox_url, data={"decision": decision, "account": account}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302
    return answer.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
