"""Queue function: prepare the SIAK operator's hand-off sheet after the files are forwarded."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import handoff as service


@task_function
def siak_handoff(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.siak_handoff(c, payload)
