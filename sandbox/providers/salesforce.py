"""Salesforce: Contact sObjects, a small SOQL, the updated/ replication call, Trust status; OAuth2.

See docs/provider-contract.md for the shapes; facts (quota, token lifetime) in sandbox/facts.py.
"""

from __future__ import annotations

import base64
import re
import secrets
import zlib
from datetime import UTC, datetime

from sandbox.providers.base import OAuthProvider, random_chars
from sandbox.state import iso_ms, now_ms, parse_time
from sandbox.wire import Response, json_response

SF_VERSION = r"/services/data/v(?P<version>\d+\.\d)"
SF_ID = r"(?P<id>[A-Za-z0-9]{15}|[A-Za-z0-9]{18})"


def sf_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def org_id(account: str) -> str:
    """A stable 18-character Salesforce org id (00D...) for a sandbox account."""
    return "00D" + f"{zlib.crc32(account.encode()):015d}"[-15:]


class Salesforce(OAuthProvider):
    slug = "salesforce"
    token_path = "/services/oauth2/token"
    authorize_path = "/services/oauth2/authorize"
    token_prefix = "00DSANDBOX!"
    statuspage = False
    retry_after = "none"
    status_overrides = {"rate_limited": 403, "duplicate": 400}
    required = ("LastName",)
    email_field = "Email"
    lineup_field = "Lineup_Id__c"
    allowed_fields = frozenset(
        {
            "Email",
            "FirstName",
            "LastName",
            "Title",
            "Lineup_Id__c",
            "Phone",
            "Department",
            "AccountId",
            "MailingCity",
            "MailingCountry",
            "Description",
        }
    )
    DATE_FIELDS = {
        "CreatedDate": "created_ms",
        "LastModifiedDate": "updated_ms",
        "SystemModstamp": "updated_ms",
    }
    routes_spec = [
        ("POST", SF_VERSION + r"/sobjects/Contact/?", "h_create", "api"),
        ("GET", SF_VERSION + r"/sobjects/Contact/updated/?", "h_updated", "api"),
        ("GET", SF_VERSION + r"/sobjects/Contact/" + SF_ID + "/?", "h_get", "api"),
        ("PATCH", SF_VERSION + r"/sobjects/Contact/" + SF_ID + "/?", "h_update", "api"),
        ("POST", SF_VERSION + r"/composite/sobjects/?", "h_collection_create", "api"),
        ("PATCH", SF_VERSION + r"/composite/sobjects/?", "h_collection_update", "api"),
        ("GET", SF_VERSION + r"/query/?", "h_query", "api"),
        ("GET", SF_VERSION + r"/query/(?P<locator>01g[A-Za-z0-9]+-\d+)/?", "h_query_more", "api"),
    ]

    def route_spec(self):
        yield from super().route_spec()
        yield ("GET", r"/v1/instances/(?P<instance>[^/]+)/status/?", "h_trust_status", "status")

    def token_error(self, kind, message):
        code, description = {
            "invalid_request": ("invalid_request", message),
            "unsupported_grant_type": ("unsupported_grant_type", "grant type not supported"),
            "invalid_client": ("invalid_client", "invalid client credentials"),
            "bad_code": ("invalid_grant", "invalid authorization code"),
            "redirect_mismatch": ("redirect_uri_mismatch", "redirect_uri must match configuration"),
            "bad_refresh": ("invalid_grant", "expired access/refresh token"),
        }[kind]
        return json_response(400, {"error": code, "error_description": description})

    def instance_url(self, base_url: str) -> str:
        return f"{base_url}/{self.slug}"

    def token_body(self, req, access, ttl, refresh, grant):
        body = {
            "access_token": access,
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": "refresh_token api",
            "instance_url": self.instance_url(req.base_url),
            # The identity URL names the org (00D...) and the user (005...): one org per sandbox account.
            "id": f"https://login.salesforce.com/id/{org_id(req.account)}/005SANDBOX{req.account}",
            "token_type": "Bearer",
            "issued_at": str(now_ms()),
        }
        if grant == "authorization_code":
            body["refresh_token"] = refresh  # no rotation: the refresh grant returns no refresh token
        return body

    def credentials(self, pstate, account, base_url):
        creds = super().credentials(pstate, account, base_url)
        creds["instance_url"] = self.instance_url(base_url)
        return creds

    def rate_headers(self, info):
        return {"Sforce-Limit-Info": f"api-usage={info.used}/{info.limit}"}

    def error_body(self, kind, message, *, field=None, existing_id=None, code=None):
        if kind in ("auth_invalid", "auth_expired"):
            return [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        if kind == "rate_limited":
            return [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        if kind == "missing_field":
            return [
                {
                    "message": f"Required fields are missing: [{field}]",
                    "errorCode": "REQUIRED_FIELD_MISSING",
                    "fields": [field],
                }
            ]
        if kind == "validation":
            return [
                {
                    "message": message,
                    "errorCode": code or "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "fields": [field] if field else [],
                }
            ]
        if kind == "duplicate":
            url = f"/services/data/v59.0/sobjects/Contact/{existing_id}"
            return [
                {
                    "duplicateResult": {
                        "allowSave": False,
                        "duplicateRule": "Standard_Contact_Duplicate_Rule",
                        "duplicateRuleEntityType": "Contact",
                        "errorMessage": "You're creating a duplicate record. We recommend you use an existing record "
                        "instead.",
                        "matchResults": [
                            {
                                "entityType": "Contact",
                                "errors": [],
                                "matchEngine": "ExactMatchEngine",
                                "matchRecords": [
                                    {
                                        "additionalInformation": [],
                                        "fieldDiffs": [],
                                        "matchConfidence": 100.0,
                                        "record": {
                                            "attributes": {"type": "Contact", "url": url},
                                            "Id": existing_id,
                                        },
                                    }
                                ],
                                "rule": "Standard_Contact_Match_Rule_v1_1",
                                "size": 1,
                                "success": True,
                            }
                        ],
                    },
                    "errorCode": "DUPLICATES_DETECTED",
                    "message": f"Use one of these records? Existing ID: {existing_id}",
                    "fields": [],
                }
            ]
        error_code = (
            code
            or {
                "forbidden": "INSUFFICIENT_ACCESS",
                "unavailable": "SERVER_UNAVAILABLE",
                "not_found": "NOT_FOUND",
                "bad_request": "JSON_PARSER_ERROR",
                "method_not_allowed": "METHOD_NOT_ALLOWED",
            }[kind]
        )
        if kind == "not_found" and message == "Resource not found":
            message = "The requested resource does not exist"
        return [{"message": message, "errorCode": error_code}]

    def unknown_field_message(self, name):
        return f"No such column '{name}' on sobject of type Contact"

    def new_id(self, pstate):
        return "003" + random_chars(15)

    def parse_write(self, req, body):
        return {k: v for k, v in body.items() if k != "attributes"}

    def write(self, pstate, account, fields, rec):
        for name in fields:
            if name in self.DATE_FIELDS or name in ("Id", "IsDeleted"):
                self.fail(
                    "validation",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile or "
                    "permission set.",
                    field=name,
                    code="INVALID_FIELD_FOR_INSERT_UPDATE",
                )
        return super().write(pstate, account, fields, rec)

    def _attributes(self, rec, req):
        version = (req.params.get("version") if req else None) or "59.0"
        return {"type": "Contact", "url": f"/services/data/v{version}/sobjects/Contact/{rec.id}"}

    def render(self, rec, req=None):
        out = {"attributes": self._attributes(rec, req), "Id": rec.id, "IsDeleted": False}
        for name in sorted(self.allowed_fields):
            out[name] = rec.fields.get(name)
        out.update(
            {
                "CreatedDate": sf_date(rec.created_ms),
                "LastModifiedDate": sf_date(rec.updated_ms),
                "SystemModstamp": sf_date(rec.updated_ms),
            }
        )
        return out

    def created(self, rec, req):
        return json_response(201, {"id": rec.id, "success": True, "errors": []})

    def updated(self, rec, req):
        return Response(204)

    # sObject Collections: at most 200 records, allOrNone false, one answer per record in input order.
    COLLECTION_MAX = 200

    def _collection(self, req):
        body = self.read_json_object(req)
        records = body.get("records")
        if not isinstance(records, list) or not records:
            self.fail("bad_request", "records must be a non-empty list", code="JSON_PARSER_ERROR")
        if len(records) > self.COLLECTION_MAX:
            self.fail(
                "bad_request",
                f"Maximum number of records in a collection is {self.COLLECTION_MAX}",
                code="EXCEEDED_ID_LIMIT",
            )
        if body.get("allOrNone") not in (False, None):
            self.fail("bad_request", "the sandbox implements allOrNone=false only", code="INVALID_FIELD")
        return records

    def _collection_item(self, rec, error):
        if error is None:
            return {"id": rec.id, "success": True, "errors": []}
        items = error if isinstance(error, list) else [error]
        return {
            "id": None,
            "success": False,
            "errors": [
                {
                    "statusCode": item.get("errorCode", "UNKNOWN_EXCEPTION"),
                    "message": item.get("message", ""),
                    "fields": item.get("fields") or [],
                }
                for item in items
                if isinstance(item, dict)
            ],
        }

    def h_collection_create(self, pstate, req):
        out = []
        for item in self._collection(req):
            if not isinstance(item, dict) or (item.get("attributes") or {}).get("type") != "Contact":
                out.append(self._collection_item(None, [{"errorCode": "INVALID_TYPE", "message": "Contact"}]))
                continue
            fields = self.parse_write(req, item)
            out.append(self._collection_item(*self.write_item(pstate, req.account, fields, None)))
        return json_response(200, out)

    def h_collection_update(self, pstate, req):
        out = []
        for item in self._collection(req):
            record_id = str((item or {}).get("id") or (item or {}).get("Id") or "")
            rec = pstate.get_record(req.account, record_id)
            if rec is None:
                out.append(
                    self._collection_item(
                        None,
                        [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}],
                    )
                )
                continue
            fields = {k: v for k, v in self.parse_write(req, item).items() if k not in ("id", "Id")}
            rec, error = self.write_item(pstate, req.account, fields, rec)
            out.append(
                self._collection_item(rec, error) if error else {"id": rec.id, "success": True, "errors": []}
            )
        return json_response(200, out)

    def h_updated(self, pstate, req):
        start, end = req.q("start"), req.q("end")
        if not start or not end:
            self.fail("bad_request", "Both start and end are required", code="MISSING_ARGUMENT")
        start_ms, end_ms = parse_time(start), parse_time(end)
        if start_ms is None or end_ms is None:
            self.fail(
                "bad_request",
                "start and end must be valid ISO 8601 date-times",
                code="INVALID_REPLICATION_DATE",
            )
        if end_ms < start_ms:
            self.fail("bad_request", "end must be after start", code="INVALID_REPLICATION_DATE")
        covered = min(end_ms, now_ms())
        ids = [r.id for r in pstate.account_records(req.account) if start_ms <= r.updated_ms <= end_ms]
        return json_response(200, {"ids": ids, "latestDateCovered": sf_date(covered)})

    # --- a very small SOQL: SELECT f, ... FROM Contact [WHERE a op v [AND ...]] [ORDER BY ...] [LIMIT n]
    SOQL = re.compile(
        r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
        r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
        r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
        re.IGNORECASE | re.DOTALL,
    )
    COND = re.compile(r"^\s*(?P<field>\w+)\s*(?P<op>=|!=|<=|>=|<|>)\s*(?P<value>'(?:[^'\\]|\\.)*'|\S+)\s*$")

    def _known(self, name):
        return name == "Id" or name in self.allowed_fields or name in self.DATE_FIELDS

    def _value(self, rec, name):
        if name == "Id":
            return rec.id
        if name in self.DATE_FIELDS:
            return getattr(rec, self.DATE_FIELDS[name])
        return rec.fields.get(name)

    def _parse_soql(self, q: str):
        found = self.SOQL.match(q or "")
        if not found:
            self.fail("bad_request", f"unexpected token in query: {q!r}", code="MALFORMED_QUERY")
        if found["object"].lower() != "contact":
            self.fail(
                "bad_request", f"sObject type '{found['object']}' is not supported.", code="INVALID_TYPE"
            )
        names = [f.strip() for f in found["fields"].split(",") if f.strip()]
        conds = []
        if found["where"]:
            for part in re.split(r"\s+AND\s+", found["where"], flags=re.IGNORECASE):
                cond = self.COND.match(part)
                if not cond:
                    self.fail("bad_request", f"unsupported condition: {part!r}", code="MALFORMED_QUERY")
                conds.append((cond["field"], cond["op"], cond["value"]))
        for name in names + [c[0] for c in conds]:
            if not self._known(name):
                self.fail(
                    "bad_request", f"No such column '{name}' on entity 'Contact'.", code="INVALID_FIELD"
                )
        return names, conds, int(found["limit"]) if found["limit"] else None

    def _cond_ok(self, rec, field, op, raw):
        actual = self._value(rec, field)
        if raw.lower() == "null":
            value = None
        elif raw.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        else:
            value = raw
        if field in self.DATE_FIELDS:
            value = parse_time(value)
            if value is None:
                self.fail("bad_request", f"invalid date/time: {raw}", code="MALFORMED_QUERY")
        elif value is not None:
            value, actual = str(value).lower(), None if actual is None else str(actual).lower()
        if value is None or actual is None:
            return (actual == value) if op == "=" else (actual != value) if op == "!=" else False
        return {
            "=": actual == value,
            "!=": actual != value,
            "<": actual < value,
            "<=": actual <= value,
            ">": actual > value,
            ">=": actual >= value,
        }[op]

    def _query_page(self, pstate, req, locator_key, ids, names, pos, batch):
        records = [pstate.get_record(req.account, i) for i in ids]
        records = [r for r in records if r is not None]
        page = records[pos : pos + batch]
        out = {"totalSize": len(records), "done": pos + batch >= len(records), "records": []}
        for rec in page:
            row = {"attributes": self._attributes(rec, req)}
            for name in names:
                value = self._value(rec, name)
                row[name] = sf_date(value) if name in self.DATE_FIELDS else value
            out["records"].append(row)
        if not out["done"]:
            version = req.params.get("version") or "59.0"
            pstate.query_locators[locator_key] = (req.account, ids, names, batch)
            out["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator_key}-{pos + batch}"
        return json_response(200, out)

    def _batch_size(self, req) -> int:
        options = req.header("Sforce-Query-Options") or ""
        found = re.search(r"batchSize=(\d+)", options)
        return max(1, min(int(found.group(1)), 2000)) if found else 2000

    def h_query(self, pstate, req):
        names, conds, limit = self._parse_soql(req.q("q") or "")
        records = [
            r
            for r in pstate.account_records(req.account)
            if all(self._cond_ok(r, f, op, v) for f, op, v in conds)
        ]
        if limit is not None:
            records = records[:limit]
        key = "01g" + random_chars(15)
        return self._query_page(pstate, req, key, [r.id for r in records], names, 0, self._batch_size(req))

    def h_query_more(self, pstate, req):
        key, _, pos = req.params["locator"].rpartition("-")
        entry = pstate.query_locators.get(key)
        if entry is None or entry[0] != req.account:
            self.fail("not_found", "invalid query locator", code="INVALID_QUERY_LOCATOR", status=400)
        _, ids, names, batch = entry
        return self._query_page(pstate, req, key, ids, names, int(pos), batch)

    def h_trust_status(self, pstate, req):
        health = self.health(pstate)
        status = {"ok": "OK", "degraded": "MINOR_INCIDENT_CORE", "outage": "MAJOR_INCIDENT_CORE"}[health]
        since = iso_ms(pstate.mode_since_ms)
        incidents = (
            []
            if health == "ok"
            else [
                {
                    "id": pstate.mode_since_ms,
                    "message": {"maintenanceId": None},
                    "isCore": True,
                    "affectsAll": False,
                    "createdAt": since,
                    "updatedAt": since,
                    "IncidentImpacts": [
                        {
                            "type": "serviceDisruption" if health == "outage" else "performanceDegradation",
                            "severity": "major" if health == "outage" else "minor",
                            "startTime": since,
                            "endTime": None,
                        }
                    ],
                }
            ]
        )
        return json_response(
            200,
            {
                "key": req.params["instance"].upper(),
                "location": "NA",
                "environment": "production",
                "releaseVersion": "Summer '25 Patch 10",
                "releaseNumber": "256.10",
                "status": status,
                "isActive": True,
                "Products": [{"key": "Salesforce_Services", "order": 1}],
                "Incidents": incidents,
                "Maintenances": [],
                "GeneralMessages": [],
            },
        )
