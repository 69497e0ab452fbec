#!/usr/bin/env python3
"""The citizen's journey through the reference web frontend (web/), in a real browser,
against a real slotd.

Starts `slotd serve --ephemeral` in captcha test mode on a free port, then walks the
journey as a person would, by what they see: intent registration (a mistyped captcha first),
modify, login (a wrong password, then the lockout's Retry-After countdown), availability by
county, district and date (phase 01 has no waiting room: none is shown), booking, my booking with its check-in code and QR code, change,
a shed availability read that retries itself after its countdown, the switch to English,
cancel, cancelling the registration, logout, and a login with the NHI app's code. It checks that every problem `code` of
server/openapi.json has a message in every language, and fails on any console error, page
error or Content-Security-Policy violation.

Environment: SLOTD_BIN (default target/debug/slotd), WEB_TEST_OUT (screenshots, default
target/web-test), both relative to the repository root unless absolute; CHROMIUM (default
/usr/bin/chromium). No arguments. Exits 0 on success,
1 with the reason on failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CAPTCHA_SECRET = "web-journey-captcha-secret"
# Demo person 0 of the built-in population (README, "Two commands").
PERSON = {
    "id": "J297691749", "card": "532914869470", "password": "slotd-drill-1234",
    "otp_secret": "XITNIMNKTE6KNYBAZNFG5SGP6SB6U2MN",
}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LANGS = ["zh-TW", "en", "vi", "id", "th"]
TIMEOUT_MS = 10_000

# The failures the journey provokes or meets on purpose, by status and API path; Chromium
# logs each such fetch as "Failed to load resource". Any other console error fails the run.
EXPECTED_API_FAILURES = {
    401: re.compile(r"/v1/sessions$"),  # the wrong password
    404: re.compile(r"/v1/me/registration$"),  # not registered yet: the empty form
    422: re.compile(r"/v1/registration/sessions$"),  # the mistyped captcha
    429: re.compile(r"/v1/sessions$"),  # the lockout's countdown
    503: re.compile(r"/v1/me/bookings\?"),  # the shed read (page.route)
}


class JourneyFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise JourneyFailed(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slotd:
    """A slotd child process on a free port, with an ephemeral store."""

    def __init__(self, binary: Path, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "slotd.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--ephemeral",
                "--data-dir", str(data_dir), "--captcha-test-secret", CAPTCHA_SECRET, *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise JourneyFailed(f"slotd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise JourneyFailed(f"slotd was not ready within 30 s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def problem_codes() -> set[str]:
    """Every problem `code` of the API: server/openapi.json's (the Problem enum and any
    `code` enum)."""
    doc = json.loads((ROOT / "server" / "openapi.json").read_text())
    codes: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            code = node.get("properties", {}).get("code") if isinstance(node.get("properties"), dict) else None
            if isinstance(code, dict) and isinstance(code.get("enum"), list):
                codes.update(code["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    check(len(codes) > 20, f"found only {len(codes)} problem codes in openapi.json")
    return codes


class Captchas:
    """Answers the captcha a person sees: the test mode's HMAC of the challenge id, which is
    learnt by watching the page's GET /v1/captcha answers (keyed by their picture)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.by_image: dict[str, str] = {}
        self.used: set[str] = set()
        page.on("response", self._seen)

    def _seen(self, response) -> None:
        if response.url.endswith("/v1/captcha") and response.status == 200:
            try:
                body = response.json()
            except PlaywrightError:
                return
            self.by_image[body["image"]] = body["captcha"]

    def solve(self, img_selector: str, input_selector: str) -> None:
        """Types the answer of the picture shown, once a fresh (unused) one is shown."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            src = self.page.get_attribute(img_selector, "src")
            challenge = self.by_image.get(src or "")
            if challenge and challenge not in self.used:
                self.used.add(challenge)
                answer = hmac.new(CAPTCHA_SECRET.encode(), challenge.encode(), hashlib.sha256).hexdigest()[:6]
                self.page.fill(input_selector, answer)
                return
            self.page.wait_for_timeout(50)
        raise JourneyFailed(f"no fresh captcha picture appeared in {img_selector}")


def shown(page: Page):
    """The view on screen (the others are hidden sections with the same labels)."""
    return page.locator("section.view:not([hidden])")


def totp(secret_b32: str, at: float | None = None) -> str:
    """The NHI app's current code: RFC 6238, SHA-1, 30 s steps, 6 digits."""
    key = base64.b32decode(secret_b32)
    counter = int((time.time() if at is None else at) // 30)
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(int.from_bytes(mac[offset:offset + 4], 'big') & 0x7FFFFFFF) % 1_000_000:06d}"


def heading(page: Page, text: str):
    return page.get_by_role("heading", name=text, exact=True)


def shoot(page: Page, out: Path, name: str) -> None:
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(out / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def assert_human(page: Page, box: str, code: str) -> None:
    """The error box says something human, and never the bare code."""
    text = page.inner_text(box)
    check(code not in text, f"{box} shows the raw code {code!r}: {text!r}")


def qr_dark_pixels(page: Page) -> int:
    """Dark pixels of the first QR code image, read back through a canvas."""
    return page.evaluate(
        """async () => {
          const img = document.querySelector('img.qr');
          if (!img) return -1;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(0, 0, c.width, c.height).data;
          let dark = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] < 100) dark++;
          return dark;
        }"""
    )


def journey(page: Page, base: str, out: Path) -> None:
    captchas = Captchas(page)
    expect.set_options(timeout=TIMEOUT_MS)

    # Home, in zh-TW by default, served under a strict CSP.
    response = page.goto(base + "/")
    csp = response.headers.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp, f"the page's CSP is not strict: {csp!r}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-TW")
    expect(heading(page, "疫苗接種預約")).to_be_visible()

    # Every problem code has a message in every language, and every string every language.
    tables = page.evaluate(
        """async () => {
          const m = await import('/i18n.js');
          const gaps = [];
          for (const [table, entries] of [['UI', m.UI], ['PROBLEMS', m.PROBLEMS]])
            for (const [key, byLang] of Object.entries(entries))
              for (const l of m.LANGS) if (!byLang[l] || !byLang[l].trim()) gaps.push(`${table}.${key}.${l}`);
          return { langs: m.LANGS, problems: Object.keys(m.PROBLEMS), gaps };
        }"""
    )
    check(tables["langs"] == LANGS, f"languages are {tables['langs']}")
    check(not tables["gaps"], f"untranslated strings: {tables['gaps']}")
    missing = sorted(problem_codes() - set(tables["problems"]))
    check(not missing, f"problem codes without a message: {missing}")

    # 1. Intent registration: a mistyped captcha first (a human message), then right.
    page.get_by_role("link", name="意願登記", exact=True).first.click()
    expect(heading(page, "意願登記：身分驗證")).to_be_visible()
    shown(page).get_by_label("身分證號或居留證號", exact=True).fill(PERSON["id"])
    shown(page).get_by_label("健保卡號", exact=True).fill(PERSON["card"])
    captchas.solve("#ri-captcha-img", "#ri-captcha")
    shown(page).get_by_label("請輸入圖片中的字元", exact=True).fill("zzzzzz")
    shown(page).get_by_label("請輸入圖片中的字元", exact=True).press("Enter")
    expect(page.locator("#ri-error")).to_contain_text("驗證碼錯誤或已過期")
    expect(page.locator("#ri-error")).to_be_focused()
    expect(page.locator("#ri-captcha-err")).to_have_text("請輸入圖片中的字元。")
    assert_human(page, "#ri-error", "captcha-failed")
    captchas.solve("#ri-captcha-img", "#ri-captcha")
    page.get_by_role("button", name="下一步").click()

    expect(heading(page, "填寫登記資料")).to_be_visible()
    shown(page).get_by_label("姓名", exact=True).fill("王小明")
    shown(page).get_by_label("手機號碼", exact=True).fill("0912345678")
    shown(page).get_by_label("縣市", exact=True).select_option("臺北市")
    shown(page).get_by_label("鄉鎮市區", exact=True).select_option("中正區")
    page.get_by_role("button", name="送出登記").click()
    expect(heading(page, "您的意願登記")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("登記完成")
    serial = page.inner_text("#rd-serial")
    check(re.fullmatch(r"\d{10}", serial) is not None, f"the serial is {serial!r}")
    expect(page.get_by_text("登記序號", exact=True)).to_be_visible()
    expect(page.locator("#rd-vaccines")).to_have_text("AZ, Moderna")
    expect(page.locator("#rd-registered time")).to_have_count(1)
    shoot(page, out, "zh-TW-registration")

    # Modify: the serial is kept.
    page.get_by_role("link", name="修改登記").click()
    expect(page.get_by_role("button", name="儲存修改")).to_be_visible()
    expect(shown(page).get_by_label("姓名", exact=True)).to_have_value("王小明")
    shown(page).get_by_label("姓名", exact=True).fill("王大明")
    shown(page).get_by_label("手機號碼", exact=True).fill("0987654321")
    shown(page).get_by_label("Moderna", exact=True).uncheck()
    page.get_by_role("button", name="儲存修改").click()
    expect(page.locator("#status")).to_contain_text("已儲存修改")
    expect(page.locator("#rd-name")).to_have_text("王大明")
    expect(page.locator("#rd-vaccines")).to_have_text("AZ")
    expect(page.locator("#rd-serial")).to_have_text(serial)

    # 2. Login: a wrong password, then the lockout's countdown, then in.
    page.get_by_role("link", name="登入", exact=True).click()
    expect(heading(page, "登入預約")).to_be_visible()
    shown(page).get_by_label("健保卡號", exact=True).fill(PERSON["card"])
    shown(page).get_by_label("健保卡密碼", exact=True).fill("not-the-password")
    captchas.solve("#li-captcha-img", "#li-captcha")
    shown(page).get_by_label("健保卡密碼", exact=True).press("Enter")
    expect(page.locator("#li-error")).to_contain_text("登入資料不正確")
    assert_human(page, "#li-error", "login-failed")
    shown(page).get_by_label("健保卡密碼", exact=True).fill(PERSON["password"])
    captchas.solve("#li-captcha-img", "#li-captcha")
    submit = page.locator("#li-form button[type=submit]")
    submit.click()
    expect(page.locator("#li-error")).to_contain_text("登入失敗次數太多")
    countdown = page.locator("#li-error .countdown")
    expect(countdown).to_contain_text(re.compile(r"請於 \d+ 秒後再試"))
    first = int(countdown.get_attribute("data-seconds"))
    check(first >= 1, f"the countdown starts at {first}")
    expect(submit).to_be_disabled()
    if first > 1:  # it ticks down, a second at a time
        expect(countdown).to_have_attribute("data-seconds", str(first - 1))
    expect(countdown).to_have_text("現在可以再試一次。", timeout=first * 1000 + 3000)
    expect(submit).to_be_enabled()
    captchas.solve("#li-captcha-img", "#li-captcha")
    submit.click()

    # 3. Availability: county, district, date; then book.
    expect(heading(page, "查詢可預約時段")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("已登入")
    expect(shown(page).get_by_label("期別", exact=True)).to_have_value("01")
    shown(page).get_by_label("縣市", exact=True).select_option("臺北市")
    shown(page).get_by_label("鄉鎮市區", exact=True).select_option("中正區")
    shown(page).get_by_label("接種日期", exact=True).select_option(index=1)
    page.get_by_role("button", name="查詢").click()
    expect(page.locator("#bk-results-h")).to_be_focused()
    expect(page.locator("#bk-sites li.site-card").first).to_be_visible()
    expect(page.locator("#bk-asof")).to_contain_text("僅供參考")
    # Phase 01 has no waiting room: the page asked (it always does) and shows none.
    expect(page.locator("#bk-queue")).to_be_hidden()
    expect(page.locator("#bk-sites button.book").first).to_be_enabled()
    shoot(page, out, "zh-TW-availability")

    keys: list[str] = []
    page.on("request", lambda r: keys.append(r.headers.get("idempotency-key", ""))
            if "/bookings" in r.url and r.method in ("POST", "PUT") else None)
    page.locator("#bk-sites button.book").first.click()
    expect(heading(page, "我的預約")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("預約成功")
    card = page.locator("#me-live li.booking").first
    expect(card.locator("h2")).to_be_focused()
    code = card.locator(".code").inner_text()
    check(re.fullmatch(r"[A-Z0-9]{6}", code) is not None, f"the check-in code is {code!r}")
    expect(card.get_by_text("報到代碼", exact=True)).to_be_visible()
    expect(card.get_by_role("img", name=f"報到代碼 {code} 的 QR Code")).to_be_visible()
    expect(card.locator("img.qr")).to_have_attribute("src", re.compile(r"^data:image/"))
    dark = qr_dark_pixels(page)
    check(dark > 1000, f"the QR code is not drawn ({dark} dark pixels)")
    when_before = card.locator("dd").nth(1).inner_text()
    shoot(page, out, "zh-TW-my-booking")

    # 4. Change: the booking's own day and site come up searched; take another slot.
    card.get_by_role("link", name="更改時段").click()
    expect(page.locator("#bk-changing")).to_contain_text(code)
    expect(page.locator("#bk-sites .badge", has_text="目前的預約")).to_have_count(1)
    period = when_before.split()[-1]
    other_period = page.locator("#bk-sites tbody tr").filter(has_not=page.locator("th", has_text=period))
    other_period.locator("button.book", has_text="改為此時段").first.click()
    expect(page.locator("#status")).to_contain_text("已更改預約")
    card = page.locator("#me-live li.booking").first
    expect(card.locator("dd").nth(1)).not_to_have_text(when_before)
    check(len(keys) == 2 and all(keys) and keys[0] != keys[1], f"Idempotency-Keys were {keys}")

    # 5. A shed read shows a countdown and then retries by itself.
    shed = {"left": 1}

    def shed_once(route):
        if shed["left"]:
            shed["left"] -= 1
            route.fulfill(
                status=503,
                headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
                body=json.dumps({"type": "https://slotd.dev/problems/overloaded", "title": "overloaded",
                                 "status": 503, "detail": "shed", "code": "overloaded"}),
            )
        else:
            route.continue_()

    own_bookings = re.compile(r"/v1/me/bookings\?")
    page.route(own_bookings, shed_once)
    page.get_by_role("link", name="預約接種", exact=True).first.click()
    page.get_by_role("link", name="我的預約", exact=True).first.click()
    expect(page.locator("#me-error")).to_contain_text("目前使用人數眾多")
    expect(page.locator("#me-error .countdown")).to_contain_text("秒後自動重試")
    expect(page.locator("#me-live li.booking")).to_have_count(1, timeout=6000)
    expect(page.locator("#me-error")).to_be_hidden()
    page.unroute(own_bookings)

    # 6. English.
    page.get_by_label("語言", exact=True).select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(heading(page, "My bookings")).to_be_visible()
    expect(page.get_by_text("Check-in code", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name=f"QR code of check-in code {code}")).to_be_visible()
    check(page.title().startswith("My bookings"), f"the title is {page.title()!r}")
    shoot(page, out, "en-my-booking")

    # 7. Cancel (in English).
    page.get_by_role("button", name="Cancel booking").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="No, keep it")).to_be_focused()
    dialog.get_by_role("button", name="Yes, cancel").click()
    expect(page.locator("#status")).to_contain_text("Booking cancelled.")
    expect(page.get_by_text("You have no bookings.")).to_be_visible()
    expect(page.locator("#me-past")).to_be_visible()

    page.get_by_role("link", name="Book a slot", exact=True).first.click()
    expect(heading(page, "Find a slot")).to_be_visible()
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#bk-results-h")).to_have_text("Sites")
    shoot(page, out, "en-availability")

    # 8. Cancel the registration: the registration page knows the person still.
    page.get_by_role("link", name="Register intent", exact=True).first.click()
    expect(heading(page, "Your registration")).to_be_visible()
    expect(page.locator("#rd-serial")).to_have_text(serial)
    shoot(page, out, "en-registration")
    page.get_by_role("button", name="Cancel registration").click()
    page.locator("dialog#confirm").get_by_role("button", name="Yes, cancel").click()
    expect(page.locator("#rd-cancelled")).to_contain_text("Your registration is cancelled.")
    expect(page.locator("#rd-live")).to_be_hidden()

    # 9. Log out: the tokens are gone from sessionStorage, and none was ever in localStorage.
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#status")).to_contain_text("You are logged out.")
    storage = page.evaluate("() => [sessionStorage.length, Object.keys(localStorage)]")
    check(storage[0] == 0, f"sessionStorage still holds {storage[0]} items after logout")
    check(storage[1] == ["slotd.lang"], f"localStorage holds {storage[1]}")

    # 10. The other login: ID number and the NHI app's one-time code.
    page.get_by_role("link", name="Log in", exact=True).click()
    expect(heading(page, "Log in to book")).to_be_visible()
    shown(page).get_by_label("Code from the NHI app", exact=True).check()
    shown(page).get_by_label("ID or resident certificate number", exact=True).fill(PERSON["id"].lower())
    shown(page).get_by_label("App code", exact=True).fill(totp(PERSON["otp_secret"]))
    captchas.solve("#li-captcha-img", "#li-captcha")
    shown(page).get_by_label("App code", exact=True).press("Enter")
    expect(page.locator("#status")).to_contain_text("You are logged in.")
    expect(heading(page, "Find a slot")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # This machine has no outside network: Chromium must not try to reach Google.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def run_in_browser(
    name: str,
    walk: Callable[[Page, str, Path], None],
    slotd_args: list[str],
    viewport: dict,
    expected_failure: Callable[[int, str], bool],
) -> int:
    """Starts a slotd with `slotd_args` and headless Chromium, and runs `walk(page, base,
    out)`. Fails on any console error (but the failed fetches `expected_failure(status,
    url)` allows), page error or CSP violation; on failure saves `<name>-failure.png` and
    the slotd log tail. Answers the exit code."""
    # Relative paths are the repository root's, wherever the script is run from.
    binary = ROOT / os.environ.get("SLOTD_BIN", "target/debug/slotd")
    out = ROOT / os.environ.get("WEB_TEST_OUT", "target/web-test")
    out.mkdir(parents=True, exist_ok=True)
    failure = out / f"{name}-failure.png"
    failure.unlink(missing_ok=True)
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not binary.exists():
        print(f"{name}: FAILED: no slotd binary at {binary} (cargo build -p slotd, or set SLOTD_BIN)", file=sys.stderr)
        return 1

    started = time.monotonic()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"slotd-web-{name}-") as tmp:
        server = None
        try:
            server = Slotd(binary, Path(tmp), *slotd_args)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport=viewport, locale="en-US")
                # Violations are also console errors; this records them even if that changes.
                context.add_init_script(
                    "document.addEventListener('securitypolicyviolation', (e) => "
                    "console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));"
                )
                page = context.new_page()

                def on_console(msg):
                    if msg.type != "error":
                        return
                    m = re.search(r"status of (\d+)", msg.text)
                    url = msg.location.get("url", "")
                    if msg.text.startswith("Failed to load resource") and m \
                            and expected_failure(int(m.group(1)), url):
                        return
                    problems.append(f"console error: {msg.text} ({url})")

                page.on("console", on_console)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                try:
                    walk(page, server.base, out)
                except (JourneyFailed, AssertionError, PlaywrightError) as e:
                    page.screenshot(path=str(failure), full_page=True)
                    problems.insert(0, f"{type(e).__name__}: {e}\n(screenshot: {failure})")
                browser.close()
        except JourneyFailed as e:
            problems.insert(0, str(e))
        finally:
            if server:
                if problems:
                    problems.append(f"slotd log tail:\n{server.log_tail()}")
                server.stop()

    if problems:
        print(f"{name}: FAILED\n" + "\n".join(problems), file=sys.stderr)
        return 1
    print(f"{name}: ok in {time.monotonic() - started:.1f} s; screenshots in {out.resolve()}")
    return 0


def main() -> int:
    def expected(status: int, url: str) -> bool:
        pattern = EXPECTED_API_FAILURES.get(status)
        return bool(pattern and pattern.search(url))

    # One failed login throttles the account for 3 s: the countdown the test watches.
    return run_in_browser(
        "journey", journey, ["--login-throttle-after", "1", "--login-throttle-seconds", "3"],
        DESKTOP, expected,
    )


if __name__ == "__main__":
    sys.exit(main())
