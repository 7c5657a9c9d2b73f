"""The log guard plugin (tests/log_guard.py) fails a run whose logs leak personal data."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT
from tests.log_guard import LogGuard

NIK = "7306081508900001"  # passes the NIK validator

LEAKY = f'''
import logging
import warnings

from sapa.settings import load_settings

log = logging.getLogger("sapa.demo")


def test_logs_a_nik():
    log.info("pemohon %s", "{NIK}")


def test_logs_a_phone_in_an_extra():
    log.warning("kontak", extra={{"wa": "0812345678"}})


def test_logs_a_secret(tmp_path):
    s = load_settings(sapa_data_dir=tmp_path)
    log.error("calling with %s", s.task_token)


def test_logs_a_bearer_and_a_passphrase():
    log.info("Authorization: Bearer abcdefghijklmnop passphrase=rahasia123")


def test_warns_with_a_nik():
    warnings.warn("NIK {NIK} tidak cocok")
'''

CLEAN = f'''
import logging

import pytest

log = logging.getLogger("sapa.demo")


def test_masked_and_harmless():
    log.info("pemohon 7306********0001 wa 6281*****890 case 730608-20261129-0001")
    log.info("1764400000 1234567890123456 Bearer *** passphrase=***")


@pytest.mark.log_guard_exempt
def test_exempt_on_purpose():
    log.info("{NIK}")
'''


def _run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=source)
    pytester.makeini("[pytest]\naddopts = -p tests.log_guard -p no:cacheprovider\n")
    # this checkout's package first (as in the parent run), then the repository for `tests`
    env = os.pathsep.join([str(ROOT / "shared"), str(ROOT)])
    pytester._monkeypatch.setenv("PYTHONPATH", env)
    pytester._monkeypatch.setenv("SAPA_DATA_DIR", str(pytester.path / "var"))
    return pytester.runpytest_subprocess("-q", timeout=120)


def test_a_leaking_session_fails_and_its_report_is_masked(pytester: pytest.Pytester) -> None:
    result = _run(pytester, LEAKY)
    out = result.stdout.str()
    # the tests themselves pass; the session fails because of what they logged
    result.assert_outcomes(passed=5, warnings=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "log guard: personal data or secrets in the logs" in out
    for kind in ("nik in sapa.demo", "phone in sapa.demo", "secret:TASK_TOKEN", "bearer"):
        assert kind in out, kind
    assert "passphrase in" in out and "nik in warning" in out
    # the guard's report does not repeat what leaked (pytest's own warnings summary above it
    # prints the warning as it was)
    out = out[out.index("log guard: personal data") :]
    assert NIK not in out and "0812345678" not in out and "abcdefghijklmnop" not in out
    assert "rahasia123" not in out and "7306********0001" in out


def test_a_clean_session_passes(pytester: pytest.Pytester) -> None:
    result = _run(pytester, CLEAN)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "log guard" not in result.stdout.str()


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        (f"nik={NIK}", ["nik"]),
        ("kk 7306080101200001", ["nik"]),  # a KK number has the same shape
        ("1234567890123456", []),  # 16 digits that are no NIK (a timestamp, an id)
        (f"x{NIK}", []),  # glued to letters: part of an identifier, not a number
        ("6281234567890 / 08123456789", ["phone", "phone"]),
        ("6221234567", []),  # not a mobile number
        ("Bearer ***", []),
        ('{"passphrase": "***"}', []),
        ('{"passphrase": "s3cr3t!"}', ["passphrase"]),
    ],
)
def test_what_counts_as_a_leak(text: str, kinds: list[str]) -> None:
    g = LogGuard()
    assert [f.split(":")[0] for f in g.findings(text)] == kinds


def test_short_values_are_not_treated_as_secrets() -> None:
    g = LogGuard()
    g.add_secret("wa_verify_token", "abc")
    g.add_secret("task_token", "s3cr3t-value-1")
    assert g.findings("abc s3cr3t-value-1") == ["secret:TASK_TOKEN"]
    assert g.redact("x s3cr3t-value-1") == "x <TASK_TOKEN>"


def test_the_inner_session_imports_this_checkouts_package(pytester: pytest.Pytester) -> None:
    """The inner run's PYTHONPATH names this checkout's shared/ first, so it tests the code
    beside it, not whichever copy the virtualenv's editable install points at."""
    probe = (
        "import sapa\n\n\ndef test_where():\n"
        f"    assert sapa.__file__.startswith({str(ROOT / 'shared')!r}), sapa.__file__\n"
    )
    _run(pytester, probe).assert_outcomes(passed=1)
