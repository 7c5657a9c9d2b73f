"""A pytest plugin that fails the run when a log line would leak personal data or a secret.

For the whole session a handler on the root logger scans every record, both as production
prints it (sapa.log.JsonFormatter, which masks) and as it was made (message, `extra` fields,
traceback: not every handler masks, and the formatter is a safety net, not a licence), for:

- a NIK or KK number: 16 digits that the NIK validator accepts;
- a phone number: 62… or 08… followed by 8–13 more digits;
- a bearer token, or a passphrase written as `passphrase=…` / `"passphrase": "…"`;
- the value of any secret setting (the Settings fields with repr=False) loaded in the session.

Warnings and log files that tests register with `watch_file(path)` (a subprocess server's
log) are scanned too. At the end of the session the offending records are listed (masked) and
the run fails. The root logger's level is lowered to INFO if it was higher: production logs at
INFO, so that is what must be clean.

Opt out for one test that logs a leak on purpose with the `log_guard_exempt` marker.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sapa.domain.errors import ValidationFailed
from sapa.domain.values import Nik
from sapa.log import JsonFormatter, mask

_NIK = re.compile(r"(?<![0-9A-Za-z])[0-9]{16}(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:62|0)8[0-9]{7,12}(?![0-9A-Za-z])")
_BEARER = re.compile(r"\bBearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")
_PASSPHRASE = re.compile(
    r"""passphrase["']?\s*[:=]\s*["']?(?!\*\*\*|["'])[^\s"',}]{3,}""", re.IGNORECASE
)
MIN_SECRET_LENGTH = 8  # shorter values would match by accident
# Tests of the masking formatter itself log raw numbers on purpose (to see them masked); the
# marker is the way for new ones, these are listed so their file need not know the plugin.
EXEMPT_TESTS = {
    "tests/unit/test_logging_settings.py::test_nik_and_phone_numbers_are_masked_in_message_and_fields",
    "tests/unit/test_logging_settings.py::test_exceptions_are_masked_too",
}
# LogRecord attributes that every record has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@dataclass(frozen=True)
class Offence:
    where: str  # logger name / "warning" / a file name
    what: str  # nik, phone, bearer, passphrase, secret:<SETTING>
    line: str  # the offending text, masked


def _is_nik(digits: str) -> bool:
    try:
        Nik.parse(digits)
    except ValidationFailed:
        return False
    return True


class LogGuard(logging.Handler):
    """Collects offences; thread-safe (servers under test log from their own threads)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.formatter_ = JsonFormatter()
        self.secrets: dict[str, str] = {}  # value → setting name
        self.offences: list[Offence] = []
        self.watched: list[Path] = []
        self.exempt = False
        self.restore: Any = None  # undoes the capture of settings
        self._guard = threading.Lock()

    # -- what counts as a leak --------------------------------------------------------------

    def add_secret(self, name: str, value: object) -> None:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            with self._guard:
                self.secrets.setdefault(value, name.upper())

    def findings(self, text: str) -> list[str]:
        found = [f"nik:{m.group()}" for m in _NIK.finditer(text) if _is_nik(m.group())]
        found += [f"phone:{m.group()}" for m in _PHONE.finditer(text)]
        found += ["bearer" for _ in _BEARER.finditer(text)]
        found += ["passphrase" for _ in _PASSPHRASE.finditer(text)]
        with self._guard:
            secrets = list(self.secrets.items())
        found += [f"secret:{name}" for value, name in secrets if value in text]
        return found

    def check(self, where: str, text: str) -> None:
        if self.exempt:
            return
        found = self.findings(text)
        if not found:
            return
        line = self.redact(text)
        with self._guard:
            for what in found:
                kind = what.split(":", 1)[0] if what.startswith(("nik:", "phone:")) else what
                self.offences.append(Offence(where, kind, line[:500]))

    def redact(self, text: str) -> str:
        """The offending text with what it leaked masked (the report must not leak either)."""
        text = mask(text)
        text = _NIK.sub(lambda m: m.group()[:4] + "*" * 8 + m.group()[12:], text)
        text = _PHONE.sub(lambda m: m.group()[:4] + "*****" + m.group()[-3:], text)
        text = _BEARER.sub("Bearer ***", text)
        text = _PASSPHRASE.sub("passphrase=***", text)
        with self._guard:
            secrets = list(self.secrets.items())
        for value, name in secrets:
            text = text.replace(value, f"<{name}>")
        return text

    # -- logging.Handler ---------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Checks the record as it was made, not only as the JSON formatter prints it: the
        masking formatter is a safety net, and not every handler (a library's, Python's
        last-resort stderr handler, a developer's console) has it."""
        try:
            raw = [record.getMessage()]
            raw += [f"{k}={v!r}" for k, v in vars(record).items() if k not in _STANDARD]
            if record.exc_info:
                raw.append(self.formatter_.formatException(record.exc_info))
            if record.stack_info:
                raw.append(record.stack_info)
            formatted = self.formatter_.format(record)
        except Exception:  # a record that cannot be formatted is the logging module's problem
            return
        self.check(f"{record.name} ({record.levelname})", "\n".join([formatted, *raw]))

    def scan_files(self) -> None:
        for path in self.watched:
            try:
                content = path.read_text("utf-8", errors="replace")
            except OSError:
                continue
            for line in content.splitlines():
                self.check(path.name, line)


_guard: LogGuard | None = None


def guard() -> LogGuard:
    if _guard is None:
        raise RuntimeError("the log guard plugin is not active")
    return _guard


def watch_file(path: str | Path) -> None:
    """Scan this log file (a subprocess server's) at the end of the session; call it before
    the file is removed, or call `scan_file` yourself."""
    if _guard is not None:
        _guard.watched.append(Path(path))


def scan_file(path: str | Path) -> None:
    if _guard is not None:
        _guard.watched.append(Path(path))
        _guard.scan_files()
        _guard.watched.remove(Path(path))


def _capture_settings(g: LogGuard) -> None:
    """Remember every secret setting value the session loads (from the environment, from the
    arguments, or generated under a data directory)."""
    from sapa import settings as module

    names = [n for n, f in module.Settings.model_fields.items() if f.repr is False]
    original_init = module.Settings.__init__
    original_local = module._local_secrets

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        for name in names:
            g.add_secret(name, getattr(self, name, None))

    def local(data_dir: Path) -> dict[str, str]:
        known = original_local(data_dir)
        for name, value in known.items():
            g.add_secret(name, value)
        return known

    module.Settings.__init__ = init  # type: ignore[method-assign]
    module._local_secrets = local

    def restore() -> None:
        module.Settings.__init__ = original_init  # type: ignore[method-assign]
        module._local_secrets = original_local

    g.restore = restore


def pytest_configure(config: pytest.Config) -> None:
    global _guard
    config.addinivalue_line(
        "markers", "log_guard_exempt: this test logs personal data on purpose (not checked)"
    )
    _guard = LogGuard()
    root = logging.getLogger()
    root.addHandler(_guard)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    _capture_settings(_guard)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    exempt = item.get_closest_marker("log_guard_exempt") is not None or item.nodeid in EXEMPT_TESTS
    if _guard is not None:
        _guard.exempt = exempt
    try:
        yield
    finally:
        if _guard is not None:
            _guard.exempt = False


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    if _guard is not None:
        _guard.check(f"warning {nodeid or when}", str(warning_message.message))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _guard is None:
        return
    _guard.scan_files()
    if _guard.offences and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _guard is None or not _guard.offences:
        return
    tr = terminalreporter
    tr.section("log guard: personal data or secrets in the logs", sep="=", red=True, bold=True)
    seen: set[tuple[str, str, str]] = set()
    for o in _guard.offences:
        key = (o.where, o.what, o.line)
        if key in seen:
            continue
        seen.add(key)
        tr.line(f"{o.what} in {o.where}: {o.line}", red=True)
    tr.line(f"{len(seen)} offending record(s); the run fails.", red=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _guard
    if _guard is not None:
        logging.getLogger().removeHandler(_guard)
        if _guard.restore is not None:
            _guard.restore()
        _guard = None
