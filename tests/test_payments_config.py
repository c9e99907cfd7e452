"""A payment channel is wholly configured or wholly off: half of one stops the app from
starting, naming the missing variables and never a value; keys stay out of reprs."""

from __future__ import annotations

import pytest

from chargers import create_app, settings
from chargers.devtools.payemu import PayEmulator


def _cfg(tmp_path, **extra) -> dict:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.sqlite'}", "SECRET_KEY": "t",
            "MQTT_URL": "", "RATELIMIT_STORAGE_URI": "memory://", **extra}


def test_no_channel_is_fine(tmp_path):
    app = create_app(_cfg(tmp_path), config_name="testing")
    assert not settings.payments(app.config).enabled


@pytest.mark.parametrize("drop", ["WECHATPAY_APIV3_KEY", "WECHATPAY_PRIVATE_KEY_PATH",
                                  "WECHATPAY_PUBLIC_KEY_ID", "WECHAT_APPID", "ALIPAY_PUBLIC_KEY_PATH",
                                  "PAYMENTS_NOTIFY_URL"])
def test_a_half_configured_channel_stops_the_start(tmp_path, drop):
    emu = PayEmulator()
    emu.base_url = "http://127.0.0.1:9"
    full = emu.config(tmp_path / "keys", "https://chargers.example.org")
    secret = full["WECHATPAY_APIV3_KEY"]
    full[drop] = ""
    with pytest.raises(RuntimeError) as err:
        create_app(_cfg(tmp_path, **full), config_name="testing")
    assert drop in str(err.value)
    assert secret not in str(err.value)


def test_a_key_file_that_is_not_there_stops_the_start(tmp_path):
    emu = PayEmulator()
    full = emu.config(tmp_path / "keys", "https://chargers.example.org")
    full["ALIPAY_APP_PRIVATE_KEY_PATH"] = str(tmp_path / "missing.pem")
    with pytest.raises(RuntimeError, match="ALIPAY_APP_PRIVATE_KEY_PATH names no readable file"):
        create_app(_cfg(tmp_path, **full), config_name="testing")


def test_both_channels_wholly_configured(tmp_path):
    emu = PayEmulator()
    full = emu.config(tmp_path / "keys", "https://chargers.example.org")
    app = create_app(_cfg(tmp_path, **full), config_name="testing")
    rules = settings.payments(app.config)
    assert rules.wechat.enabled and rules.alipay.enabled
    assert full["WECHATPAY_APIV3_KEY"] not in repr(rules)
    assert full["WECHAT_APP_SECRET"] not in repr(rules)


@pytest.mark.parametrize("with_public_key", [True, False])
def test_platform_certificate_mode_is_refused_at_start(tmp_path, with_public_key):
    """Platform-certificate mode stops the start with a clear message naming public-key
    mode (docs/payments.md says why), with or without a public key beside it."""
    emu = PayEmulator()
    full = emu.config(tmp_path / "keys", "https://chargers.example.org")
    certs = tmp_path / "platform-certs"
    certs.mkdir()
    full["WECHATPAY_PLATFORM_CERT_DIR"] = str(certs)
    if not with_public_key:
        full["WECHATPAY_PUBLIC_KEY_PATH"] = full["WECHATPAY_PUBLIC_KEY_ID"] = ""
    with pytest.raises(RuntimeError) as err:
        create_app(_cfg(tmp_path, **full), config_name="testing")
    assert "platform-certificate mode (WECHATPAY_PLATFORM_CERT_DIR) is not supported" in str(err.value)
    assert "WECHATPAY_PUBLIC_KEY_PATH and WECHATPAY_PUBLIC_KEY_ID" in str(err.value)
    assert full["WECHATPAY_APIV3_KEY"] not in str(err.value)
