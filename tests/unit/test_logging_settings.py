"""The log formatter masks personal data and secrets; settings refuse unsafe cloud setups."""

from __future__ import annotations

import io
import json
import logging
import stat
from pathlib import Path

import pydantic
import pytest

from sapa import log
from sapa.settings import Settings, load_settings


def emit(message: str, **extra: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log.JsonFormatter())
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(message, extra=extra)
    finally:
        logger.removeHandler(handler)
    return dict(json.loads(stream.getvalue()))


def test_nik_and_phone_numbers_are_masked_in_message_and_fields() -> None:
    entry = emit(
        "NIK 7306081708900001 dari 6281234567890 / 081234567890",
        case_id="abc",
        wamid="wamid.6281234567890",
    )
    text = json.dumps(entry)
    assert "7306081708900001" not in text
    assert "6281234567890" not in text and "081234567890" not in text
    assert "7306********0001" in entry["message"]  # type: ignore[operator]
    assert entry["severity"] == "INFO" and entry["case_id"] == "abc"


def test_exceptions_are_masked_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log.JsonFormatter())
    logger = logging.getLogger("test.masking.exc")
    logger.addHandler(handler)
    try:
        raise ValueError("bad NIK 7306085708900002")
    except ValueError:
        logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "7306085708900002" not in stream.getvalue()
    assert "7306********0002" in stream.getvalue()


def test_cloud_settings_refuse_the_dev_login_and_missing_secrets() -> None:
    with pytest.raises(pydantic.ValidationError, match="DEV_LOGIN"):
        Settings(sapa_env="cloud", dev_login=True)
    with pytest.raises(pydantic.ValidationError, match="WA_APP_SECRET"):
        Settings(sapa_env="cloud", dev_login=False, wa_token="t", iap_audience="/projects/1/x")
    with pytest.raises(pydantic.ValidationError, match="IAP_AUDIENCE"):
        Settings(sapa_env="cloud", dev_login=False)


def test_a_refused_setting_never_shows_a_secret_in_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a cloud start with the default dev login and real secrets in the environment
    secret = "Rahasia-Sesi-9f8e7d6c5b4a"
    monkeypatch.setenv("SAPA_ENV", "cloud")
    monkeypatch.setenv("SESSION_SECRET", secret)
    monkeypatch.setenv("WA_TOKEN", secret + "-wa")
    # WHEN the settings refuse it
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(dev_login=True)
    # THEN the error says why and shows no value
    assert "DEV_LOGIN" in str(refused.value)
    assert secret[-8:] not in str(refused.value) and secret[-8:] not in repr(refused.value)
    assert "Rahasia" not in str(refused.value) + repr(refused.value)


def test_local_secrets_are_generated_once_private_and_kept(tmp_path: Path) -> None:
    first = load_settings(sapa_data_dir=tmp_path)
    second = load_settings(sapa_data_dir=tmp_path)
    assert first.secret("link_secret") == second.secret("link_secret")
    assert len(first.secret("wa_app_secret")) >= 32
    mode = stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode)
    assert mode == 0o600
    assert "link_secret" not in repr(first) and first.secret("link_secret") not in repr(first)


def test_a_set_secret_wins_over_the_generated_one(tmp_path: Path) -> None:
    s = load_settings(sapa_data_dir=tmp_path, wa_verify_token="from-env")
    assert s.secret("wa_verify_token") == "from-env"


def test_settings_come_from_the_environment_with_json_for_lists_and_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_UPLOAD_MB", "12")
    monkeypatch.setenv("dev_login", "false")  # any case is read
    monkeypatch.setenv("WA_MEDIA_HOSTS", '["lookaside.fbsbx.com", ".example.net"]')
    monkeypatch.setenv("WA_PHONE_NUMBERS", '{"1099": "730608"}')
    monkeypatch.setenv("NOT_A_SETTING", "ignored")
    s = Settings()
    assert s.max_upload_mb == 12 and s.dev_login is False
    assert s.wa_media_hosts == ["lookaside.fbsbx.com", ".example.net"]
    assert s.wa_phone_numbers == {"1099": "730608"}
    assert Settings(max_upload_mb=3).max_upload_mb == 3  # an argument wins over the environment
    monkeypatch.setenv("WA_PHONE_NUMBERS", "1099=730608")
    with pytest.raises(ValueError, match="WA_PHONE_NUMBERS must be JSON"):
        Settings()
    monkeypatch.setenv("WA_PHONE_NUMBERS", '{"1099": "730608"}')
    monkeypatch.setenv("STORE", "postgres")
    with pytest.raises(pydantic.ValidationError, match="store"):
        Settings()
