"""Local record fields <-> a provider's flat fields, from the integration's FieldMappings or the defaults."""

from dataclasses import dataclass

from integrations.catalog import PROVIDERS

# local field -> provider flat field; "full_name" is first_name + last_name.
DEFAULT_MAPPINGS: dict[str, dict[str, str]] = {
    "hubspot": {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "title": "jobtitle",
    },
    "salesforce": {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title"},
    "greenhouse": {
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "company": "company",
        "title": "title",
    },
    "lever": {"email": "email", "full_name": "name", "title": "headline"},
    "workday": {"email": "email", "first_name": "firstName", "last_name": "lastName"},
    "pandadoc": {"name": "name", "recipient_email": "recipient_email"},
    "clearbit": {"email": "email", "full_name": "name", "company": "company", "title": "title"},
}
DEFAULT_REQUIRED: dict[str, set[str]] = {
    "salesforce": {"last_name"},
    "greenhouse": {"last_name"},
    "lever": {"full_name"},
    "workday": {"last_name"},
    "pandadoc": {"name"},
}
EXTERNAL_ID = "lineup_id"


@dataclass(frozen=True)
class Mapping:
    pairs: tuple[tuple[str, str, bool], ...]  # (local, remote, required)

    def to_remote(self, payload: dict, external_id: str) -> tuple[dict, str | None]:
        """The provider's flat fields for a record, or the first required local field that is missing."""
        fields = {}
        for local, remote, required in self.pairs:
            value = local_value(payload, local)
            if value in (None, ""):
                if required:
                    return {}, local
                continue
            fields[remote] = value
        fields[EXTERNAL_ID] = external_id
        return fields, None

    def remote_name(self, local: str) -> str | None:
        return next((remote for lf, remote, _ in self.pairs if lf == local), None)

    def to_local(self, fields: dict) -> dict:
        """Local payload fields from a provider record (only the mapped ones)."""
        payload = {}
        for local, remote, _ in self.pairs:
            if remote not in fields or fields[remote] is None:
                continue
            if local == "full_name":
                first, _, last = str(fields[remote]).partition(" ")
                payload["first_name"], payload["last_name"] = first, last
            else:
                payload[local] = fields[remote]
        return payload


def local_value(payload: dict, local: str):
    """A local field's value as the provider's field would hold it ("full_name" joins first and last)."""
    if local == "full_name":
        return " ".join(p for p in (payload.get("first_name"), payload.get("last_name")) if p) or None
    return payload.get(local)


def mapping_for(integration, rows=None) -> Mapping:
    """The integration's FieldMappings when it has any, else the provider's defaults."""
    rows = list(integration.field_mappings.all()) if rows is None else rows
    if rows:
        return Mapping(tuple((r.local_field, r.remote_field, r.required) for r in rows))
    required = DEFAULT_REQUIRED.get(integration.provider, set())
    defaults = DEFAULT_MAPPINGS.get(integration.provider, {})
    return Mapping(tuple((local, remote, local in required) for local, remote in defaults.items()))


def record_kind(provider: str) -> str:
    return PROVIDERS[provider].record_kind
