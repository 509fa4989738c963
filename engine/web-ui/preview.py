#!/usr/bin/env python3
"""Dev tool: serves the built web UI and stands in for the engine's UI routes.

    python3 engine/web-ui/preview.py --api 127.0.0.1:7243 [--port 8233] [--log requests.log]

Serves <tools dir>/web-ui (see build.py) with index.html for any other path, answers
/api/v1/settings, and forwards the rest of /api/v1 to a Temporal HTTP API (e.g. the dev
server's --http-port), asking it for full payloads (the UI does not read the shorthand
form). It also hands out the `_csrf` cookie that the UI copies into X-CSRF-TOKEN.
Standard library only; for trying the UI, not for production.
"""

import argparse
import http.client
import json
import os
import secrets
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("CAPSTAN_TOOLS_DIR") or REPO_ROOT / "target" / "capstan-tools")
# Read by @temporalio/ui's settings service; a Version below 2.23 changes how it encodes paths.
SETTINGS = {
    "Auth": {"Enabled": False, "Options": []},
    "BannerText": "",
    "DefaultNamespace": "default",
    "ShowTemporalSystemNamespace": False,
    "FeedbackURL": "",
    "NotifyOnNewVersion": False,
    "Codec": {"Endpoint": "", "PassAccessToken": False, "IncludeCredentials": False},
    "Version": "2.38.0",
    "DisableWriteActions": False,
    "WorkflowTerminateDisabled": False,
    "WorkflowCancelDisabled": False,
    "WorkflowSignalDisabled": False,
    "WorkflowUpdateDisabled": False,
    "WorkflowResetDisabled": False,
    "BatchActionsDisabled": False,
    "StartWorkflowDisabled": False,
    "HideWorkflowQueryErrors": False,
    "RefreshWorkflowCountsDisabled": False,
}
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
         ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".woff": "font/woff",
         ".woff2": "font/woff2", ".webmanifest": "application/manifest+json"}


def handler(site: Path, api: str, log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_request(self):
            path = urlsplit(self.path).path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if log and path.startswith("/api/"):
                log.write(f"{self.command} {self.path}\n")
            if path == "/api/v1/settings":
                return self.reply(200, "application/json", json.dumps(SETTINGS).encode())
            if path.startswith("/api/v1/"):
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "accept-encoding")}
                headers["Accept"] = "application/json+no-payload-shorthand"
                upstream = http.client.HTTPConnection(api, timeout=90)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
                return self.reply(response.status, response.getheader("Content-Type", "application/json"), data)
            file = (site / path.lstrip("/")).resolve()
            if not file.is_file() or site not in file.parents:
                file = site / "index.html"
            self.reply(200, TYPES.get(file.suffix, "application/octet-stream"), file.read_bytes())

        def reply(self, status: int, content_type: str, data: bytes):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if "_csrf=" not in (self.headers.get("Cookie") or ""):
                self.send_header("Set-Cookie", f"_csrf={secrets.token_hex(16)}; Path=/; SameSite=Strict")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="host:port of a Temporal HTTP API")
    parser.add_argument("--port", type=int, default=8233)
    parser.add_argument("--site", type=Path, default=TOOLS / "web-ui", help="the built UI")
    parser.add_argument("--log", help="append each API request (method, path, query) to this file")
    args = parser.parse_args()
    site = args.site.resolve()
    if not (site / "index.html").is_file():
        raise SystemExit(f"no built UI at {site}: run python3 engine/web-ui/build.py")
    log = open(args.log, "a", buffering=1) if args.log else None
    print(f"web UI on http://127.0.0.1:{args.port}/ (API at {args.api})", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), handler(site, args.api, log)).serve_forever()


if __name__ == "__main__":
    main()
