"""Commands of the MQTT side: `worker`, `jobs list`, `jobs run ID`."""

from __future__ import annotations

import json
import logging
import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

jobs_group = AppGroup("jobs", help="Scheduled jobs: list them, or run one now.")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@click.command("worker")
@click.option("--name", default=None,
              help="This worker's name when running several (default: WORKER_NAME). "
                   "Client id MQTT_CLIENT_ID-NAME, shared subscription of MQTT_SHARE_GROUP; "
                   "only the lease holder runs the scheduled jobs.")
def worker_command(name):
    """Run the MQTT ingest and the scheduled jobs (one per deployment, or several
    named workers on a shared subscription)."""
    from .. import worker

    _logging()
    status = worker.run(current_app._get_current_object(), name)
    if status:
        sys.exit(status)


@jobs_group.command("list")
def jobs_list():
    """Every job: id, schedule, last run, next run (if the worker started now)."""
    from ..extensions import db
    from ..jobs import all_jobs
    from ..models import JobRun, utcnow

    runs = {r.job_id: r for r in db.session.scalars(select(JobRun))}
    now = utcnow()
    click.echo("id\tschedule\tlast run\tstatus\tnext run\tdescription")
    for job_id, job in sorted(all_jobs().items()):
        run = runs.get(job_id)
        last = run.started_at.isoformat(timespec="seconds") if run and run.started_at else "-"
        status = run.status if run else "never"
        nxt = job.next_run_after(None, now)
        click.echo(f"{job_id}\t{job.schedule()}\t{last}\t{status}\t"
                   f"{nxt.isoformat(timespec='seconds') if nxt else '-'}\t{job.description}")


class _ShortLivedPublisher:
    """ctx.publish for `jobs run`: a paho connection opened on first use, QoS 1,
    waiting for each PUBACK; closed at the end."""

    def __init__(self, app):
        self.app = app
        self.client = None

    def publish(self, topic: str, payload: dict) -> None:
        from ..ingest.client import make_paho_client, wait_for_broker

        if self.client is None:
            address = wait_for_broker(self.app)
            client, kwargs = make_paho_client(
                self.app, address, f"{self.app.config['MQTT_CLIENT_ID']}-jobs", persistent=False)
            client.connect(address.host, address.port, keepalive=30, **kwargs)
            client.loop_start()
            self.client = client
        info = self.client.publish(topic, json.dumps(payload, ensure_ascii=False), qos=1)
        info.wait_for_publish(10)
        if not info.is_published():
            raise RuntimeError(f"broker did not acknowledge {topic}")

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()


@jobs_group.command("run")
@click.argument("job_id")
def jobs_run(job_id):
    """Run one job now, in the foreground."""
    from ..jobs import all_jobs, run_job

    _logging()
    jobs = all_jobs()
    if job_id not in jobs:
        raise click.ClickException(f"no job {job_id!r}; one of {', '.join(sorted(jobs))}")
    app = current_app._get_current_object()
    ctx = _ShortLivedPublisher(app)
    try:
        summary = run_job(app, jobs[job_id], None, ctx)
    except Exception as exc:
        raise click.ClickException(f"{job_id} failed: {exc}") from None
    finally:
        ctx.close()
    click.echo(f"{job_id}: {summary or 'done'}")
