"""A payment channel is wholly configured or wholly off: half of one stops the app from
starting, naming the missing variables and never a value; keys stay out of reprs."""

from __future__ import annotations

import pytest

from chargers import create_app, settings
from chargers.devtools.payemu import PayEmulator


def _cfg(tmp_path, **extra) -> dict:
    return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.sqlite'}", "SECRET_KEY": "t",
            "MQTT_URL": "", "RATELIMIT_STORAGE_URI": "memory://", **extra}


def _full(tmp_path) -> dict:
    """Both channels wholly configured, with the official account WeChat Pay is bound to."""
    emu = PayEmulator()
    emu.base_url = "http://127.0.0.1:9"
    return {**emu.config(tmp_path / "keys", "https://chargers.example.org"),
            "WECHAT_MP_APP_ID": emu.appid, "WECHAT_MP_APP_SECRET": "oa-secret-0123"}


def test_no_channel_is_fine(tmp_path):
    app = create_app(_cfg(tmp_path), config_name="testing")
    assert not settings.payments(app.config).enabled


@pytest.mark.parametrize("drop", ["WECHATPAY_APIV3_KEY", "WECHATPAY_PRIVATE_KEY_PATH",
                                  "WECHATPAY_PUBLIC_KEY_ID", "WECHAT_MP_APP_ID",
                                  "WECHAT_MP_APP_SECRET", "ALIPAY_PUBLIC_KEY_PATH",
                                  "PAYMENTS_NOTIFY_URL"])
def test_a_half_configured_channel_stops_the_start(tmp_path, drop):
    full = _full(tmp_path)
    secret = full["WECHATPAY_APIV3_KEY"]
    full[drop] = ""
    with pytest.raises(RuntimeError) as err:
        create_app(_cfg(tmp_path, **full), config_name="testing")
    assert drop in str(err.value)
    assert secret not in str(err.value)


def test_a_key_file_that_is_not_there_stops_the_start(tmp_path):
    full = _full(tmp_path)
    full["ALIPAY_APP_PRIVATE_KEY_PATH"] = str(tmp_path / "missing.pem")
    with pytest.raises(RuntimeError, match="ALIPAY_APP_PRIVATE_KEY_PATH names no readable file"):
        create_app(_cfg(tmp_path, **full), config_name="testing")


def test_both_channels_wholly_configured(tmp_path):
    full = _full(tmp_path)
    app = create_app(_cfg(tmp_path, **full), config_name="testing")
    rules = settings.payments(app.config)
    assert rules.wechat.enabled and rules.alipay.enabled
    assert full["WECHATPAY_APIV3_KEY"] not in repr(rules)
    assert full["WECHAT_MP_APP_SECRET"] not in repr(rules)
    # WeChat Pay reads the one official account: no subscription template is needed.
    assert rules.wechat.appid == full["WECHAT_MP_APP_ID"]
    assert settings.wechat(app.config).app_id == rules.wechat.appid


def test_the_official_account_alone_is_no_wechat_pay(tmp_path):
    """WECHAT_MP_* for the messages alone leave WeChat Pay off, and do not stop the start."""
    app = create_app(_cfg(tmp_path, WECHAT_MP_APP_ID="wx-1", WECHAT_MP_APP_SECRET="s",
                          WECHAT_MP_TEMPLATE_FULL="tpl"), config_name="testing")
    assert not settings.payments(app.config).wechat.enabled
    assert settings.wechat(app.config).enabled


@pytest.mark.parametrize("old,new", sorted(settings.RENAMED.items()))
def test_a_retired_name_stops_the_start(tmp_path, old, new):
    """The official account had two sets of names; the old payments ones are refused,
    naming the one to use, never silently ignored."""
    with pytest.raises(RuntimeError) as err:
        create_app(_cfg(tmp_path, **{old: "x-value-x"}), config_name="testing")
    assert old in str(err.value) and new in str(err.value)
    assert "x-value-x" not in str(err.value)


@pytest.mark.parametrize("with_public_key", [True, False])
def test_platform_certificate_mode_is_refused_at_start(tmp_path, with_public_key):
    """Platform-certificate mode stops the start with a clear message naming public-key
    mode (docs/payments.md says why), with or without a public key beside it."""
    full = _full(tmp_path)
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
