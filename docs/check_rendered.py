"""Open every page of a built HTML site in headless Chromium and fail on what is broken.

    python docs/check_rendered.py docs/_build/html --chromium PATH
    python docs/check_rendered.py --self-test --chromium PATH

The folder is served on a free localhost port; each ``*.html`` page (not in ``_static/``,
``_sources/``) opens in a fresh tab and fails on: a navigation error, HTTP error or no load
event; an ``<img>`` not ``complete`` with a ``naturalWidth`` (lazy ones are loaded first); any
request of the site's own (CSS, JavaScript, fonts, images) that fails or gets an HTTP error; an
uncaught exception or rejected promise, ``console.error`` or a browser log error; a link into
the site to a missing file, or to an ``#anchor`` that is no ``id`` (nor ``<a name>``) of the
target page; main content (``[role=main]``, ``main``, ``article``, else ``body``) shorter than
``--min-text`` characters. Other hosts are never contacted (the browser resolves them to
nothing), so the answer is the same offline: their failures are printed as notes.

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``) with
the standard library only. Exit status: 0 all pages pass, 1 a page fails, 2 no check could run.
``--self-test`` checks a generated site with good pages and one page per kind of failure.
"""
from __future__ import annotations

import argparse, base64, collections, fcntl, functools, json, os, shutil, subprocess, sys
import tempfile, threading, time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

SKIP_DIRS = {"_static", "_sources"}
NO_TEXT_NEEDED = {"genindex.html", "search.html"}  # empty without index entries or a query
PAGE_JS = """(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(img => { if (img.loading === 'lazy') img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete || new Promise(done => {
    img.onload = img.onerror = done; setTimeout(done, 10000); })));
  await document.fonts.ready;
  const broken = [];
  for (const img of imgs)  // an SVG without width and height has no naturalWidth: decode it
    if (!img.complete || !(img.naturalWidth || img.src && await img.decode().then(_ => 1, _ => 0)))
      broken.push(img.currentSrc || img.src || '(an <img> without src)');
  const main = document.querySelector('[role=main], main, article') || document.body;
  return {broken, text: main ? main.innerText.trim().length : 0,
          links: Array.from(document.querySelectorAll('a[href], area[href]'), a => a.href),
          ids: Array.from(document.querySelectorAll('[id], a[name]'), e => e.id || e.name)};
})()"""


class Browser:
    """Headless Chromium spoken to over its DevTools pipe (fd 3 in, fd 4 out, NUL-separated)."""

    def __init__(self, chromium: str):
        exe = shutil.which(chromium)
        if exe is None:
            raise RuntimeError(f"no Chromium at {chromium!r} (bash .ci/chromium fetches one)")
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()
        # the child's ends, moved above 9, go on its fds 3 and 4 through a tiny Python trampoline
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, res_w))
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                 f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--disable-default-apps", "--mute-audio",
                 "--disable-dev-shm-usage",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"import os, sys; os.dup2({a}, 3); os.dup2({b}, 4); "
             f"os.close({a}); os.close({b}); os.execv(sys.argv[1], sys.argv[1:])",
             exe, *flags, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, pass_fds=(a, b))
        for fd in (cmd_r, res_w, a, b):
            os.close(fd)
        self.cv = threading.Condition()
        self.replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self.closed, self.last_id = False, 0
        threading.Thread(target=self._read, daemon=True).start()
        self.send("Browser.getVersion")

    def _read(self) -> None:
        buf = b""
        while chunk := os.read(self.res_r, 1 << 16):
            *messages, buf = (buf + chunk).split(b"\0")
            with self.cv:
                for msg in map(json.loads, messages):
                    msg["_t"] = time.monotonic()
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self.cv.notify_all()
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def send(self, method: str, params: dict | None = None, session=None, timeout=30.0) -> dict:
        self.last_id = n = self.last_id + 1
        msg = {"id": n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        with self.cv:
            self.cv.wait_for(lambda: n in self.replies or self.closed, timeout)
            if n not in self.replies:
                log = Path(self.profile, "chromium.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"Chromium gave no answer to {method}; its log ends:\n{log}")
            reply = self.replies.pop(n)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def wait(self, session: str, done, timeout: float) -> bool:
        """Wait until done(the session's events) holds, polling: it may be about quiet time."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not self.closed and time.monotonic() < deadline:
                if done([e for e in self.events if e.get("sessionId") == session]):
                    return True
                self.cv.wait(0.05)
        return False

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def network_idle(events: list, quiet: float = 0.1) -> bool:
    done = {e["params"]["requestId"] for e in events
            if e["method"] in ("Network.loadingFinished", "Network.loadingFailed")}
    sent = {e["params"]["requestId"] for e in events if e["method"] == "Network.requestWillBeSent"}
    return sent <= done and time.monotonic() - max(e["_t"] for e in events) > quiet


def visit(browser: Browser, url: str, timeout: float) -> tuple[list, list, dict]:
    """Open url in a new tab: (problems, notes, what PAGE_JS found)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    problems: list[str] = []
    info: dict = {}
    try:
        for domain in ("Page", "Network", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=sid)
        nav = browser.send("Page.navigate", {"url": url}, sid, timeout)
        if nav.get("errorText"):
            return [f"does not load ({nav['errorText']})"], [], info
        if not browser.wait(sid, lambda ev: any(e["method"] == "Page.loadEventFired" for e in ev),
                            timeout):
            problems.append(f"no load event within {timeout:.0f} s")
        done = browser.send("Runtime.evaluate", {"expression": PAGE_JS, "awaitPromise": True,
                                                 "returnByValue": True}, sid, timeout)
        if "exceptionDetails" in done:
            problems.append(f"page script failed: {done['exceptionDetails'].get('text')}")
        info = done["result"].get("value") or {}
        browser.wait(sid, network_idle, 5)
        with browser.cv:
            events = [e for e in browser.events if e.get("sessionId") == sid]
            browser.events = [e for e in browser.events if e.get("sessionId") != sid]
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
    more, notes = event_problems(events, urlsplit(url).netloc)
    return problems + more, notes, info


def event_problems(events: list, host: str) -> tuple[list, list]:
    """What the browser reported: HTTP errors, failed requests (notes if off-site), JS errors."""
    problems: list[str] = []
    notes: list[str] = []
    urls: dict[str, str] = {}
    for e in events:
        method, p = e["method"], e.get("params", {})
        if method == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
        url = urlsplit(p.get("response", {}).get("url") or urls.get(p.get("requestId"), ""))
        if url.path == "/favicon.ico":
            continue  # asked for by the browser itself when a page names no icon
        where = problems if url.netloc == host else notes
        if method == "Network.responseReceived" and p["response"]["status"] >= 400:
            where.append(f"HTTP {p['response']['status']}: {short(url.geturl())}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            where.append(f"{p['errorText']}: {short(url.geturl())}")
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d["text"]
            problems.append("JS error: " + text.splitlines()[0])
        elif method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            problems.append(f"console.{p['type']}: {args}"[:300])
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            if p["entry"]["source"] != "network":  # those are reported above
                problems.append(f"browser error: {p['entry']['text']}"[:300])
    return list(dict.fromkeys(problems)), list(dict.fromkeys(notes))


def short(url: str) -> str:
    """A URL of the served site as its path in the site, others whole."""
    return url.split("/", 3)[3] or "/" if urlsplit(url).hostname == "127.0.0.1" else url


def link_problems(links: list, root: Path, base: str, ids: dict) -> list:
    """Links into the site whose file, or whose #anchor in a checked page, does not exist."""
    problems = []
    for href in dict.fromkeys(h for h in links if h.startswith(base)):  # not mailto:, other hosts
        parts = urlsplit(href)
        target = root / unquote(parts.path).lstrip("/")
        target = target / "index.html" if target.is_dir() else target
        fragment = unquote(parts.fragment)
        if not target.is_file():
            problems.append(f"broken link: {short(href)} (no such file)")
        elif fragment not in ids.get(target, {fragment}) | {""} and not fragment.startswith(":~:"):
            problems.append(f"broken link: {short(href)} (no such anchor)")
    return problems


def serve(root: Path) -> ThreadingHTTPServer:
    types = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
             ".svg": "image/svg+xml", ".woff2": "font/woff2", ".woff": "font/woff"}
    handler = type("Handler", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None,
              "extensions_map": {**SimpleHTTPRequestHandler.extensions_map, **types}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_site(root: Path, browser: Browser, min_text: int, timeout: float) -> dict:
    """{page: (problems, notes)} for every page under root; prints a line per page."""
    root = root.resolve()
    pages = sorted(p for p in root.rglob("*.html") if not any(
        d in SKIP_DIRS or d.startswith(".") for d in p.relative_to(root).parts[:-1]))
    server = serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    found, ids, links = {}, {}, {}
    try:
        for page in pages:
            rel = page.relative_to(root).as_posix()
            try:
                problems, notes, info = visit(browser, base + rel, timeout)
            except RuntimeError as exc:  # this page hangs the check; the next may not
                if browser.closed:
                    raise
                problems, notes, info = [f"check failed: {exc}"], [], {}
            if info:
                problems += [f"image not loaded: {short(u)}" for u in info["broken"]  # unless 4xx
                             if u.startswith(base) and short(u) not in " ".join(problems)]
                if info["text"] < min_text and rel not in NO_TEXT_NEEDED:
                    problems.append(f"empty page: {info['text']} characters of main content")
                ids[page], links[rel] = set(info["ids"]), info["links"]
            found[rel] = (problems, notes)
    finally:
        server.shutdown()
    for rel, (problems, _) in found.items():
        problems += link_problems(links.get(rel, []), root, base, ids)
        print(f"FAIL  {rel}: " + " | ".join(problems) if problems else f"OK    {rel}")
    counts = collections.Counter(note for _, page_notes in found.values() for note in page_notes)
    for note, count in counts.items():
        print(f"note: another host, not checked: {note} ({count} page{'s' * (count > 1)})")
    return found


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
GOOD = ('<img src="img.png"><img src="pic.svg"><a href="other.html#sec">a</a> <a href="#">top</a>'
        '<a href="sub/">b</a> <a href="https://example.invalid/">c</a><link rel="stylesheet" '
        'href="style.css"><img src="https://example.invalid/badge.png">'
        '<div style="height:5000px"></div><img loading="lazy" src="img.png">')
SELF_TEST = {  # page: (what follows a sentence in <main>, its one problem; None: a good page)
    "index.html": (GOOD, None),
    "other.html": ('<h2 id="sec">Section</h2>', None),
    "sub/index.html": ('<a href="../">home</a>', None),
    "missing_image.html": ('<img src="_images/no.png">', "HTTP 404: _images/no.png"),
    "corrupt_image.html": ('<img src="bad.png">', "image not loaded: bad.png"),
    "broken_link.html": ('<a href="gone.html">x</a>', "broken link: gone.html (no such file)"),
    "broken_anchor.html": ('<a href="other.html#no">x</a>', "other.html#no (no such anchor)"),
    "js_error.html": ("<script>notDefined()</script>", "JS error: ReferenceError"),
    "console_error.html": ('<script>console.error("x")</script>', "console.error: x"),
    "missing_css.html": ('<link rel="stylesheet" href="gone.css">', "HTTP 404: gone.css"),
    "empty.html": (None, "empty page"),  # no sentence
    "unreadable.html": (None, "HTTP 404: unreadable.html"),  # a dangling symlink: served as 404
}


def self_test(chromium: str, min_text: int, timeout: float) -> int:
    """Check SELF_TEST's site: each bad page fails for its one reason alone, good pages pass."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sub").mkdir()
        (root / "unreadable.html").symlink_to(root / "never-written.html")
        for name, (extra, _) in SELF_TEST.items():
            main = f"<p>This is {name}, with enough words to count as a page.</p>{extra}"
            if name != "unreadable.html":
                (root / name).write_text(f"<!doctype html><title>{name}</title>"
                                         f"<main>{main if extra else '<h1>Title</h1>'}</main>")
        (root / "img.png").write_bytes(base64.b64decode(PNG))
        (root / "bad.png").write_bytes(b"not a picture")
        (root / "pic.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4">'
                                      '<rect width="4" height="4"/></svg>')
        (root / "style.css").write_text("body { font-family: sans-serif; }")
        found = run(root, chromium, min_text, timeout)
    wrong = [name for name, (_, expect) in SELF_TEST.items() if len(found[name][0]) != bool(expect)
             or expect and expect not in found[name][0][0]]
    print("self-test:", "FAILED on " + ", ".join(wrong) if wrong else "every failure found")
    return 1 if wrong else 0


def run(root: Path, chromium: str, min_text: int, timeout: float) -> dict:
    start, browser = time.monotonic(), Browser(chromium)
    try:
        found = check_site(root, browser, min_text, timeout)
    finally:
        browser.close()
    failed = sum(1 for problems, _ in found.values() if problems)
    print(f"{len(found)} pages checked in {time.monotonic() - start:.1f} s: {len(found) - failed} "
          f"OK, {failed} failed" + ("" if found else " (is this the built site?)"))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="the built site: docs/_build/html")
    parser.add_argument("--chromium", required=True, help="Chromium, or a launcher of it")
    parser.add_argument("--min-text", type=int, default=20, help="least characters of main content")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a page may take")
    parser.add_argument("--self-test", action="store_true", help="check the checker itself")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.chromium, args.min_text, args.timeout)
    if args.folder is None or not args.folder.is_dir():
        parser.error(f"the built site's folder is needed, got {args.folder}")
    found = run(args.folder, args.chromium, args.min_text, args.timeout)
    return 1 if not found or any(problems for problems, _ in found.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as exc:
        print(f"check_rendered: could not run the check: {exc}", file=sys.stderr)
        sys.exit(2)
