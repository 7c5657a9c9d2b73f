"""Queue function: a resident's keyword command (BATAL)."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import commands as service


@task_function
def command(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.command(c, payload, name)
