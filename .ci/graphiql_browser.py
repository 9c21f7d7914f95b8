#!/usr/bin/env python3
"""GraphiQL in a real headless Chromium, offline.

Starts `salesops serve --demo` on a fresh SQLite database (unless --url is
given), opens GET /graphql in headless Chromium driven over the DevTools
protocol, and checks that:

  1. the page loads GraphiQL from the binary (every host but 127.0.0.1 is
     unresolvable for the browser, so a CDN would leave it blank);
  2. no Content-Security-Policy violation and no script error is reported;
  3. the headers editor holds the demo's Authorization header;
  4. the docs pane lists the root type `Query` (introspection worked);
  5. running the default query answers `"role": "ADMIN"` (a query ran with
     the pre-filled token).

Usage: python3 .ci/graphiql_browser.py [--binary target/debug/salesops]
       [--url http://127.0.0.1:8080/graphql] [--screenshot out.png]
Needs Chromium (Debian's `chromium`) and the Python package `websockets`.
Exit 0 on success; prints one line per check.
"""
import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websockets
except ImportError:  # pragma: no cover
    print("graphiql_browser: the Python package `websockets` is missing (pip install websockets)")
    sys.exit(2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except Exception:
            time.sleep(0.2)
    return False


def start_server(binary, workdir):
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SALESOPS_DATABASE_URL": f"sqlite://{workdir}/demo.db?mode=rwc",
            "SALESOPS_BIND": f"127.0.0.1:{port}",
            "SALESOPS_LOG_FORMAT": "json",
        }
    )
    env.pop("SALESOPS_JWT_SECRET", None)
    env.pop("SALESOPS_JWT_PUBLIC_KEY", None)
    log = open(os.path.join(workdir, "server.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--demo"], env=env, stdout=log, stderr=log)
    if not wait_http(f"http://127.0.0.1:{port}/healthz", 120):
        proc.kill()
        print(open(os.path.join(workdir, "server.log")).read()[-3000:])
        raise SystemExit("graphiql_browser: the server did not start")
    return proc, f"http://127.0.0.1:{port}/graphql"


def start_chromium(chromium, workdir):
    profile = os.path.join(workdir, "profile")
    os.makedirs(profile, exist_ok=True)
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # Offline: every host but the server's is unresolvable.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if len(lines) >= 1 and lines[0].isdigit():
                return proc, int(lines[0])
        if proc.poll() is not None:
            raise SystemExit("graphiql_browser: chromium exited at start")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("graphiql_browser: chromium did not open its DevTools port")


def gql_post(url, token, query, variables=None):
    req = urllib.request.Request(
        url,
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.load(r)
    assert "errors" not in body, body
    return body["data"]


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = {}
        self.events = []

    async def reader(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif "method" in msg:
                self.events.append(msg)

    async def call(self, method, **params):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait_for(self, expr, what, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = await self.js(expr)
            if last:
                return last
            await asyncio.sleep(0.2)
        LOG.extend(page_problems(self))
        # What the editors hold, to see why.
        LOG.append(str(await self.js("Array.from(document.querySelectorAll('.CodeMirror')).map(e => e.CodeMirror.getValue()).join(' ||| ')")))
        raise AssertionError(f"timed out waiting for {what} (last value: {last!r})")


async def drive(devtools_port, url, screenshot):
    with urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{devtools_port}/json/new?about:blank", method="PUT"),
        timeout=10,
    ) as r:
        target = json.load(r)
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=64 << 20) as ws:
        page = Page(ws)
        reader = asyncio.create_task(page.reader())
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        await page.call("Log.enable")
        await page.call("Page.navigate", url=url)
        results = []

        def ok(name, detail=""):
            results.append(name)
            print(f"ok   {name}{(': ' + detail) if detail else ''}")

        await page.wait_for("!!document.querySelector('.graphiql-container')", "GraphiQL to render")
        ok("page loads GraphiQL from the binary (no other host reachable)")

        headers = await page.wait_for(
            "(() => { const ed = document.querySelector('.graphiql-editor-tool .CodeMirror');"
            " return ed && ed.CodeMirror ? ed.CodeMirror.getValue() : null; })()"
            " || (Array.from(document.querySelectorAll('.CodeMirror')).map(e => e.CodeMirror && e.CodeMirror.getValue()).find(v => v && v.includes('Authorization')))",
            "the headers editor",
        )
        assert "Authorization" in headers and "Bearer ey" in headers, headers
        ok("the Authorization header is filled in", headers.split("Bearer ")[1][:12] + "...")

        # The docs pane: open it and wait for the root types.
        await page.wait_for(
            "(() => { const b = document.querySelector('[aria-label=\"Show Documentation Explorer\"]');"
            " if (b) { b.click(); return true; } return false; })()",
            "the docs button",
        )
        docs = await page.wait_for(
            "(() => { const d = document.querySelector('.graphiql-doc-explorer');"
            " return d && d.innerText.includes('Query') && d.innerText.includes('Mutation') ? d.innerText : null; })()",
            "the docs pane to list Query",
        )
        ok("the docs pane lists Query", " / ".join(docs.split("\n")[:4]))

        # Run the default query.
        await page.js("document.querySelector('.graphiql-execute-button').click()")
        result = await page.wait_for(
            "(() => { const r = document.querySelector('.result-window .CodeMirror');"
            " const v = r && r.CodeMirror ? r.CodeMirror.getValue() : '';"
            " return v.includes('\"role\"') || v.includes('errors') ? v : null; })()",
            "the query's result",
        )
        data = json.loads(result)
        assert data.get("data", {}).get("me", {}).get("role") == "ADMIN", result
        ok("a query runs", json.dumps(data["data"]))

        if screenshot:
            shot = await page.call("Page.captureScreenshot", format="png")
            with open(screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))

        problems = page_problems(page)
        if problems:
            raise AssertionError("the page reported errors:\n  " + "\n  ".join(problems))
        ok("no CSP violation, script error or failed load reported")
        reader.cancel()
        return results


LOG = []


def page_problems(page):
        problems = []
        for ev in page.events:
            if ev["method"] == "Log.entryAdded":
                e = ev["params"]["entry"]
                if e.get("level") == "error" or "Content Security Policy" in e.get("text", ""):
                    problems.append(f"log {e.get('source')}: {e.get('text')} {e.get('url', '')}")
            elif ev["method"] == "Runtime.exceptionThrown":
                problems.append(f"exception: {ev['params']['exceptionDetails'].get('text')}")
            elif ev["method"] == "Runtime.consoleAPICalled" and ev["params"]["type"] == "error":
                args = [a.get("value", a.get("description", "")) for a in ev["params"]["args"]]
                problems.append(f"console.error: {args}")
        return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/salesops")
    ap.add_argument("--url")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--screenshot")
    a = ap.parse_args()
    if not a.chromium:
        print("graphiql_browser: chromium not found")
        return 2
    workdir = tempfile.mkdtemp(prefix="graphiql-browser-")
    server = None
    browser = None
    try:
        if a.url:
            url = a.url
        else:
            server, url = start_server(os.path.abspath(a.binary), workdir)
        browser, port = start_chromium(a.chromium, workdir)
        results = asyncio.run(drive(port, url, a.screenshot))
        print(f"graphiql_browser: {len(results)} passed, 0 failed")
        return 0
    except AssertionError as e:
        print(f"FAIL {e}")
        for line in LOG:
            print(f"     {line}")
        print("graphiql_browser: 0 passed, 1 failed")
        return 1
    finally:
        for p in (browser, server):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
