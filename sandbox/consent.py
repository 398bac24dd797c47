"""The OAuth consent page a provider shows to the customer's admin ("Grant access")."""

from html import escape

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:40px}
main{max-width:480px;margin:auto;background:#fff;border-radius:8px;padding:24px 32px;box-shadow:0 1px 4px #0002}
dt{font-weight:600;margin-top:8px}dd{margin:0 0 4px 0;word-break:break-all;font-family:monospace}
input[type=text]{width:100%;padding:6px;font-size:1em;box-sizing:border-box}
button{margin-top:16px;padding:8px 16px;font-size:1em}.grant{background:#0b6;color:#fff;border:0;border-radius:4px}
.error{color:#b00}
"""


def consent_page(
    *,
    provider_name: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: str,
    account: str,
    extra: dict[str, str],
) -> str:
    """HTML form that POSTs back to the same URL; the account field says which customer account grants access."""
    hidden = {"client_id": client_id, "redirect_uri": redirect_uri, "state": state, "scope": scope, **extra}
    hidden_inputs = "\n".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in hidden.items()
        if v is not None
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(provider_name)} (sandbox): authorize application</title>
<style>{_STYLE}</style></head>
<body><main>
<h1>{escape(provider_name)} sandbox</h1>
<p>The application <strong id="client-id">{escape(client_id)}</strong> asks for access to your
{escape(provider_name)} account.</p>
<dl>
<dt>Client ID</dt><dd>{escape(client_id)}</dd>
<dt>Redirect URI</dt><dd id="redirect-uri">{escape(redirect_uri)}</dd>
<dt>Scopes</dt><dd>{escape(scope or "(default)")}</dd>
</dl>
<form method="post">
{hidden_inputs}
<label for="account">Account</label>
<input type="text" id="account" name="account" value="{escape(account)}" required>
<button type="submit" class="grant" name="decision" value="grant">Grant access</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</main></body></html>
"""


def consent_error(provider_name: str, message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(provider_name)} (sandbox): authorization error</title>
<style>{_STYLE}</style></head>
<body><main><h1>{escape(provider_name)} sandbox</h1><p class="error">{escape(message)}</p></main></body></html>
"""
