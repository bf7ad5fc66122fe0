"""Records one HAR fixture in Firefox, in Firefox's own export format: Debian's firefox-esr
under Xvfb with its DevTools open on the network panel and the panel's HAR auto-export on
(`devtools.netmonitor.har.enableAutoExportToFile`), the file Firefox writes itself — not
Playwright's, which cannot drive a stock Firefox.

Usage: record_firefox.py CONFIG_JSON OUT.har  (run by `scripts/record-har-fixtures --firefox`
through the `record_har` example, like record.py). Needs firefox-esr and xvfb-run
(apt-get install -y firefox-esr xvfb); only the standard library.

Firefox loads pages from real servers, so this script brings up two on loopback:
- the SPA's origin (the profile's first CORS origin, http://localhost:3000): a start page,
  then the fixture SPA (spa.html with window.CFG filled in);
- "Clerk" at http://127.0.0.1:<free port>: the Frontend API calls the page makes (forwarded
  to the mock's plain-HTTP Frontend API) and the page's hooks into the mock (clock, key
  rotation; forwarded to its admin API with the mock's secret key, which stays in this
  process: the page, and so the HAR, never sees it), with the CORS headers Clerk sends.
The backend is reached for real.

HarAutomation exports what the panel collected since the last top-level navigation, once the
page has loaded and no request has started for `pageLoadedTimeout` ms; so the browser opens
the start page, which navigates to the SPA once the DevTools are up.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

# How long the start page waits for the DevTools (opened by `-devtools`) to be watching
# before it navigates to the SPA: what is requested before that navigation is not exported.
START_DELAY_MS = 5000
# No request for this long after the SPA's last one: Firefox writes the HAR. The SPA's
# longest pause is 400 ms.
PAGE_LOADED_TIMEOUT_MS = 3000
# The whole recording, from Firefox's start to the HAR on disk.
DEADLINE_S = 90
# Firefox writes local time with its offset (`…T13:20:00.123+01:00`): a zone other than
# UTC so the fixture has one, as a user's export would.
FIREFOX_TZ = "Europe/Paris"


def main() -> None:
    cfg = json.loads(sys.argv[1])
    out = Path(sys.argv[2])
    # The mock's admin key stays in this process.
    secret_key = cfg.pop("secret_key")
    origin = cfg["spa_origin"]
    spa = urlsplit(origin)
    if spa.scheme != "http" or spa.hostname not in ("localhost", "127.0.0.1"):
        sys.exit(f"record_firefox: the SPA origin must be http on loopback, not {origin}")

    clerk = serve("127.0.0.1", 0, clerk_handler(cfg, secret_key, origin))
    clerk_origin = f"http://127.0.0.1:{clerk.server_address[1]}"
    cfg["fapi_origin"] = clerk_origin
    cfg["admin_url"] = clerk_origin
    page_html = (Path(__file__).parent / "spa.html").read_text()
    page_html = page_html.replace("<script>", f"<script>window.CFG = {json.dumps(cfg)};", 1)
    try:
        site = serve("127.0.0.1", spa.port or 80, spa_handler(page_html))
    except OSError as e:
        sys.exit(f"record_firefox: cannot serve the SPA's origin {origin}: {e}")

    work = Path(tempfile.mkdtemp(prefix="record-firefox-"))
    try:
        har = record(work, f"{origin}/start")
        shutil.copyfile(har, out)
    finally:
        site.shutdown()
        clerk.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def record(work: Path, url: str) -> Path:
    """Runs Firefox on `url` until its HAR is written; the HAR's path."""
    profile = work / "profile"
    logs = work / "har"
    profile.mkdir()
    logs.mkdir()
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs(logs).items()))
    firefox = os.environ.get("FIREFOX", "firefox-esr")
    command = ["xvfb-run", "-a", firefox, "-no-remote", "-profile", str(profile), "-devtools", url]
    env = {**os.environ, "TZ": FIREFOX_TZ, "MOZ_CRASHREPORTER_DISABLE": "1"}
    stderr = open(work / "firefox.log", "wb")
    browser = subprocess.Popen(command, env=env, stdout=stderr, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if browser.poll() is not None:
                sys.exit(f"record_firefox: Firefox exited ({browser.returncode}) before writing a HAR:\n{(work / 'firefox.log').read_text(errors='replace')[-2000:]}")
            done = [p for p in logs.glob("*.har") if complete(p)]
            if done:
                return done[0]
            time.sleep(0.5)
        sys.exit(f"record_firefox: no HAR from Firefox within {DEADLINE_S} s:\n{(work / 'firefox.log').read_text(errors='replace')[-2000:]}")
    finally:
        # Firefox, its content processes and Xvfb: the session this script started.
        try:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(browser.pid, signal.SIGKILL)
        stderr.close()


def complete(path: Path) -> bool:
    """Whether Firefox has finished writing the HAR at `path` (it writes it in one go)."""
    try:
        return bool(json.loads(path.read_text())["log"]["entries"])
    except (OSError, ValueError, KeyError):
        return False


def prefs(logs: Path) -> dict:
    return {
        # The network panel's HAR auto-export (devtools/client/netmonitor/src/har/har-automation.js).
        "devtools.netmonitor.har.enableAutoExportToFile": True,
        "devtools.netmonitor.har.defaultLogDir": str(logs),
        "devtools.netmonitor.har.defaultFileName": "recorded",
        "devtools.netmonitor.har.includeResponseBodies": True,
        "devtools.netmonitor.har.pageLoadedTimeout": PAGE_LOADED_TIMEOUT_MS,
        "devtools.toolbox.selectedTool": "netmonitor",
        # A quiet first run: no first-run pages, updates, telemetry or background traffic.
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "browser.aboutwelcome.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "app.update.enabled": False,
        "app.normandy.enabled": False,
        "extensions.update.enabled": False,
        "network.captive-portal-service.enabled": False,
        "network.connectivity-service.enabled": False,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.safebrowsing.downloads.enabled": False,
    }


def serve(host: str, port: int, handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        print(f"record_firefox: {self.command} {self.path.split('?')[0]} → {args[1] if len(args) > 1 else ''}", file=sys.stderr)

    def reply(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def spa_handler(page_html: str):
    start = f'<!doctype html><meta charset="utf-8"><title>start</title><script>setTimeout(() => location.assign("/"), {START_DELAY_MS});</script>'

    class Spa(Quiet):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/":
                self.reply(200, page_html.encode(), {"content-type": "text/html; charset=utf-8"})
            elif path == "/start":
                self.reply(200, start.encode(), {"content-type": "text/html; charset=utf-8"})
            else:
                self.reply(404, b"", {})

    return Spa


def clerk_handler(cfg: dict, secret_key: str, origin: str):
    class Clerk(Quiet):
        def do_OPTIONS(self):
            self.reply(204, b"", cors(origin))

        def do_GET(self):
            self.forward()

        def do_POST(self):
            self.forward()

        def forward(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path.startswith("/_mock/"):
                # The page's hooks into the mock: the harness's steps, with its key.
                url = cfg["api_url"] + self.path
                headers = {"authorization": f"Bearer {secret_key}", "content-type": "application/json"}
            else:
                url = cfg["fapi_url"] + self.path
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "cookie", "authorization")}
            request = urllib.request.Request(url, data=body if body is not None else (b"" if self.command == "POST" else None), headers=headers, method=self.command)
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    status, data, answer = r.status, r.read(), dict(r.headers.items())
            except urllib.error.HTTPError as e:
                status, data, answer = e.code, e.read(), dict(e.headers.items())
            self.reply(status, data, {**answer, **cors(origin)})

    return Clerk


def cors(origin: str) -> dict:
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "content-type, authorization",
    }


if __name__ == "__main__":
    main()
