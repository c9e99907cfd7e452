"""An emulator of the WeChat official account API that the product calls, for tests
and `make run` (there is no network here). Never imported by production code.

It implements, as WeChat's public reference documents them:
- `GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…` →
  `{"access_token", "expires_in"}`; a wrong appid → errcode 40013, a wrong secret →
  40125, a wrong grant_type → 40002;
- `POST /cgi-bin/message/subscribe/bizsend?access_token=…` (订阅通知) with the JSON
  `{"touser", "template_id", "page"?, "data": {"thing1": {"value": …}, …}}` →
  `{"errcode": 0, "errmsg": "ok", "msgid": n}`; an unknown token → 40001, an expired one
  → 42001, not JSON → 47001, a missing field → 47003 (also for a thing value over 20
  characters), an openid that refused the messages → 43101.

- the web OAuth (网页授权): `GET /connect/oauth2/authorize?appid&redirect_uri&scope&state`
  → 302 to redirect_uri with `code` and `state` (the emulated WeChat user is kept in a
  cookie); `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
  → `{"access_token", "openid", …}`; a wrong appid or secret → 40125, a used or unknown
  code → 40029. It is the same official account (AppID/AppSecret) as the messages', as
  in the product's one configuration (WECHAT_MP_*).

What it received is kept (`received`, `GET /messages.json`) and shown at `GET /` (the
demo's page of messages sent to residents). Tests drive it: `expire_tokens()` makes
every token issued so far expired, `refuse(openid)` makes that user refuse.

    python -m chargers.devtools.wechat_mp --port 5081 --appid wx-demo --secret demo-secret
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

THING_MAX = 20


class WechatMP:
    """The emulated official account: one AppID/AppSecret pair."""

    def __init__(self, app_id: str = "wx-test-app", app_secret: str = "test-secret",
                 host: str = "127.0.0.1", port: int = 0, expires_in: int = 7200):
        self.app_id, self.app_secret, self.expires_in = app_id, app_secret, expires_in
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.received: list[dict] = []
        self.answers: list[dict] = []  # every answer to a send, in order
        self.token_calls = 0
        self.refused: set[str] = set()
        self.codes: dict[str, str] = {}  # OAuth code -> openid
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls -----------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def refuse(self, openid: str) -> None:
        self.refused.add(openid)

    # --- the API -----------------------------------------------------------------

    def token(self, query: dict) -> dict:
        with self._lock:
            self.token_calls += 1
        if query.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if query.get("appid") != self.app_id:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != self.app_secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        tok = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[tok] = time.monotonic() + self.expires_in
        return {"access_token": tok, "expires_in": self.expires_in}

    def config(self) -> dict:
        """The product's settings for this official account (WECHAT_MP_*)."""
        return {"WECHAT_MP_APP_ID": self.app_id, "WECHAT_MP_APP_SECRET": self.app_secret,
                "WECHAT_MP_API_BASE": self.base_url,
                "WECHAT_MP_OAUTH_URL": f"{self.base_url}/connect/oauth2/authorize"}

    def authorize(self, query: dict, user: str | None) -> tuple[int, str, str]:
        """The OAuth authorize page: (status, redirect or error, the user kept)."""
        if query.get("appid") != self.app_id or query.get("scope") not in (
                "snsapi_base", "snsapi_userinfo") or not query.get("redirect_uri"):
            return 400, "invalid appid, scope or redirect_uri", ""
        user = user or "o" + secrets.token_urlsafe(20)[:27]
        code = secrets.token_hex(16)
        with self._lock:
            self.codes[code] = user
        sep = "&" if "?" in query["redirect_uri"] else "?"
        return 302, (f"{query['redirect_uri']}{sep}"
                     + urlencode({"code": code, "state": query.get("state", "")})), user

    def oauth_token(self, query: dict) -> dict:
        if query.get("appid") != self.app_id or query.get("secret") != self.app_secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            openid = self.codes.pop(query.get("code", ""), None)
        if openid is None or query.get("grant_type") != "authorization_code":
            return {"errcode": 40029, "errmsg": "invalid code"}
        return {"access_token": secrets.token_hex(16), "expires_in": 7200,
                "refresh_token": secrets.token_hex(16), "openid": openid,
                "scope": query.get("scope", "snsapi_base")}

    def bizsend(self, query: dict, raw: bytes) -> dict:
        answer = self._bizsend(query, raw)
        with self._lock:
            self.answers.append(answer)
        return answer

    def _bizsend(self, query: dict, raw: bytes) -> dict:
        tok = query.get("access_token", "")
        with self._lock:
            expiry = self.tokens.get(tok)
        if expiry is None:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        if expiry <= time.monotonic():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        try:
            body = json.loads(raw)
        except ValueError:
            return {"errcode": 47001, "errmsg": "data format error"}
        if not isinstance(body, dict) or not body.get("touser") or not body.get("template_id") \
                or not isinstance(body.get("data"), dict):
            return {"errcode": 47003, "errmsg": "argument invalid! touser/template_id/data"}
        for key, item in body["data"].items():
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or (key.startswith("thing") and len(value) > THING_MAX):
                return {"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value"}
        if body["touser"] in self.refused:
            return {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
        msgid = next(self._ids)
        with self._lock:
            self.received.append({"msgid": msgid, "touser": body["touser"],
                                  "template_id": body["template_id"],
                                  "page": body.get("page", ""), "data": body["data"],
                                  "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")})
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def page(self) -> str:
        rows = "".join(
            f"<tr><td>{m['msgid']}</td><td>{html.escape(m['at'])}</td>"
            f"<td>{html.escape(m['touser'])}</td><td>{html.escape(m['template_id'])}</td>"
            "<td>" + "<br>".join(f"{html.escape(k)}: {html.escape(str(v.get('value', '')))}"
                                 for k, v in m["data"].items()) + "</td></tr>"
            for m in reversed(self.received))
        return ("<!doctype html><meta charset=utf-8><meta name=viewport "
                "content='width=device-width'><title>WeChat emulator: messages</title>"
                "<style>body{font:14px sans-serif;margin:1em}td,th{border-bottom:1px solid #ddd;"
                "padding:4px;vertical-align:top;text-align:left}</style>"
                "<h1>WeChat subscription messages received (emulator)</h1>"
                f"<p>AppID {html.escape(self.app_id)} · {len(self.received)} messages</p>"
                "<table><tr><th>#</th><th>at</th><th>openid</th><th>template</th>"
                f"<th>data</th></tr>{rows or '<tr><td colspan=5>none yet</td></tr>'}</table>")

    # --- serving -------------------------------------------------------------------

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, obj) -> None:
                self._answer(200, json.dumps(obj, ensure_ascii=False).encode(),
                             "application/json; charset=utf-8")

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/cgi-bin/token":
                    self._json(outer.token(query))
                elif parts.path == "/sns/oauth2/access_token":
                    self._json(outer.oauth_token(query))
                elif parts.path == "/connect/oauth2/authorize":
                    jar = SimpleCookie(self.headers.get("Cookie", ""))
                    kept = jar["emu_wx_user"].value if "emu_wx_user" in jar else None
                    status, where, user = outer.authorize(query, kept)
                    if status != 302:
                        self._answer(status, where.encode(), "text/plain")
                        return
                    self.send_response(302)
                    self.send_header("Location", where)
                    self.send_header("Set-Cookie", f"emu_wx_user={user}; Max-Age=31536000; Path=/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif parts.path == "/messages.json":
                    self._json(outer.received)
                elif parts.path == "/":
                    self._answer(200, outer.page().encode(), "text/html; charset=utf-8")
                else:
                    self._answer(404, b"not found", "text/plain")

            def do_POST(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if parts.path == "/cgi-bin/message/subscribe/bizsend":
                    self._json(outer.bizsend(query, raw))
                else:
                    self._answer(404, b"not found", "text/plain")

        return Handler

    def start(self) -> WechatMP:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WechatMP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5081)
    ap.add_argument("--appid", default="wx-demo-app")
    ap.add_argument("--secret", default="demo-secret")
    args = ap.parse_args(argv)
    mp = WechatMP(args.appid, args.secret, args.host, args.port)
    print(f"WeChat emulator on {mp.base_url} (messages: {mp.base_url}/)", flush=True)
    try:
        mp.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
