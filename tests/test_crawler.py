"""Every page a person can reach, in both languages (issue 18 item 3): an alley in every
state (tests/every_state.py), then a crawl with the test client (GET only) from the
staff desk as admin and as staff of that alley, and from the alley's resident pages
as anyone. It fails on:

- any 5xx, and any 404 (or 403) answered to a link the product itself printed;
- a Chinese page showing English words, beyond units, protocol names, and the ids,
  names and codes staff typed or piles sent (the seed's `typed`);
- an English page showing Chinese, beyond what staff typed (alley, place, household
  names…).

Leaks not fixed yet are listed per page in KNOWN_LEAKS, so any new one still fails.
Run with `-s` to see how many pages and links each crawl visited.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest

from . import every_state
from .payments_support import with_emulator
from .webtools import login

# Links the crawl never follows: assets, and what would log the crawler out.
SKIP = re.compile(r"^/(static/|logout)")
MAX_QUERIES_PER_PATH = 3  # distinct query strings visited per path (filters, pages)
MAX_PAGES = 600

# Latin a Chinese page may show: units, protocol and file-format names.
# The language switch names English in English; IANA zone ids (Asia/Shanghai) are codes.
ALLOWED_LATIN = {"kWh", "Wh", "W", "V", "A", "MQTT", "API", "CSV", "XLSX", "QR", "JSON",
                 "SMS", "IC", "ID", "PostgreSQL", "SQLite", "Prometheus", "HTTP", "HTTPS",
                 "MB", "English", "Asia", "Shanghai",
                 "jiuru"}  # the example slug (slugs are Latin by rule) of the new-alley form
# Chinese an English page may show: the language switch names its language in it.
ALLOWED_HAN = {"中文"}

# Leaks not fixed yet (issue 19), per language and page (a regex on the path): the
# words allowed there for now. Each entry is a known bug, not a rule: remove it with
# the fix. A leak on another page, or another word, still fails.
def _job_words() -> set[str]:
    """The words of the job catalogue's descriptions (English data, not Babel)."""
    from chargers.jobs import all_jobs

    return {w for j in all_jobs().values() for w in re.findall(r"[A-Za-z][A-Za-z'’]*",
                                                                  j.description)}


def _default_plan_words() -> tuple[set[str], set[str]]:
    """The default inspection plans of a new alley (services/maintenance.DEFAULT_PLANS):
    the Latin words of their checklist keys, and their Chinese names and items."""
    from chargers.services.maintenance.inspections import DEFAULT_PLANS

    keys = {w for p in DEFAULT_PLANS for item in p["checklist"]
            for w in re.findall(r"[A-Za-z]+", item["key"])}
    han = {p["name"] for p in DEFAULT_PLANS} | {item["text"] for p in DEFAULT_PLANS
                                                for item in p["checklist"]}
    return keys, han


_PLAN_KEYS, _PLAN_TEXTS = _default_plan_words()
KNOWN_LEAKS: dict[str, dict[str, set[str]]] = {
    "zh": {
    },
    "en": {
        # The default plans are created in Chinese only (names and checklist items are
        # data, not Babel): an English page shows them as they are.
        r"^/staff/maintenance(/plans/\d+/(check|edit))?$": _PLAN_TEXTS,
    },
}


class PageText(HTMLParser):
    """The text a person sees (script and style skipped; of attributes only title,
    placeholder, alt, aria-label and the value of buttons), and the links the page
    prints. What is in <code> (a command, a setting's name) is code, not words: kept
    apart in `code`."""

    VISIBLE_ATTRS = ("title", "placeholder", "alt", "aria-label")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[str] = []
        self.code: list[str] = []
        self._skip = 0
        self._code = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("code", "kbd"):
            self._code += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img" and a.get("src"):
            self.links.append(a["src"])
        for name in self.VISIBLE_ATTRS:
            if a.get(name):
                self.chunks.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.chunks.append(a["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in ("code", "kbd") and self._code:
            self._code -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            (self.code if self._code else self.chunks).append(data)

    @property
    def text(self) -> str:
        return "\n".join(self.chunks)


@dataclass
class Crawl:
    lang: str
    typed: set[str]
    pages: int = 0
    links: int = 0
    visited: dict[str, int] = field(default_factory=dict)  # url → status
    problems: list[str] = field(default_factory=list)
    queries: Counter = field(default_factory=Counter)

    def allowed_latin(self) -> set[str]:
        words = set(ALLOWED_LATIN)
        for value in self.typed:
            words |= set(re.findall(r"[A-Za-z]+", value))
        return words

    def leaks(self, path: str, text: str) -> set[str]:
        known: set[str] = set()
        for pattern, words in KNOWN_LEAKS[self.lang].items():
            if re.search(pattern, path):
                known |= words
        if self.lang == "zh":
            text = re.sub(r"https?://\S+", "", text.replace("°C", ""))
            allowed = self.allowed_latin() | known
            return {w for w in re.findall(r"[A-Za-z][A-Za-z'’]*", text) if w not in allowed}
        typed = " ".join(self.typed)
        return {run for run in re.findall(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]+", text)
                if run not in typed and run not in ALLOWED_HAN and run not in known}


def _key(url: str) -> tuple[str, str] | None:
    """(path, query without `lang`) of a same-site link, or None for one to skip."""
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or parts.netloc not in ("", "localhost"):
        return None
    if not parts.path.startswith("/") or SKIP.match(parts.path):
        return None
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if k != "lang"))
    return parts.path, query


def crawl(client, starts: list[str], lang: str, typed: set[str]) -> Crawl:
    """Visit every page reachable from `starts`, in `lang`; collect the problems."""
    c = Crawl(lang, typed)
    queue: deque[tuple[str, str, str | None]] = deque((*(_key(s) or ("", "")), None)
                                                      for s in starts)
    seen: set[tuple[str, str]] = set()
    while queue and c.pages < MAX_PAGES:
        path, query, referrer = queue.popleft()
        if (path, query) in seen:
            continue
        seen.add((path, query))
        if query:
            if c.queries[path] >= MAX_QUERIES_PER_PATH:
                continue
            c.queries[path] += 1
        url = path + "?" + "&".join(p for p in (query, f"lang={lang}") if p)
        r = client.get(url, headers={"Accept-Language": lang})
        c.pages += 1
        c.visited[url] = r.status_code
        where = f"{url} (linked from {referrer})" if referrer else url
        if r.status_code >= 500:
            c.problems.append(f"{r.status_code} at {where}")
            continue
        if r.status_code in (403, 404) and referrer is not None:
            c.problems.append(f"{r.status_code} at {where}: a link the product printed")
            continue
        if r.status_code in (301, 302, 303, 307, 308):
            key = _key(urljoin(url, r.headers["Location"]))
            if key:
                c.links += 1
                queue.append((*key, url))
            continue
        if r.mimetype != "text/html":
            continue
        page = PageText()
        page.feed(r.get_data(as_text=True))
        leaks = c.leaks(path, page.text)
        if leaks:
            c.problems.append(f"{lang} page {url} shows {sorted(leaks)}")
        for href in page.links:
            key = _key(urljoin(url, href))
            if key is None:
                continue
            c.links += 1
            if key not in seen:
                queue.append((*key, url))
    return c


@pytest.fixture
def app_config(app_config, emu, tmp_path):
    """Online payments on, against the provider emulator (its pages are crawled too)."""
    return with_emulator(app_config, emu, tmp_path)


@pytest.fixture
def seeded(app, emu):
    with app.app_context():
        return every_state.seed(emu=emu)


def _resident_starts(s: every_state.Seeded) -> list[str]:
    return [f"/a/{s.slug}", *(f"/p/{p}" for p in s.piles), *(f"/r/{t}" for t in s.receipts),
            *s.pay_pages]


def _anyone_starts(s: every_state.Seeded) -> list[str]:
    # and the staff desk, which sends a stranger to the login page (with a message)
    return [*_resident_starts(s), "/staff/"]


def test_every_page_answers_and_speaks_one_language(app, client, seeded):
    s = seeded
    runs: list[tuple[str, Crawl]] = []
    for lang in ("zh", "en"):
        # A fresh client (cookie jar) per person and language.
        runs.append((f"anyone/{lang}", crawl(app.test_client(), _anyone_starts(s), lang,
                                             s.typed)))
        for who in (s.admin, s.staff):
            staff = app.test_client()
            assert login(staff, who).status_code == 302
            runs.append((f"{who}/{lang}", crawl(staff, ["/staff/", *_resident_starts(s)],
                                                lang, s.typed)))
    problems = [p for _, c in runs for p in c.problems]
    print("\ncrawl: " + "; ".join(f"{name}: {c.pages} pages, {c.links} links"
                                  for name, c in runs))
    print(f"crawl: {sum(c.pages for _, c in runs)} pages, {sum(c.links for _, c in runs)} "
          "links in all")
    assert not problems, "\n".join(problems)
    by = dict(runs)
    assert by["root/zh"].pages >= 60 and by["li/zh"].pages >= 40
    assert by["anyone/zh"].pages >= 10
    # The crawl saw the states it was seeded with.
    visited = set(by["root/en"].visited)
    assert any(u.startswith(f"/staff/alleys/{s.slug}?") for u in visited)
    assert any(u.startswith("/staff/billing/review") for u in visited)
    assert any(u.startswith(f"/staff/alleys/{s.slug}/feeder") for u in visited)
    # The closed month with online top-ups and a refund: its statement and month pages,
    # in both languages.
    for lang in ("zh", "en"):
        seen = set(by[f"root/{lang}"].visited)
        assert any(u.startswith("/staff/statements/") for u in seen), lang
        assert any(u.startswith(f"/staff/months/{s.slug}/") for u in seen), lang


def test_the_seed_holds_a_confirmed_and_an_unconfirmed_cutoff(app, client, seeded):
    """The every-state alley holds both ends of the cut-off, and each reads as it is."""
    from chargers.extensions import db
    from chargers.models import Alert

    with app.app_context():
        by_pile = {a.pile_id: a.cutoff for a in db.session.query(Alert).filter_by(code="smoke")}
    assert by_pile == {"EV-3": "confirmed", "EV-5": "unconfirmed"}
    html = client.get(f"/a/{seeded.slug}").get_data(as_text=True)
    assert 'data-cutoff="confirmed"' in html and 'data-cutoff="unconfirmed"' in html
    assert "断电未确认：请远离，不要插拔；工作人员已收到通知" in html
    login(client, seeded.admin)
    desk = client.get("/staff/").get_data(as_text=True)
    assert 'class="cutoff-alarm"' in desk and "5号桩" in desk.split('class="cutoff-alarm"')[1]


def test_the_seed_holds_a_queue_under_the_feeder_limit(app, client, seeded):
    """The every-state alley has a pile that asks first: a resident waits in the queue
    (shown on the pile page), and the feeder page shows the answers and the curve."""
    html = client.get("/p/EV-6?lang=zh").get_data(as_text=True)
    assert "排队中，第 1 位" in html
    login(client, seeded.admin)
    page = client.get(f"/staff/alleys/{seeded.slug}/feeder?lang=zh").get_data(as_text=True)
    assert "C-7777" in page and "未登记的卡" in page and "<polyline" in page
    assert 'data-queue="1"' in page
