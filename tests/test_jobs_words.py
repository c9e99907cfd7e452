"""The jobs page in the reader's words (issue 19 item 3): descriptions from a label
table, schedules in words, each run's result from its code and counts; and every label
table has its Chinese (a catalogue test)."""

from __future__ import annotations

from datetime import UTC, datetime

from chargers.extensions import db
from chargers.jobs import Summary, all_jobs, read_summary
from chargers.models import JobRun, JobRunLog

from .webtools import login


def test_a_summary_is_its_english_line_and_keeps_its_code():
    s = Summary("stop asked: 1 monthly_busy", "stop_asked", {"monthly_busy": 1})
    assert s == "stop asked: 1 monthly_busy"  # the log and `jobs run` read this
    data = read_summary(s.stored())
    assert data["code"] == "stop_asked" and data["counts"] == {"monthly_busy": 1}
    assert read_summary("ValueError: boom") == {"text": "ValueError: boom"}


def test_jobs_page_reads_in_chinese_and_in_english(app, client, admin):
    t = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with app.app_context():
        stop = Summary("stop asked: 1 monthly_busy", "stop_asked", {"monthly_busy": 1})
        sent = Summary("3 command(s) sent", "commands_sent", {"n": 3})
        from chargers.jobs import safety as safety_jobs
        review = safety_jobs.risk_review(t, None)  # nothing to do: None
        assert review is None
        review = Summary("0 stopped too long, 10 card profiles updated", "risk_reviewed",
                         {"stopped": 0, "learned": 10})
        for job_id, summary in (("balance-guard", stop), ("commands-dispatch", sent),
                                ("risk-review", review)):
            db.session.add(JobRun(job_id=job_id, started_at=t, finished_at=t, status="ok",
                                  summary=summary.stored()))
            db.session.add(JobRunLog(job_id=job_id, started_at=t, finished_at=t,
                                     duration_s=0.1, status="ok", summary=summary.stored()))
        db.session.commit()
    login(client, "root")
    zh = client.get("/staff/jobs?lang=zh").get_data(as_text=True)
    assert "已要求停止： 包月卡已在另一处充电 1" in zh and "已下发 3 条指令" in zh
    assert "0 次充电超过最长时间被停止，10 张卡的常规充电已学习" in zh
    assert "每 10 秒" in zh and "每小时第 05 分" in zh and "每天 03:30" in zh
    assert "余额或月卡时长用完" in zh
    for code in ("interval", "seconds=", "monthly_busy", "stop asked", "cron "):
        assert code not in zh, code
    en = client.get("/staff/jobs?lang=en").get_data(as_text=True)
    assert "Stop asked: another session on the monthly card 1" in en
    assert "every 10 s" in en and "every day at 03:30" in en


def test_every_job_has_a_label():
    from chargers.labels import JOB_LABELS

    assert set(all_jobs()) == set(JOB_LABELS)
