"""Every bullet, numbered and checklist line and every code line of both runbook documents is in the runbook data."""

import re
from pathlib import Path

import pytest

from incidents.checklist import actions, checks
from incidents.runbooks import ACTIONS, CHECKS, PHASE_ORDER, RUNBOOKS

SOURCE = Path(__file__).resolve().parents[2] / "incidents" / "runbooks" / "source"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "runbooks"
LINEUP = "lineup-integration-runbooks.md"
RB09 = "RB-09-integration-provider-outage.md"
ITEM = re.compile(r"^\s*(?:- \[ \]|-|\d+\.)\s+(.*)$")


def normalise(line: str) -> str:
    text = line.replace("**", "").replace("`", "").strip()
    return text[:-1].strip() if text.endswith(":") else text


def parse(text: str) -> tuple[list[str], list[str]]:
    """(items, code lines) of a document part: bullet/numbered/checklist lines and non-empty code-block lines."""
    items, code, in_code = [], [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            if line.strip():
                code.append(line.strip())
        elif ITEM.match(line):
            items.append(normalise(ITEM.match(line).group(1)))
    return items, code


def lineup_sections() -> dict[str, str]:
    text = (SOURCE / LINEUP).read_text()
    parts = re.split(r"^## (\d)\. .*$", text, flags=re.M)
    # parts: [preamble (table of contents), "1", body, "2", body, ...]
    return {f"RB-0{number}": body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def documents() -> dict[str, str]:
    return {**lineup_sections(), "RB-09": (SOURCE / RB09).read_text()}


def runbook_lines(runbook_id: str) -> tuple[list[str], list[str]]:
    steps = RUNBOOKS[runbook_id].steps
    items = [normalise(s.source) for s in steps if s.source]
    code = [line.strip() for s in steps for line in s.block.splitlines() if line.strip()]
    return items, code


@pytest.mark.parametrize("runbook_id", ["RB-01", "RB-02", "RB-03", "RB-04", "RB-09"])
def test_every_document_line_is_a_step_in_order(runbook_id):
    doc_items, doc_code = parse(documents()[runbook_id])
    items, code = runbook_lines(runbook_id)
    assert doc_items, "the document part has no items: the parser is wrong"
    assert items == doc_items
    assert code == doc_code


@pytest.mark.parametrize("runbook_id", ["RB-01", "RB-02", "RB-03", "RB-04", "RB-09"])
def test_steps_go_through_the_phases_in_order(runbook_id):
    phases = [PHASE_ORDER.index(s.phase) for s in RUNBOOKS[runbook_id].steps]
    assert phases == sorted(phases)


def test_rb09_covers_every_phase():
    assert {s.phase for s in RUNBOOKS["RB-09"].steps} == set(PHASE_ORDER)


def test_a_step_names_its_action_and_check_by_the_function_and_its_item_stores_their_names():
    rb09 = RUNBOOKS["RB-09"]
    polling = next(s for s in rb09.steps if s.action is actions.switch_to_polling)
    assert polling.check is checks.mode_polling
    item = next(i for i in rb09.items() if i["text"] == polling.text)
    assert (item["action"], item["check_name"]) == ("switch_to_polling", "mode_polling")
    for runbook in RUNBOOKS.values():
        for step in runbook.steps:
            assert step.action is None or ACTIONS[step.action.name] is step.action, (runbook.id, step.action)
            assert step.check is None or CHECKS[step.check.name] is step.check, (runbook.id, step.check)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/runbooks is not present")
@pytest.mark.parametrize("name", [LINEUP, RB09])
def test_bundled_copies_equal_the_shared_runbooks(name):
    assert (SOURCE / name).read_text() == (SHARED / name).read_text()


def test_each_runbook_has_a_page_that_alerts_can_link_to(client, db):
    from tests.support import factories

    client.force_login(factories.user("viewer-rb", group=factories.VIEWER))
    for code in ("RB-01", "RB-02", "RB-03", "RB-04", "RB-09"):
        page = client.get(f"/runbooks/{code}/")
        assert page.status_code == 200 and code in page.content.decode()
    rb09 = client.get("/runbooks/RB-09/").content.decode()
    assert "Switch to polling" in rb09 and "action:" in rb09
    assert client.get("/runbooks/RB-77/").status_code == 404
    client.logout()
    assert client.get("/runbooks/RB-09/").status_code == 302  # staff only
