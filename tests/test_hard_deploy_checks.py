"""Deployment files checked by their own tools (issue 20, item 9): the nginx site with
`nginx -t`, the systemd units with `systemd-analyze verify` (each skipped where the tool
is missing, failed under CHARGERS_TEST_STRICT=1: `.ci/run` installs nginx and systemd);
/metrics only from the monitoring network; the generated Mosquitto settings carry
`message_size_limit` equal to MAX_PAYLOAD_BYTES."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .brokers import skip_unless
from .ingest_support import ROOT

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def test_metrics_only_from_the_monitoring_network():
    site = (DEPLOY / "nginx" / "chargers.conf").read_text()
    geo = re.search(r"geo \$chargers_monitoring \{(.*?)\}", site, re.S).group(1)
    assert re.search(r"default\s+0;", geo) and "MONITORING_NETWORK" in geo
    block = re.search(r"location = /metrics \{(.*?)\n    \}", site, re.S).group(1)
    assert "if ($chargers_monitoring = 0) { return 403; }" in block
    assert "MONITORING_NETWORK" in (ROOT / "docs" / "deploy.md").read_text()


def test_nginx_accepts_the_site(tmp_path):
    skip_unless(NGINX, "nginx")
    skip_unless(shutil.which("openssl"), "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=chargers.example.org", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    site = (DEPLOY / "nginx" / "chargers.conf").read_text()
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    site = re.sub(r"listen (\[::\]:)?(80|443)", lambda m: f"listen {m.group(1) or ''}127.0.0.1:"
                  f"{18080 if m.group(2) == '80' else 18443}" if not m.group(1) else
                  f"listen [::1]:{18080 if m.group(2) == '80' else 18443}", site)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n")
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_systemd_accepts_the_units(tmp_path):
    skip_unless(SYSTEMD_ANALYZE, "systemd-analyze (systemd)")
    # The units name /opt/chargers; verify checks the programs exist, so point them at
    # a scratch checkout with the two programs the units run.
    opt = tmp_path / "opt"
    (opt / ".venv" / "bin").mkdir(parents=True)
    for name in ("gunicorn", "flask"):
        exe = opt / ".venv" / "bin" / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/chargers", str(opt))
        name = unit.name.replace("@.service", "@w1.service")
        (tmp_path / name).write_text(text)
        units.append(f"./{name}")
    r = subprocess.run([SYSTEMD_ANALYZE, "verify", *units], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_generated_mosquitto_settings_limit_the_message_size_and_widen_the_window(
        runner, app, tmp_path):
    app.config["MAX_PAYLOAD_BYTES"] = 3000
    out = tmp_path / "auth"
    r = runner.invoke(args=["mqtt-auth", "--out", str(out), "--backend-user", "chargers-backend",
                            "--backend-password", "pw-1234567890"])
    assert r.exit_code == 0, r.output
    assert "message_size_limit 3000" in (out / "mosquitto-auth.conf").read_text().splitlines()
    from chargers.broker.mosquitto import MAX_INFLIGHT_MESSAGES, conf_text

    deployed = (DEPLOY / "mosquitto" / "chargers.conf").read_text().splitlines()
    assert "message_size_limit 4096" in deployed
    # The window of unacknowledged deliveries: the same in production and embedded.
    line = f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}"
    assert line in deployed
    assert line in conf_text(tmp_path, "127.0.0.1", 1883, "").splitlines()
