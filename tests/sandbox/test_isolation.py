"""The sandbox stands for other companies' servers: it imports nothing of the console, nor Django.

Checked in a fresh interpreter (this test process has the console loaded already): every module of the
`sandbox` package is imported, each import statement a sandbox module runs is watched, and the failure names
the sandbox module and what it imported; anything that arrives another way (through a third-party package)
is named from sys.modules.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("lineup_ops", "integrations", "incidents", "dashboard", "django")

PROBE = """
import builtins, importlib, json, pkgutil, sys

forbidden = set(sys.argv[1].split(","))
direct, real_import = {}, builtins.__import__

def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or "?"
    if level == 0 and name.split(".")[0] in forbidden and importer.split(".")[0] == "sandbox":
        direct.setdefault(importer, set()).add(name)
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = spy
import sandbox

names = ["sandbox"] + sorted(m.name for m in pkgutil.walk_packages(sandbox.__path__, "sandbox."))
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
print(json.dumps({"modules": names, "direct": {k: sorted(v) for k, v in direct.items()}, "loaded": loaded}))
"""


def test_sandbox_imports_nothing_of_the_console():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(FORBIDDEN)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "sandbox.server" in report["modules"] and "sandbox.providers.hubspot" in report["modules"]
    assert not report["direct"], "the sandbox imports the console (or Django):\n  " + "\n  ".join(
        f"{importer} imports {', '.join(mods)}" for importer, mods in sorted(report["direct"].items())
    )
    assert not report["loaded"], f"importing the sandbox loads {', '.join(report['loaded'])}"


def test_no_sandbox_module_imports_the_console_even_lazily():
    """The import statements inside functions too (a lazy import runs only when its function does)."""
    offending = []
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offending += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN
            ]
    assert not offending, "the sandbox imports the console (or Django):\n  " + "\n  ".join(offending)
