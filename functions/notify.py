"""Queue function: send one WhatsApp message to a resident (then advance the case if asked)."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import notify as service


@task_function
def notify(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.notify(c, payload, name)
