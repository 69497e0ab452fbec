#!/usr/bin/env python3
"""The waiting room in the reference web frontend (web/queue.js), in a real browser, against
a real slotd.

Starts `slotd serve --ephemeral --admin-token ...` (captcha test mode, as the journey), logs
the demo person in, then loads (`PUT /v1/admin/calendar`) a phase 03 with one site whose
waiting room has been open for a minute and whose booking opens ~10 s later. Then, at phone
width and by what the person sees: choosing phase 03 queues them (one `POST .../queue`), the
waiting room says that places are drawn at the opening (no position yet, the opening's
HH:MM) with a countdown to the next update; a reload rejoins with the saved ticket (a `GET`
with `Queue-Ticket`, no second `POST`); the Book buttons wait; the same in English. After
the opening the page, polling exactly after each `Retry-After`, says it is the person's
turn and enables booking. A booking refused `403 not-admitted` (injected once) sends them
back to the waiting room, which shows their place (an injected standing) and polls until
they are admitted again; then the booking (with the ticket as `Queue-Ticket`) succeeds and
shows in My bookings. Screenshots of the waiting room (zh-TW and en, phone width) go to
WEB_TEST_OUT. Fails on any console error, page error or CSP violation but the injected 403.

Environment: SLOTD_BIN (default target/debug/slotd), WEB_TEST_OUT (default
target/web-test), CHROMIUM (default /usr/bin/chromium). No arguments. Exits 0 on success,
1 with the reason on failure.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from journey import (  # noqa: E402
    PERSON, PHONE, TIMEOUT_MS, Captchas, check, heading, run_in_browser, shown,
)

ADMIN = "queue-test-admin-secret"
PHASE = "03"
SITE = {
    "id": "S0001", "name": "新北市萬里區衛生所", "county": "新北市", "district": "萬里區",
    "address": "新北市萬里區 (207) Wanli District",
}
# Seconds from loading the calendar to the opening: enough to see the pre-queue, reload,
# search and take two screenshots; short enough for a quick run.
OPENS_IN = 10
TAIPEI = timezone(timedelta(hours=8))
QUEUE = re.compile(rf"/v1/phases/{PHASE}/queue$")
BOOK = re.compile(rf"/v1/phases/{PHASE}/bookings$")


def load_calendar(base: str) -> datetime:
    """Adds phase 03 with a waiting room (open a minute ago) and four small slots at one
    site; answers its `opens_at`."""
    now = datetime.now(TAIPEI)
    opens_at = (now + timedelta(seconds=OPENS_IN)).replace(microsecond=0)
    day = (now + timedelta(days=3)).date().isoformat()
    slots = [
        {"id": f"Q-{day}-{half}-{vaccine}", "site": SITE["id"], "date": day, "period": period,
         "vaccine": vaccine, "capacity": 5}
        for half, period in (("AM", "09:00-12:00"), ("PM", "13:30-16:30"))
        for vaccine in ("AZ", "Moderna")
    ]
    calendar = {"sites": [SITE], "phases": [{
        "id": PHASE, "name": f"第{PHASE}期", "vaccines": ["AZ", "Moderna"],
        "opens_at": opens_at.isoformat(), "closes_at": (now + timedelta(days=1)).isoformat(timespec="seconds"),
        "waiting_room": {"prequeue_opens_at": (now - timedelta(minutes=1)).isoformat(timespec="seconds")},
        "slots": slots,
    }]}
    req = urllib.request.Request(
        f"{base}/v1/admin/calendar", data=json.dumps(calendar).encode(), method="PUT",
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        check(r.status == 200, f"PUT /v1/admin/calendar answered {r.status}")
    return opens_at


class QueueTraffic:
    """The page's waiting-room and booking requests, as the browser sent and received them."""

    def __init__(self, page: Page) -> None:
        self.events: list[dict] = []
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("load", lambda _: self.events.append({"kind": "load", "at": time.monotonic()}))

    def _request(self, request) -> None:
        if QUEUE.search(request.url) or BOOK.search(request.url):
            self.events.append({
                "kind": "request", "at": time.monotonic(), "method": request.method, "url": request.url,
                "ticket": request.headers.get("queue-ticket"),
            })

    def _response(self, response) -> None:
        if QUEUE.search(response.url):
            try:
                body = response.json()
            except PlaywrightError:
                body = {}
            retry = response.headers.get("retry-after")
            self.events.append({
                "kind": "response", "at": time.monotonic(), "method": response.request.method,
                "status": response.status, "retry_after": int(retry) if retry else None, "body": body,
            })

    def requests(self, method: str, what: re.Pattern = QUEUE) -> list[dict]:
        return [e for e in self.events if e["kind"] == "request" and e["method"] == method and what.search(e["url"])]

    def check_polls_honour_retry_after(self) -> None:
        """Every poll after a waiting answer came when its Retry-After said: not before, and
        not much later (timers, a busy CI machine)."""
        last = None
        for e in self.events:
            if e["kind"] == "load":  # a reload starts afresh, with a poll at once
                last = None
            elif e["kind"] == "response" and e["status"] in (200, 201):
                last = e if e["body"].get("state") == "waiting" and e["retry_after"] is not None else None
            elif e["kind"] == "request" and e["method"] == "GET" and QUEUE.search(e["url"]) and last:
                waited = e["at"] - last["at"]
                check(last["retry_after"] - 0.2 <= waited <= last["retry_after"] + 1.5,
                      f"a poll came {waited:.2f} s after an answer with Retry-After: {last['retry_after']}")
                last = None


def shoot_phone(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}-phone.png"), full_page=True)


def walk(page: Page, base: str, out: Path) -> None:
    captchas = Captchas(page)
    traffic = QueueTraffic(page)
    expect.set_options(timeout=TIMEOUT_MS)

    # Log in (the page opens My bookings after it, which needs no phases).
    page.goto(base + "/#/login?next=me")
    expect(heading(page, "登入預約")).to_be_visible()
    shown(page).get_by_label("健保卡號", exact=True).fill(PERSON["card"])
    shown(page).get_by_label("健保卡密碼", exact=True).fill(PERSON["password"])
    captchas.solve("#li-captcha-img", "#li-captcha")
    page.locator("#li-form button[type=submit]").click()
    expect(heading(page, "我的預約")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("已登入")

    # The operators open a phase with a waiting room; booking opens in OPENS_IN seconds.
    opens_at = load_calendar(base)
    opening = time.monotonic() + OPENS_IN - 1
    clock = opens_at.strftime("%H:%M")

    # The person opens booking and picks phase 03: they are queued, before the shuffle.
    page.get_by_role("link", name="預約接種", exact=True).first.click()
    expect(heading(page, "查詢可預約時段")).to_be_visible()
    shown(page).get_by_label("期別", exact=True).select_option(PHASE)
    panel = page.locator("#bk-queue")
    message = page.locator("#bk-queue-msg")
    expect(panel).to_be_visible()
    expect(heading(page, "等候室")).to_be_visible()
    expect(message).to_contain_text("您已在等候室")
    expect(message).to_contain_text(f"{clock} 開放預約時，所有已在等候室的人會隨機排定順序")
    expect(message).to_contain_text("提早進來並不會排得比較前面")
    expect(message).to_have_attribute("aria-live", "polite")
    facts = page.locator("#bk-queue-facts")
    expect(facts).to_contain_text(f"您的順位{clock} 開放時抽籤決定")
    expect(facts).to_contain_text("預估等候時間尚無法估計")
    expect(facts).to_contain_text("本期剩餘名額20")
    countdown = page.locator("#bk-queue-next")
    expect(countdown).to_have_text(re.compile(r"^\d+ 秒後更新$"))
    expect(countdown).to_have_attribute("aria-live", "off")
    check(time.monotonic() < opening, "the opening came before the pre-queue was seen: raise OPENS_IN")
    posts = traffic.requests("POST")
    check(len(posts) == 1, f"choosing the phase queued {len(posts)} times")
    first = next(e for e in traffic.events if e["kind"] == "response" and e["method"] == "POST")
    ticket = first["body"].get("ticket")
    check(first["status"] == 201 and first["body"].get("position") is None and ticket,
          f"the queue answered {first['status']} {first['body']}")
    expect(page).to_have_url(re.compile(rf"#/book\?phase={PHASE}$"))

    # A reload comes back to the same room with the saved ticket: a poll, not a new queueing.
    page.reload()
    expect(message).to_contain_text("您已在等候室")
    check(len(traffic.requests("POST")) == 1, "the reload queued again instead of reusing the ticket")
    gets = traffic.requests("GET")
    check(gets and gets[0]["ticket"] == ticket, f"the reload's poll carried {gets[:1]}, not the ticket {ticket!r}")

    # Meanwhile the person finds a slot; the Book buttons wait for their turn.
    shown(page).get_by_label("縣市", exact=True).select_option(SITE["county"])
    shown(page).get_by_label("鄉鎮市區", exact=True).select_option(SITE["district"])
    shown(page).get_by_label("接種日期", exact=True).select_option(index=1)
    page.get_by_role("button", name="查詢").click()
    expect(page.locator("#bk-sites li.site-card").first).to_contain_text(SITE["name"])
    book = page.locator("#bk-sites button.book")
    expect(book).to_have_count(4)
    for i in range(4):
        expect(book.nth(i)).to_be_disabled()
    expect(page.locator("#bk-queue-note")).to_have_text("輪到您時，「預約」按鈕就會啟用。")
    panel.scroll_into_view_if_needed()
    shoot_phone(page, out, "zh-TW-waiting-room")

    page.get_by_label("語言", exact=True).select_option("en")
    expect(heading(page, "Waiting room")).to_be_visible()
    expect(message).to_contain_text(f"At {clock}, when booking opens, everyone here gets a random place in the queue")
    expect(message).to_contain_text("arriving earlier does not help")
    expect(facts).to_contain_text(f"Your placeAssigned at the opening, {clock}")
    expect(countdown).to_have_text(re.compile(r"^Next update in \d+ s$"))
    expect(page.locator("#bk-queue-note")).to_have_text("The Book buttons work once it is your turn.")
    check(time.monotonic() < opening, "the opening came before the pre-queue was seen: raise OPENS_IN")
    shoot_phone(page, out, "en-waiting-room")

    # The opening: the shuffle, then the person's turn.
    expect(message).to_have_text("It's your turn — book now: search and choose a slot below.",
                                 timeout=(OPENS_IN + 20) * 1000)
    expect(facts).to_contain_text("Your place1")
    expect(shown(page).get_by_label("Phase", exact=True).locator("option:checked")).to_have_text("Phase 03 (open)")
    expect(panel).to_have_attribute("data-state", "admitted")
    expect(countdown).to_be_hidden()
    expect(page.locator("#bk-queue-note")).to_be_hidden()
    expect(book.first).to_be_enabled()
    traffic.check_polls_honour_retry_after()
    check(len(traffic.requests("POST")) == 1, "polling queued again")
    shoot_phone(page, out, "en-waiting-room-admitted")

    # A booking refused as not admitted (injected once) sends the person back to the room,
    # which shows their place (injected once) and polls until their turn comes again.
    injected = {"refusal": 1, "standing": 1}

    def refuse_once(route):
        if not injected["refusal"]:
            route.fallback()
            return
        injected["refusal"] -= 1
        route.fulfill(
            status=403, headers={"Retry-After": "1", "Content-Type": "application/problem+json"},
            body=json.dumps({"type": "https://slotd.dev/problems/not-admitted", "title": "not admitted",
                             "status": 403, "detail": "not your turn yet", "code": "not-admitted"}),
        )

    def behind_once(route):
        if route.request.method != "GET" or not injected["standing"]:
            route.fallback()
            return
        injected["standing"] -= 1
        standing = dict(first["body"], state="waiting", position=3, ahead=2, estimated_wait_seconds=40,
                        queued=3, admitted=0, shuffled=True)
        route.fulfill(status=200, headers={"Retry-After": "2", "Content-Type": "application/json"},
                      body=json.dumps(standing))

    page.route(BOOK, refuse_once)
    page.route(QUEUE, behind_once)
    book.first.click()
    error = page.locator("#bk-queue-error")
    expect(error).to_contain_text("It is not your turn yet. Please wait in the waiting room.")
    expect(error).to_be_focused()
    expect(message).to_have_text(
        "You are number 3 in the queue; people ahead of you: 2. We will tell you here when it is your turn.")
    expect(facts).to_contain_text("Ahead of you2")
    expect(facts).to_contain_text("Estimated wait40 s")
    expect(error).to_be_hidden()
    expect(book.first).to_be_disabled()
    expect(message).to_have_text("It's your turn — book now: search and choose a slot below.")
    expect(book.first).to_be_enabled()
    page.unroute(BOOK)
    page.unroute(QUEUE)

    # Now the booking goes through, with the ticket.
    book.first.click()
    expect(heading(page, "My bookings")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("Booked.")
    card = page.locator("#me-live li.booking").first
    expect(card).to_contain_text(f"Phase {PHASE}")
    expect(card).to_contain_text(SITE["name"])
    posts = traffic.requests("POST", BOOK)
    check(len(posts) == 2 and all(p["ticket"] == ticket for p in posts),
          f"the bookings carried Queue-Ticket {[p['ticket'] for p in posts]}, not {ticket!r}")


def main() -> int:
    # The one refusal the test injects.
    return run_in_browser(
        "waiting_room", walk, ["--admin-token", ADMIN], PHONE,
        lambda status, url: status == 403 and bool(BOOK.search(url)),
    )


if __name__ == "__main__":
    sys.exit(main())
