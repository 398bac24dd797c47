"""Credentials are encrypted at rest, rotate to the newest key, and are never serialised in clear."""

import pytest
from cryptography.fernet import Fernet
from django.core import serializers
from django.db import connection

from integrations.access import crypto
from integrations.models import Integration
from tests.support import factories

pytestmark = pytest.mark.django_db


def raw_column(integration_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", [integration_id])
        return cursor.fetchone()[0]


def test_the_database_column_holds_no_clear_text():
    i = factories.integration(credentials={"access_token": "at-CLEAR-1", "refresh_token": "rt-CLEAR-2"})
    raw = raw_column(i.pk)
    assert raw and "CLEAR" not in raw and "access_token" not in raw
    assert Integration.objects.get(pk=i.pk).credentials == {
        "access_token": "at-CLEAR-1",
        "refresh_token": "rt-CLEAR-2",
    }


def test_old_keys_still_decrypt_and_rotation_moves_to_the_newest(settings):
    old = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    i = factories.integration(credentials={"api_key": "k-CLEAR"})
    token = raw_column(i.pk)
    new = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new, old]
    assert Integration.objects.get(pk=i.pk).credentials == {"api_key": "k-CLEAR"}
    assert not crypto.is_current(token)
    rotated = crypto.rotate(token)
    assert crypto.is_current(rotated)
    settings.FERNET_KEYS = [new]
    assert crypto.decrypt(rotated) == '{"api_key": "k-CLEAR"}'


def test_dumpdata_does_not_leak_credentials():
    i = factories.integration(credentials={"api_key": "k-CLEAR"})
    dumped = serializers.serialize("json", Integration.objects.filter(pk=i.pk))
    assert "k-CLEAR" not in dumped
