"""Each SOP step has one home, found by its event (services.steps), and each queue task runs the
service function of its own name (functions/<kind>.py → services.<module>.<kind>)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from sapa.domain.sop import load_sop
from sapa.services import steps, workflow

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
QUEUES = ROOT / "shared" / "sapa" / "data" / "queues.json"


def test_every_officer_step_of_the_sop_has_its_handler_and_nothing_else_does() -> None:
    sop = load_sop()
    officer_steps = {s.event for s in sop.steps if s.role != "pemohon"}
    assert set(steps.STEPS) == officer_steps
    for event, handler in steps.STEPS.items():
        assert handler.__name__ == event, f"the handler of {event!r} must be named {event}"
        assert handler.__doc__, f"steps.{event} must say what the step is"


def test_a_move_around_the_steps_is_never_a_step() -> None:
    assert not set(workflow.MOVES) & set(steps.STEPS)


def _task_functions() -> dict[str, ast.FunctionDef]:
    found = {}
    for path in sorted(FUNCTIONS.glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                "task_function" in ast.unparse(d) for d in node.decorator_list
            ):
                assert path.stem == node.name, f"{path.name} defines task {node.name}"
                found[node.name] = node
    return found


def test_every_queue_has_its_task_function_calling_the_service_of_the_same_name() -> None:
    kinds = set(json.loads(QUEUES.read_text("utf-8"))["queues"])
    functions = _task_functions()
    assert set(functions) == kinds
    for name, node in functions.items():
        calls = [
            n.func
            for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        ]
        called = {ast.unparse(f) for f in calls}
        assert called == {f"service.{name}"}, f"functions/{name}.py calls {called}"
