"""Queue function: a resident's keyword command (BATAL)."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import messaging


@task_function
def command(c: Container, payload: dict[str, Any], name: str) -> Any:
    return messaging.command(c, payload, name)
