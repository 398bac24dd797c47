"""The JSON API at the runbooks' paths (/api/v1/...): bearer tokens, JSON errors, thin views over services."""
