#!/usr/bin/env python3
"""Drives the status page in Debian's headless chromium over the DevTools protocol (on a pipe, so
no WebSocket library is needed): loads the page, enters the token, waits until RUN is rendered,
waits until SOURCE's dead letters (--dead-letters CLASS=N) and the consumer lag (--lag TOPIC=N,
--members N) show the figures the test read from the broker, watches the run's progress bar move
(and then saves a screenshot with --screenshot), clicks SOURCE's cancel button and waits until the
page shows the run cancelled. Prints what it saw as one JSON object; exits 1, naming the step, when a
step fails."""
import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, profile):
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # chromium reads commands on fd 3 and writes answers on fd 4; park our ends above them.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def wire():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"],
            preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(child_in)
        os.close(child_out)
        self.out = os.fdopen(to_browser_w, "wb", buffering=0)
        self.inp = os.fdopen(from_browser_r, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = self.inp.read(65536)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(method + ": " + json.dumps(answer["error"]))
                return answer.get("result", {})

    def open(self, url):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        self.call("Page.navigate", {"url": url})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("page script failed: " + json.dumps(r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, path):
        # The whole page at a desktop width: lay it out at that width first, then take its height.
        metrics = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.3)
        metrics["height"] = int(self.eval("document.documentElement.scrollHeight")) + 10
        self.call("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.3)
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        self.proc.kill()
        self.proc.wait()


def wait_for(browser, expression, timeout, step):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = browser.eval(expression)
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError("step '%s' not reached in %d s" % (step, timeout))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--dead-letters", action="append", default=[], metavar="CLASS=N",
                   help="SOURCE's dead letters of CLASS the page must show")
    p.add_argument("--lag", action="append", default=[], metavar="TOPIC=N",
                   help="the consumer lag the page must show for TOPIC")
    p.add_argument("--members", type=int, help="the group members the page must show")
    p.add_argument("--screenshot", help="save a PNG of the page while the run's bar moves")
    a = p.parse_args()
    seen = {"rendered": False, "dead_letters": {}, "lag": {}, "members": None, "progress": [],
            "final_status": None, "notice": None}
    profile = tempfile.mkdtemp(prefix="leadsync-chromium-")
    browser = Browser(a.chromium, profile)
    try:
        browser.open(a.url)
        row = 'document.querySelector(%s)' % json.dumps('tr[data-run="%s"]' % a.run)
        wait_for(browser, "document.getElementById('token') !== null", 20, "page loaded")
        browser.eval("(() => { const t = document.getElementById('token'); t.value = %s;"
                     " t.dispatchEvent(new Event('change')); return true; })()" % json.dumps(a.token))
        wait_for(browser, row + " !== null", 20, "run rendered")
        seen["rendered"] = True
        source_row = 'document.querySelector(%s)' % json.dumps('#sources tr[data-source="%s"]' % a.source)
        for expected in a.dead_letters:
            cls, n = expected.split("=")
            span = source_row + ".querySelector(%s)" % json.dumps('span[data-class="%s"]' % cls)
            try:
                wait_for(browser, "(() => { const s = %s; return s !== null && s.dataset.count === %s; })()"
                         % (span, json.dumps(n)), 20, "dead letters %s shown" % expected)
            finally:
                seen["dead_letters"][cls] = browser.eval("(() => { const s = %s; return s && s.textContent; })()"
                                                         % span)
        for expected in a.lag:
            topic, n = expected.rsplit("=", 1)
            lag_row = 'document.querySelector(%s)' % json.dumps('#lag tr[data-topic="%s"]' % topic)
            try:
                wait_for(browser, "(() => { const r = %s; return r !== null && r.dataset.lag === %s; })()"
                         % (lag_row, json.dumps(n)), 20, "lag %s shown" % expected)
            finally:
                seen["lag"][topic] = browser.eval("(() => { const r = %s; return r && r.cells[1].textContent; })()"
                                                  % lag_row)
        if a.members is not None:
            summary = "document.getElementById('lag-summary')"
            try:
                wait_for(browser, "%s.dataset.members === %s" % (summary, json.dumps(str(a.members))), 20,
                         "%d members shown" % a.members)
            finally:
                seen["members"] = browser.eval(summary + ".textContent")
        first = browser.eval(row + ".querySelector('progress').value")
        seen["progress"].append(first)
        deadline = time.time() + 15
        while time.time() < deadline and seen["progress"][-1] <= first:
            time.sleep(0.5)
            seen["progress"].append(browser.eval(row + ".querySelector('progress').value"))
        if seen["progress"][-1] <= first:
            raise RuntimeError("step 'progress bar moves' not reached: " + json.dumps(seen["progress"]))
        if a.screenshot:
            browser.screenshot(a.screenshot)
        button = 'document.querySelector(%s)' % json.dumps(
            'button[data-action="cancel"][data-source="%s"]' % a.source)
        wait_for(browser, button + " !== null", 10, "cancel button rendered")
        browser.eval(button + ".click(); true")
        seen["final_status"] = wait_for(
            browser, "(() => { const r = %s; return r && r.dataset.status === 'cancelled' ? 'cancelled' : null; })()"
            % row, 20, "run shown cancelled")
        seen["notice"] = browser.eval("document.getElementById('notice').textContent")
        print(json.dumps(seen))
        return 0
    except Exception as e:  # one line the test can show
        seen["error"] = str(e)
        print(json.dumps(seen))
        return 1
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
