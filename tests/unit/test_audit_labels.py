"""Every audit event and state the code can record has its Indonesian label (domain/texts.py):
staff never read internal codes such as greet, send_link or form_submitted.

The event names are found in the code itself, not listed by hand: every call that records an
audit event (`Case.apply`, `Case.note`, `Case._record`, and the helpers that pass a name on to
them) with its name as a literal, plus every event and state of the SOP file. A name built at
run time must be known to this test, or it fails and asks for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sapa.domain.sop import load_sop
from sapa.domain.texts import AUDIT_EVENT_LABELS, STATE_LABELS
from tests.conftest import ROOT

PACKAGE = ROOT / "shared" / "sapa"
# Calls that record an event, and where its name is among their positional arguments.
RECORDERS = {"apply", "note", "_record", "_note"}
# Helpers that record "<prefix><their argument>".
PREFIXED = {"_mark": "retention_"}
# Names built at run time, by file: the f-string's source → the names it can make.
BUILT = {
    "services/retention.py": {
        "f'retention_{what}'": set(),  # made only from the literals given to _mark above
    },
}


def recorded_names(package: Path = PACKAGE) -> set[str]:
    """The event names the code under `package` records."""
    names: set[str] = set()
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("dev/"):
            continue  # development tools apply the SOP's own events (seed.py)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if called not in RECORDERS and called not in PREFIXED:
                continue
            for arg in node.args[:3]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value:
                    names.add(PREFIXED.get(called, "") + arg.value)
                    break
                if isinstance(arg, ast.JoinedStr):
                    source = ast.unparse(arg)
                    assert source in BUILT.get(rel, {}), (
                        f"{rel}: an event name built at run time ({source}); add the names "
                        "it can make to BUILT in this test, and their labels to "
                        "AUDIT_EVENT_LABELS"
                    )
                    names |= BUILT[rel][source]
                    break
    return names


def test_every_event_the_code_records_has_an_indonesian_label() -> None:
    sop = load_sop()
    names = recorded_names()
    names |= {s.event for s in sop.steps}
    names |= {t.event for t in sop.transitions}
    # the search really finds the recorders (a test that finds nothing proves nothing)
    assert {"greet", "claim", "reply", "sign_requested", "retention_signed"} <= names
    assert len(names) > 40
    missing = sorted(n for n in names if not AUDIT_EVENT_LABELS.get(n, "").strip())
    assert not missing, f"audit events without a label in AUDIT_EVENT_LABELS: {missing}"
    # a label is a phrase for people, not the code again
    assert all(label != code and "_" not in label for code, label in AUDIT_EVENT_LABELS.items())


def test_every_state_of_the_sop_has_an_indonesian_label() -> None:
    sop = load_sop()
    missing = sorted(s for s in sop.states if not STATE_LABELS.get(s, "").strip())
    assert not missing, f"states without a label in STATE_LABELS: {missing}"
    assert "returned" in sop.states and "form_submitted" in sop.states


def test_the_search_finds_an_unlabelled_event_wherever_it_is_recorded(tmp_path: Path) -> None:
    # GIVEN code that records events in each way the package does
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "probe.py").write_text(
        "def f(c, case, actor, now, act):\n"
        "    case.note(actor, 'probe_noted', now)\n"
        "    case.apply(c.sop, 'probe_applied', actor, now)\n"
        "    act.apply(case, 'probe_acted')\n"
        "    _note(c, case.id, 'probe_helper')\n"
        "    _mark(c, case.id, 'probe', now, {})\n",
        "utf-8",
    )
    # THEN the search finds every name (so the label test above fails on any of them)
    assert recorded_names(tmp_path) == {
        "probe_noted",
        "probe_applied",
        "probe_acted",
        "probe_helper",
        "retention_probe",
    }
