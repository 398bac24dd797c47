"""Credentials as the database stores them."""

from django.db.models import TextField
from django.db.models.functions import Cast

from integrations.models import Integration


def raw_credentials(integration) -> str:
    """The column as stored: a Fernet token, never clear text."""
    return (
        Integration.objects.annotate(raw=Cast("credentials", TextField()))
        .values_list("raw", flat=True)
        .get(pk=integration.pk)
    )
