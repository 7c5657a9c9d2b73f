"""Queue function: the automatic completeness pre-check of a submitted guest book."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import guestbook as service


@task_function
def precheck(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.precheck(c, payload)
