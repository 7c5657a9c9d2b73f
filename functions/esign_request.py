"""Queue function: send the approved draft to the signer (TTE, SOP step 8)."""

from typing import Any

from _edge import task_function
from sapa.bootstrap import Container
from sapa.services import signing as service


@task_function
def esign_request(c: Container, payload: dict[str, Any], name: str) -> Any:
    return service.esign_request(c, payload, name)
