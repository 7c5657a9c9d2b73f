"""Build the one deploy bundle every Cloud Function runs from: `dist/sapa-functions.zip`.

Layout of the zip (what Cloud Functions unpacks into its source directory):

- the contents of `functions/` at the root (`main.py` re-exports every entry point lazily);
- `sapa/`, the shared package from `shared/sapa` with its data files and templates, without
  `sapa/dev/` (the local server, the WhatsApp simulator, the demo and the seed: development
  tools no deployed module imports, tests/unit/test_dev_boundary.py);
- `requirements.txt` pinning exactly the runtime dependencies: the `[project] dependencies` of
  pyproject.toml and their transitive closure, each at its version in requirements.lock (no
  development tools);
- `staff.toml`, the office's staff file, when `--staff-file` is given (`STAFF_FILE` in the
  cloud points at it);
- `bsre-ca.pem`, the CA of the BSrE service's internal TLS certificate, when `--bsre-ca` is
  given (`BSRE_CA_BUNDLE` in the cloud, terraform's `bsre_ca_in_bundle`);
- `__pycache__/*.pyc` beside every module: bytecode of the building interpreter (the runtime's
  Python, as for the lock), checked against its source's hash. Without it every new instance
  compiles each module it imports before its first answer (the webhook's path alone is ~40 ms
  of its cold start); an interpreter of another version ignores these files and compiles.

The zip is deterministic: entries sorted, fixed timestamps and permissions, fixed compression,
so the same source gives the same bytes (and terraform redeploys only when something changed).

    python scripts/bundle.py [--out dist/sapa-functions.zip] [--staff-file staff.toml]
                             [--bsre-ca ca.pem]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "dist" / "sapa-functions.zip"

# Where the office's own files go in the bundle; Cloud Functions unpacks it into /workspace, and
# terraform points STAFF_FILE and BSRE_CA_BUNDLE there.
STAFF_NAME = "staff.toml"
BSRE_CA_NAME = "bsre-ca.pem"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
# The bundle writes its own pinned requirements.txt; a stray hand-kept one in functions/ would
# be replaced, never shipped.
_REPLACED = {"requirements.txt"}
# Folders of shared/sapa that are development tools, never deployed.
_DEV_ONLY = {"dev"}


class BundleError(Exception):
    """The bundle cannot be built as asked (a dependency missing from the lock, a bad file)."""


def _lock(root: Path) -> dict[str, tuple[str, str]]:
    """canonical name → (name as locked, version) from requirements.lock."""
    pins: dict[str, tuple[str, str]] = {}
    for line in (root / "requirements.lock").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise BundleError(f"requirements.lock: not a pin: {line!r}")
        pins[canonicalize_name(name)] = (name.strip(), version.strip())
    return pins


def _marker_env(extra: str = "") -> dict[str, str]:
    # The bundle runs on the Python that the lock was resolved with (terraform's runtime is
    # the same minor version), on Linux.
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update({"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"})
    env["extra"] = extra
    return env


def _applies(req: Requirement, extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate(_marker_env(e)) for e in (*extras, ""))


def runtime_requirements(root: Path = ROOT) -> list[str]:
    """`name==version` for every runtime dependency and its dependencies, sorted by name."""
    project = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]
    pins = _lock(root)
    wanted: dict[str, set[str]] = {}  # canonical name → extras asked for
    todo = [Requirement(r) for r in project["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        known = wanted.get(name)
        new_extras = set(req.extras) - (known or set())
        if known is not None and not new_extras:
            continue
        wanted.setdefault(name, set()).update(req.extras)
        if name not in pins:
            raise BundleError(f"{req.name} is a runtime dependency but not in requirements.lock")
        try:
            dist = metadata.distribution(pins[name][0])
        except metadata.PackageNotFoundError:
            raise BundleError(
                f"{req.name} is not installed; run `make venv` (the lock is read through the "
                "installed metadata)"
            ) from None
        if canonicalize_name(dist.version) != canonicalize_name(pins[name][1]):
            raise BundleError(
                f"{req.name} {dist.version} is installed but the lock says {pins[name][1]}; "
                "run `make venv`"
            )
        extras = wanted[name]
        for spec in dist.requires or []:
            sub = Requirement(spec)
            if _applies(sub, extras):
                todo.append(sub)
    return [f"{pins[n][0]}=={pins[n][1]}" for n in sorted(wanted)]


def _walk(base: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in _SKIP_SUFFIXES or name.startswith("."):
                continue
            yield path


def bundle_files(root: Path = ROOT) -> dict[str, bytes]:
    """Archive name → content of every source file of the bundle (requirements excluded)."""
    files: dict[str, bytes] = {}
    functions = root / "functions"
    for path in _walk(functions):
        rel = path.relative_to(functions).as_posix()
        if rel in _REPLACED:
            continue
        files[rel] = path.read_bytes()
    package = root / "shared" / "sapa"
    for path in _walk(package):
        rel = path.relative_to(package)
        if rel.parts[0] in _DEV_ONLY:
            continue
        files["sapa/" + rel.as_posix()] = path.read_bytes()
    return files


# Compiles in a fresh, isolated interpreter: marshal's output depends on how many references
# the process holds to each constant (interned names above all), so bytecode compiled inside a
# process that has imported other things differs from one compiled in a clean one.
_COMPILE = """
import json, py_compile, sys
for source, target, name in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=target, dfile=name, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    except py_compile.PyCompileError as exc:
        print(json.dumps({"name": name, "error": exc.msg}))
        sys.exit(3)
"""


def bytecode(files: dict[str, bytes]) -> dict[str, bytes]:
    """Archive name → content of the checked-hash .pyc of every module in `files` (the same
    bytes for the same source and Python: no timestamps inside, the archive name as the file
    name, never the builder's -O: the runtime loads these files under their plain, unoptimised
    name, so they must hold what the source says, asserts and docstrings included, and the
    same bytes whatever flags the builder ran with)."""
    tag = sys.implementation.cache_tag
    modules = sorted(n for n in files if n.endswith(".py"))
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for i, name in enumerate(modules):
            source, target = Path(tmp) / f"{i}.py", Path(tmp) / f"{i}.pyc"
            source.write_bytes(files[name])
            jobs.append((str(source), str(target), name))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"}
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _COMPILE],
            input=json.dumps(jobs),
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if proc.returncode == 3:
            failed = json.loads(proc.stdout.strip().splitlines()[-1])
            raise BundleError(f"{failed['name']} does not compile: {failed['error']}")
        if proc.returncode != 0:
            raise BundleError(f"compiling the bytecode failed: {proc.stderr[-2000:]}")
        out: dict[str, bytes] = {}
        for _, target, name in jobs:
            folder, _, module = name.rpartition("/")
            cached = f"__pycache__/{module[: -len('.py')]}.{tag}.pyc"
            out[f"{folder}/{cached}" if folder else cached] = Path(target).read_bytes()
    return out


def _check_staff_file(path: Path) -> bytes:
    """The office's staff file must load as a staff directory before it is shipped."""
    sys.path.insert(0, str(ROOT / "shared"))
    from sapa.adapters.embedded.staff_file import FileStaffDirectory

    try:
        staff = FileStaffDirectory(path).all()
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"staff file {path} cannot be read: {exc}") from None
    if not staff:
        raise BundleError(f"staff file {path} lists nobody")
    if any(s.email.endswith("@sapa.test") for s in staff):
        raise BundleError(f"staff file {path} contains development accounts (@sapa.test)")
    if not any("admin" in s.roles for s in staff):
        # it seeds the officers once; from then on only an admin can change them
        raise BundleError(f'staff file {path} names no admin (roles = ["admin"])')
    return path.read_bytes()


def _check_ca(path: Path) -> bytes:
    """A CA bundle must hold at least one PEM certificate (requests reads it as such)."""
    from cryptography import x509

    try:
        data = path.read_bytes()
        certificates = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as exc:
        raise BundleError(f"CA bundle {path} is not PEM certificates: {exc}") from None
    if not certificates:
        raise BundleError(f"CA bundle {path} holds no certificate")
    return data


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, _ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100644 & 0xFFFF) << 16  # regular file, rw-r--r--
    info.create_system = 3  # Unix, whatever builds it
    return info


def build(
    out: Path = DEFAULT_OUT,
    *,
    root: Path = ROOT,
    staff_file: Path | None = None,
    bsre_ca: Path | None = None,
) -> Path:
    """Write the bundle to `out` (atomically) and return its path."""
    files = bundle_files(root)
    files.update(bytecode(files))
    files["requirements.txt"] = (
        "# Runtime dependencies of SAPA, pinned from requirements.lock by scripts/bundle.py.\n"
        + "".join(f"{line}\n" for line in runtime_requirements(root))
    ).encode()
    if staff_file is not None:
        files[STAFF_NAME] = _check_staff_file(staff_file)
    if bsre_ca is not None:
        files[BSRE_CA_NAME] = _check_ca(bsre_ca)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        for name in sorted(files):
            z.writestr(_entry(name), files[name], compresslevel=9)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip to write")
    parser.add_argument(
        "--staff-file", type=Path, default=None, help="the office's staff TOML to ship"
    )
    parser.add_argument(
        "--bsre-ca", type=Path, default=None, help="CA bundle (PEM) of the BSrE service to ship"
    )
    args = parser.parse_args(argv)
    try:
        path = build(args.out, staff_file=args.staff_file, bsre_ca=args.bsre_ca)
    except BundleError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path}  sha256={digest}")
    if args.staff_file is None:
        print(
            "bundle: no --staff-file: in the cloud (STAFF_FILE=/workspace/staff.toml) a first"
            " deploy would seed no officer, so nobody could sign in to add one; build with"
            " `make bundle STAFF_FILE=...` to deploy",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
