#!/usr/bin/env python3
"""A frontend on another origin, in a real browser: CORS as Chromium enforces it.

Starts `slotd serve --ephemeral --cors-origin http://127.0.0.1:<A>` and two tiny pages
on other origins: A (allowed) and B (not). In headless Chromium, the page on A reads
availability (and its `ETag`), books with `Authorization`, `Idempotency-Key` and a JSON
body (headers that need a preflight), reads the `Location` of the `201`, reads its own
bookings, cancels (a `DELETE`, preflighted too), and reads a refusal's `Retry-After`. The
page on B makes the same booking call and must be refused by the browser. The preflights
are counted from Chromium's own network events. The booking token is minted with the
admin secret, as a test may.

Environment: SLOTD_BIN (default target/debug/slotd), CHROMIUM (default /usr/bin/chromium).
No arguments. Exits 0 on success, 1 with the reason on failure.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from journey import CHROMIUM_ARGS, ROOT, JourneyFailed, Slotd, check, free_port  # noqa: E402

ADMIN = "cors-test-admin-secret"

# The page both origins serve: it calls the API of another origin and reports what the
# browser let it see.
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cors</title></head>
<body><pre id="out">running</pre><script>
async function run(api, token) {
  const seen = {};
  try {
    const q = new URLSearchParams({county: "臺北市", district: "中正區"});
    const a = await fetch(`${api}/v1/phases/01/availability?${q}`);
    seen.availability = a.status;
    seen.etag = a.headers.get("ETag");
    const page = await a.json();
    const slot = page.sites[0].slots[0].slot;
    const auth = {"Authorization": `Bearer ${token}`};
    const b = await fetch(`${api}/v1/phases/01/bookings`, {
      method: "POST",
      headers: {...auth, "Content-Type": "application/json", "Idempotency-Key": "cors-" + Date.now()},
      body: JSON.stringify({slot}),
    });
    seen.book = b.status;
    seen.location = b.headers.get("Location");
    const booking = (await b.json()).booking;
    const mine = await fetch(`${api}/v1/me/bookings`, {headers: auth});
    seen.mine = mine.status;
    seen.listed = (await mine.json()).bookings.some(x => x.booking === booking);
    const c = await fetch(`${api}/v1/me/bookings/${booking}`, {method: "DELETE", headers: auth});
    seen.cancel = c.status;
    const r = await fetch(`${api}/v1/admin/calendar`, {method: "PUT", headers: auth, body: "{}"});
    seen.refused = r.status;
    seen.refused_type = r.headers.get("Content-Type");
    seen.www_authenticate = r.headers.get("WWW-Authenticate");
  } catch (e) {
    seen.error = String(e);
  }
  return seen;
}
</script></body></html>"""


class Pages:
    """A static server of PAGE on a free port: one browser origin."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="slotd-cors-")
        Path(self.dir.name, "index.html").write_text(PAGE, encoding="utf-8")
        root = self.dir.name

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=root, **k)

            def log_message(self, *a):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Quiet)
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.dir.cleanup()


def mint(api: str) -> str:
    req = urllib.request.Request(
        f"{api}/v1/admin/tokens",
        data=json.dumps({"id_number": "J297691749", "scope": "booking", "ttl_seconds": 600}).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["token"]


def main() -> int:
    binary = Path(os.environ.get("SLOTD_BIN", ROOT / "target" / "debug" / "slotd"))
    allowed, other = Pages(), Pages()
    with tempfile.TemporaryDirectory(prefix="slotd-cors-data-") as data:
        slotd = Slotd(binary, Path(data), "--admin-token", ADMIN, "--cors-origin", allowed.origin)
        try:
            token = mint(slotd.base)
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                    args=CHROMIUM_ARGS,
                )
                try:
                    page = browser.new_page()
                    preflights: list[str] = []
                    cdp = page.context.new_cdp_session(page)
                    cdp.send("Network.enable")
                    cdp.on(
                        "Network.requestWillBeSent",
                        lambda e: e["request"]["method"] == "OPTIONS"
                        and preflights.append(e["request"]["url"]),
                    )
                    page.goto(f"{allowed.origin}/index.html")
                    seen = page.evaluate("([api, t]) => run(api, t)", [slotd.base, token])
                    print(f"allowed origin saw: {seen}")
                    check("error" not in seen, f"the allowed origin was refused: {seen}")
                    check(seen["availability"] == 200 and seen["etag"], f"availability, ETag: {seen}")
                    check(seen["book"] == 201, f"booking: {seen}")
                    check(
                        (seen["location"] or "").startswith("/v1/me/bookings/"),
                        f"Location readable: {seen}",
                    )
                    check(seen["mine"] == 200 and seen["listed"], f"own bookings: {seen}")
                    check(seen["cancel"] == 204, f"cancel: {seen}")
                    check(
                        seen["refused"] == 401
                        and seen["refused_type"] == "application/problem+json"
                        and (seen["www_authenticate"] or "").startswith("Bearer"),
                        f"a refusal is readable with its WWW-Authenticate: {seen}",
                    )
                    check(len(preflights) > 0, "Chromium sent CORS preflights")

                    page2 = browser.new_page()
                    page2.goto(f"{other.origin}/index.html")
                    blocked = page2.evaluate("([api, t]) => run(api, t)", [slotd.base, token])
                    print(f"other origin saw: {blocked}")
                    check(
                        "error" in blocked and "book" not in blocked,
                        f"an origin not allowed must be refused by the browser: {blocked}",
                    )
                finally:
                    browser.close()
        finally:
            slotd.stop()
            allowed.close()
            other.close()
    # The booking made through CORS was cancelled: nothing left behind.
    print(f"cors: ok ({len(preflights)} preflights)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except JourneyFailed as e:
        print(f"cors: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
