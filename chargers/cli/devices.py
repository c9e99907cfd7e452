"""Commands for the device side: the development broker, simulated piles and the
Mosquitto password/ACL files. Thin wrappers over chargers.broker,
chargers.simulator and chargers.services.devices.mqtt_auth."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..mqtt_settings import backend_client_ids as backend_client_ids_of
from ..mqtt_settings import parse_url
from ..services.demo import cards as demo_cards
from ..services.devices import mqtt_auth
from ..services.errors import DomainError
from ..simulator import Behaviour, Simulation, alley_piles, broker_address, load_secrets, wait_for_broker


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1883, show_default=True, type=int,
              help="Preferred port; a free one is used (and printed) when it is taken.")
@click.option("--kind", type=click.Choice(["auto", "mosquitto", "embedded"]), default="auto",
              show_default=True,
              help="Mosquitto (auto: when installed) or the embedded amqtt broker.")
@click.option("--unless-mqtt-url", is_flag=True,
              help="When MQTT_URL is set, start nothing and wait for Ctrl-C (for the Procfile).")
@click.option("-v", "--verbose", is_flag=True, help="Log amqtt's connection chatter too.")
def broker_command(host, port, kind, unless_mqtt_url, verbose):
    """Run the development MQTT broker: Mosquitto with the generated configuration
    (password file, ACL, persistence in instance/mosquitto/), or the embedded amqtt
    broker where Mosquitto is missing. Production runs its own Mosquitto."""
    from .. import broker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("amqtt").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    if current_app.config.get("MQTT_URL"):
        if not unless_mqtt_url:
            raise click.ClickException("MQTT_URL is set: the app uses that broker; unset it to embed one")
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        click.echo("MQTT_URL is set: no embedded broker; idling until stopped")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return
    try:
        status = broker.serve(current_app._get_current_object(), host, port, kind, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    if status:
        sys.exit(status)


@click.command("mqtt-auth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for `passwd` and `acl` (Mosquitto password_file / acl_file).")
@click.option("--backend-user", help="Backend's MQTT username (default: from MQTT_URL).")
@click.option("--backend-password", help="Backend's MQTT password (default: from MQTT_URL).")
@click.option("--backend-client-id", "backend_client_ids", multiple=True,
              help="Another backend process's client id (`<user>-<suffix>`: it logs in under it); "
                   "MQTT_CLIENT_ID, MQTT_CLIENT_ID-jobs and MQTT_CLIENT_ID-<name> for each of "
                   "WORKER_NAMES are always included.")
@with_appcontext
def mqtt_auth_command(out_dir, backend_user, backend_password, backend_client_ids):
    """Write a Mosquitto password file, ACL and settings: every registered pile with
    its secret's hash, the backend's logins (user from MQTT_URL); a pile may use only
    its own topics, and every client id is bound to its login."""
    url = current_app.config.get("MQTT_URL")
    if url and not (backend_user and backend_password):
        address = parse_url(url)
        backend_user = backend_user or address.username
        backend_password = backend_password or address.password
    if not backend_user or not backend_password:
        raise click.ClickException("need the backend's login: set MQTT_URL=mqtt://user:pass@host:port "
                                   "or pass --backend-user and --backend-password")
    credentials = mqtt_auth.BackendCredentials(
        backend_user, backend_password, backend_client_ids_of(current_app.config, backend_client_ids))
    try:
        result = mqtt_auth.write_mosquitto_files(out_dir, credentials,
                                                 current_app.config["MQTT_TOPIC_PREFIX"],
                                                 current_app.config["MAX_PAYLOAD_BYTES"])
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"wrote {result['passwd']} ({result['piles']} piles + backend logins "
               f"{', '.join(credentials.login_names)}), {result['acl']} and {result['conf']}")
    click.echo(f"add the lines of {result['conf'].resolve()} to mosquitto.conf (or include its "
               "folder with include_dir), then reload mosquitto (SIGHUP)")


@click.command("simulate")
@click.option("--alley", "slug", required=True, help="Slug of the alley whose piles to simulate.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Simulated time runs this many times faster (meters every 60 s / speed).")
@click.option("--fault-rate", default=0.02, show_default=True, type=click.FloatRange(min=0),
              help="Faults per pile per simulated hour.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many real seconds.")
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON {pile_id: secret}; default instance/demo-pile-secrets.json.")
@click.option("--start-charging", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of ports plugged in right at the start (a livelier demo).")
@click.option("--seed", type=int, help="Random seed, for a reproducible run.")
@click.option("--wait", default=120.0, show_default=True, help="Seconds to wait for the embedded broker.")
@with_appcontext
def simulate_command(slug, speed, fault_rate, duration, secrets_path, start_charging, seed, wait):
    """Simulated piles of an alley: connect with their secrets, boot, and residents
    charge on them; Ctrl-C stops."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = current_app.config
    piles = alley_piles(slug)
    secrets = load_secrets(secrets_path or Path(current_app.instance_path) / "demo-pile-secrets.json")
    address = wait_for_broker(config, wait)
    behaviour = Behaviour(fault_rate=fault_rate, start_charging=start_charging,
                          plugged_need=(0.15, 1.0))
    sim = Simulation(piles, secrets, address, config["MQTT_TOPIC_PREFIX"], speed, behaviour, seed,
                     cards=demo_cards.picker(slug))
    if not sim.piles:
        raise click.ClickException(f"none of {slug}'s {len(piles)} piles has a secret in the secrets file")
    click.echo(f"simulating {len(sim.piles)} piles of {slug} against {address.host}:{address.port} "
               f"at {speed:g}x; Ctrl-C stops")
    signal.signal(signal.SIGTERM, lambda *_: sim.stop())
    follow = None if config.get("MQTT_URL") else (lambda: broker_address(config))
    try:
        sim.run(duration, follow=follow)
    except KeyboardInterrupt:
        pass
    click.echo("simulation stopped")

