"""Every variable the code reads from the environment is in README's configuration table (issue 16: several
settings were read but undocumented), and the table names no variable that nothing reads."""

import re

from django.conf import settings

SOURCES = ["lineup_ops", "integrations", "incidents", "dashboard", "sandbox"]
# env.str("NAME", ...), env.bool("NAME"), env("NAME"), env.db("NAME"), env.email_url("NAME"), mandatory("NAME", ...)
READ = re.compile(r"""\b(?:env(?:\.[a-z_]+)?|mandatory)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
# Read through os.environ for a reason (a flag, not a setting): still documented.
ENVIRON = re.compile(
    r"""os\.environ(?:\.get)?[\[(]\s*["']([A-Z][A-Z0-9_]*)["']|["']([A-Z][A-Z0-9_]*)["']\s+(?:not\s+)?in\s+os\.environ"""
)
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "PYTHONUNBUFFERED"}


def variables_read() -> dict[str, str]:
    found = {}
    for top in SOURCES:
        root = settings.BASE_DIR / top
        if not root.is_dir():
            continue
        for path in root.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            for match in READ.finditer(text):
                found.setdefault(match.group(1), str(path.relative_to(settings.BASE_DIR)))
            for match in ENVIRON.finditer(text):
                name = match.group(1) or match.group(2)
                if name not in NOT_SETTINGS:
                    found.setdefault(name, str(path.relative_to(settings.BASE_DIR)))
    return found


def variables_documented() -> set[str]:
    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def test_every_variable_the_code_reads_is_in_readmes_configuration_table():
    read, documented = variables_read(), variables_documented()
    assert len(read) > 20  # the grep works
    missing = {name: where for name, where in read.items() if name not in documented}
    assert not missing, "read but not in README's configuration table: " + ", ".join(
        f"{name} ({where})" for name, where in sorted(missing.items())
    )


def test_readmes_table_names_only_variables_that_are_read():
    stale = variables_documented() - set(variables_read())
    assert not stale, f"in README's configuration table but read nowhere: {', '.join(sorted(stale))}"
