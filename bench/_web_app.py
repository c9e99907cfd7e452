"""The deployed app (wsgi.py) plus a trivial JSON route, for bench/web_rps.py: the
same server, workers and middleware, with no database work."""

from wsgi import app


def _trivial():
    return {"ok": True}


app.add_url_rule("/__bench/trivial", "bench_trivial", _trivial)
