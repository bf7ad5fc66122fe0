"""Records one HAR fixture: opens the fixture SPA (spa.html) in headless Chromium at the
SPA's origin, lets it talk to the backend and the mock Clerk that `record_har` (a Rust example
of the scenarios crate) brought up, and saves the browser's HAR.

Usage: record.py CONFIG_JSON OUT.har  (run by scripts/record-har-fixtures).
The page is fulfilled at the SPA's origin by Playwright (no port 3000 is bound); Frontend API
calls to https://<fapi host>/… are fulfilled from the mock's Frontend API (plain HTTP here), with
the CORS headers Clerk sends; the backend is reached for real.
"""

import json
import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> None:
    cfg = json.loads(sys.argv[1])
    out = sys.argv[2]
    # The mock's admin key stays in this process: the page (and so the HAR) never sees it.
    secret_key = cfg.pop("secret_key")
    page_html = (Path(__file__).parent / "spa.html").read_text()
    page_html = page_html.replace("<script>", f"<script>window.CFG = {json.dumps(cfg)};", 1)
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights"])
        context = browser.new_context(record_har_path=out, record_har_content="embed")
        page = context.new_page()
        page.on("console", lambda m: print(f"console: {m.text}", file=sys.stderr))
        origin = cfg["spa_origin"]

        def spa(route):
            route.fulfill(status=200, content_type="text/html", body=page_html)

        def fapi(route):
            request = route.request
            if request.method == "OPTIONS":
                route.fulfill(status=204, headers=cors(origin))
                return
            url = cfg["fapi_url"] + request.url.split(cfg["fapi_host"], 1)[1]
            response = route.fetch(url=url)
            headers = {**response.headers, **cors(origin)}
            route.fulfill(response=response, headers=headers)

        def admin(route):
            # The page's hooks into the mock (clock, key rotation): the harness's steps.
            if route.request.method == "OPTIONS":
                route.fulfill(status=204, headers=cors(origin))
                return
            url = cfg["api_url"] + "/_mock/" + route.request.url.split("/_mock/", 1)[1]
            headers = {"authorization": f"Bearer {secret_key}", "content-type": "application/json"}
            response = route.fetch(url=url, headers=headers)
            route.fulfill(response=response, headers={**response.headers, **cors(origin)})

        page.route(f"{origin}/**", spa)
        page.route(f"{cfg['admin_url']}/**", admin)
        page.route(f"https://{cfg['fapi_host']}/**", fapi)
        page.goto(f"{origin}/")
        page.wait_for_function("window.DONE === true", timeout=30_000)
        print(page.inner_text("#log"), file=sys.stderr)
        context.close()
        browser.close()


def cors(origin: str) -> dict:
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "content-type, authorization",
    }


if __name__ == "__main__":
    main()
