"""Queue function: send the signed document to the resident on WhatsApp."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import signing as service


@task_function
def deliver(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.deliver(c, payload, name)
