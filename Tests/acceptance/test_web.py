"""The web client in a real browser: two headless Chromium sessions (Selenium) chat through the real
`chorus` binary. Screenshots of the main screens go to $CHORUS_SCREENSHOTS (default
.build/web-screenshots)."""
import os
import pathlib
import shutil
import socket
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, Server

SHOTS = pathlib.Path(os.environ.get("CHORUS_SCREENSHOTS", ROOT / ".build" / "web-screenshots"))
WAIT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(width=1200, height=800):
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


class Page:
    """One person's browser tab on the web client."""

    def __init__(self, base, name):
        self.d = chromium()
        self.base = base
        self.name = name
        self.d.get(base + "/")

    def el(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def until(self, what, message):
        def check(_):
            try:
                return what()
            except StaleElementReferenceException:
                return False
        return WebDriverWait(self.d, WAIT, poll_frequency=0.1).until(check, message)

    def visible(self, css):
        return self.until(lambda: self.el(css).is_displayed() and self.el(css), f"{self.name}: {css} not shown")

    def fill(self, css, text):
        e = self.visible(css)
        e.clear()
        e.send_keys(text)

    def register(self, username, display):
        self.visible("#tab-register").click()
        self.fill("#register-username", username)
        self.fill("#register-display", display)
        self.fill("#register-email", f"{username}@example.com")
        self.fill("#register-password", "password1")
        self.el("#register-form button[type=submit]").click()
        self.visible("#chat")
        self.until(lambda: self.el("#banner").get_attribute("hidden") is not None or "Connected" in self.el("#banner").text,
                   f"{self.name}: never connected")

    def open_conversation(self, title):
        self.until(lambda: [b for b in self.d.find_elements(By.CSS_SELECTOR, "li.conv button") if title in b.text],
                   f"{self.name}: no conversation {title!r}")[0].click()
        self.until(lambda: self.el("#conv-title").text == title, f"{self.name}: {title!r} not opened")

    def send(self, text):
        box = self.visible("#message-input")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def bodies(self):
        return [e.text for e in self.d.find_elements(By.CSS_SELECTOR, "#messages .msg .body")]

    def until_bodies(self, expected):
        # The failure message reads the page only on failure: read eagerly, a re-render at that
        # moment made the element stale before the wait had begun.
        try:
            self.until(lambda: self.bodies() == expected, f"{self.name}: messages != {expected}")
        except TimeoutException:
            try:
                shown = self.bodies()
            except StaleElementReferenceException:
                shown = "(re-rendering)"
            raise AssertionError(f"{self.name}: messages {shown} != {expected}")

    def status_of(self, body):
        for m in self.d.find_elements(By.CSS_SELECTOR, "#messages .msg.mine"):
            if m.find_element(By.CSS_SELECTOR, ".body").text == body:
                return m.find_element(By.CSS_SELECTOR, ".status").text
        return None

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SHOTS / f"{name}.png"))

    def script_errors(self):
        """Console errors other than the WebSocket failures expected while the server is down."""
        return [e["message"] for e in self.d.get_log("browser")
                if e["level"] == "SEVERE" and "WebSocket connection" not in e["message"]
                and "Failed to load resource" not in e["message"]]

    def quit(self):
        self.d.quit()


@pytest.fixture
def browsers():
    pages = []
    yield pages
    for p in pages:
        p.quit()


def test_two_people_chat_reload_and_survive_a_restart(datadir, browsers):
    port = free_port()
    data = datadir + "/data"
    server = Server(data, http=f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    try:
        # The page comes with a strict CSP and no inline code.
        with urllib.request.urlopen(base + "/", timeout=10) as r:
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
            assert r.headers["Content-Type"].startswith("text/html")

        ann = Page(base, "ann")
        browsers.append(ann)
        ann.visible("#login-form")
        ann.shot("01-login")
        ann.register("ann", "Ann Smith")
        bob = Page(base, "bob")
        browsers.append(bob)
        bob.register("bob", "Bob Jones")

        # Ann starts a direct conversation with bob and writes; the message goes sending -> sent.
        ann.fill("#direct-username", "bob")
        ann.el("#new-direct button").click()
        ann.until(lambda: ann.el("#conv-title").text == "Bob Jones", "ann: conversation with bob not opened")
        ann.send("hello bob")
        ann.until_bodies(["hello bob"])
        ann.until(lambda: ann.status_of("hello bob") in ("sent", "delivered", "read"), "ann: never acked")

        # Bob sees it live with an unread count, opens it: ann sees "read".
        bob.until(lambda: "1" in bob.el("li.conv .badge").text, "bob: no unread badge")
        bob.shot("02-unread")
        bob.open_conversation("Ann Smith")
        bob.until_bodies(["hello bob"])
        ann.until(lambda: ann.status_of("hello bob") == "read", "ann: no read receipt")

        # Typing and presence.
        bob.visible("#message-input").send_keys("typing")
        ann.until(lambda: "Bob Jones is typing" in ann.el("#typing").text, "ann: no typing indicator")
        ann.until(lambda: ann.el("#conv-sub").text == "online", "ann: bob not shown online")
        bob.el("#message-input").clear()
        bob.send("hi ann, <img src=x onerror=alert(1)> & welcome")
        ann.until_bodies(["hello bob", "hi ann, <img src=x onerror=alert(1)> & welcome"])
        assert ann.d.find_elements(By.CSS_SELECTOR, "#messages img") == [], "a body was rendered as HTML"
        ann.shot("03-conversation-ann")
        bob.shot("04-conversation-bob")

        # Bob reloads mid-conversation while ann writes: nothing lost, nothing twice.
        bob.d.refresh()
        ann.send("while you reload")
        bob.visible("#chat")
        bob.open_conversation("Ann Smith")
        expected = ["hello bob", "hi ann, <img src=x onerror=alert(1)> & welcome", "while you reload"]
        bob.until_bodies(expected)
        ann.until(lambda: ann.status_of("while you reload") == "read", "ann: reload lost the read receipt")

        # The server is killed: both pages say so; ann writes meanwhile; the server comes back on the
        # same port and data directory and the pages recover by themselves.
        server.kill()
        for p in (ann, bob):
            p.until(lambda p=p: "Reconnecting" in p.el("#banner").text, f"{p.name}: no reconnecting banner")
        ann.send("sent during the outage")
        ann.until(lambda: ann.status_of("sent during the outage") == "sending", "ann: no pending message")
        ann.shot("05-reconnecting")
        server = Server(data, http=f"127.0.0.1:{port}")
        ann.until(lambda: ann.status_of("sent during the outage") in ("sent", "delivered", "read"), "ann: the outage message never acked")
        expected.append("sent during the outage")
        bob.until_bodies(expected)
        bob.send("after the restart")
        expected.append("after the restart")
        ann.until_bodies(expected)
        bob.until_bodies(expected)
        for p in (ann, bob):
            p.until(lambda p=p: p.el("#banner").get_attribute("hidden") is not None, f"{p.name}: banner still shown")
        ann.shot("06-recovered")
        assert ann.script_errors() == [] and bob.script_errors() == []
    finally:
        server.stop()


def test_groups_errors_and_a_narrow_screen(datadir, browsers):
    server = Server(datadir + "/data", "--session-rate-limit", "1:2")
    base = f"http://{server.base}"
    try:
        for name in ("cat", "dan"):
            server.user(name)
        eve = Page(base, "eve")
        browsers.append(eve)
        eve.register("eve", "Eve")

        # Every error gets words: a wrong password, an unknown user.
        eve.el("#logout").click()
        eve.visible("#login-form")
        eve.fill("#login-username", "eve")
        eve.fill("#login-password", "wrong-password")
        eve.el("#login-form button[type=submit]").click()
        eve.until(lambda: "Wrong username or password" in eve.el("#auth-error").text, "eve: no invalid_credentials text")
        eve.fill("#login-password", "password1")
        eve.el("#login-form button[type=submit]").click()
        eve.visible("#chat")
        eve.fill("#direct-username", "nobody")
        eve.el("#new-direct button").click()
        eve.until(lambda: "No such user" in eve.el("#sidebar-error").text, "eve: no unknown_user text")

        # A group: create, add, remove.
        eve.el("#new-group-box summary").click()
        eve.fill("#group-title", "Team")
        eve.fill("#group-members", "cat, dan")
        eve.el("#new-group button").click()
        eve.until(lambda: eve.el("#conv-title").text == "Team", "eve: group not opened")
        assert eve.el("#conv-sub").text == "3 members"
        eve.el("#members-toggle").click()
        remove_dan = eve.until(lambda: [b for b in eve.d.find_elements(By.CSS_SELECTOR, "#member-list button")
                                        if b.get_attribute("aria-label") == "Remove dan"], "eve: no remove button")[0]
        remove_dan.click()
        eve.until(lambda: eve.el("#conv-sub").text == "2 members", "eve: dan not removed")
        eve.fill("#add-member-username", "dan")
        eve.el("#add-member button").click()
        eve.until(lambda: eve.el("#conv-sub").text == "3 members", "eve: dan not added back")

        # The session limit is 1 frame/s with bursts of 2: a quick third message is refused with the
        # time to wait, and Retry sends it (same clientMsgId) once allowed.
        for text in ("one", "two", "three", "four"):
            eve.send(text)
        eve.until(lambda: "you can send again" in " ".join(e.text for e in eve.d.find_elements(By.CSS_SELECTOR, ".msg.failed .status")),
                  "eve: no rate_limited text")
        eve.shot("07-rate-limited")
        for _ in range(8):
            failed = eve.d.find_elements(By.CSS_SELECTOR, ".msg.failed button")
            if not failed:
                break
            eve.until(lambda: "send again now" in eve.el(".msg.failed .status").text, "eve: never allowed again")
            eve.el(".msg.failed button").click()
            eve.until(lambda: not eve.d.find_elements(By.CSS_SELECTOR, ".msg.pending:not(.failed)"), "eve: retry never settled")
        eve.until(lambda: sorted(eve.bodies()) == sorted(["one", "two", "three", "four"]), "eve: retried messages missing")

        # A narrow screen shows the list or the conversation, with a way back.
        eve.d.set_window_size(400, 800)
        eve.shot("08-narrow-conversation")
        eve.el("#back").click()
        eve.visible("#conversation-list")
        eve.shot("09-narrow-list")
        assert eve.script_errors() == []
    finally:
        server.stop()


def test_history_pages_back_as_you_scroll_up(datadir, browsers):
    server = Server(datadir + "/data", "--user-send-rate-limit", "off")
    base = f"http://{server.base}"
    try:
        server.user("ann")
        bob = server.user("bob")
        ann_id = server.http("GET", "/v1/users?username=ann", token=bob["token"])[1]["userId"]
        status, conv = server.http("POST", "/v1/conversations", {"members": [ann_id]}, token=bob["token"])
        assert status == 201
        path = f"/v1/conversations/{conv['conversationId']}/messages"
        for i in range(130):
            assert server.http("POST", path, {"clientMsgId": f"h{i}", "body": f"history {i}"}, token=bob["token"])[0] == 201

        ann = Page(base, "ann")
        browsers.append(ann)
        # By keyboard only: the login form starts focused; Tab, Enter.
        ann.visible("#login-username")
        ann.until(lambda: ann.d.switch_to.active_element.get_attribute("id") == "login-username", "ann: login not focused")
        ann.d.switch_to.active_element.send_keys("ann", Keys.TAB, "password1", Keys.ENTER)
        ann.visible("#chat")
        ann.until(lambda: ann.el("li.conv .badge").text == "130", "ann: unread count is not 130")
        conv = ann.el("li.conv button")
        assert conv.get_attribute("aria-label") == "bob, 130 unread"
        ann.d.execute_script("arguments[0].focus()", conv)
        ann.d.switch_to.active_element.send_keys(Keys.ENTER)
        ann.until(lambda: ann.el("#conv-title").text == "bob", "ann: Enter on the conversation did not open it")
        ann.until(lambda: len(ann.bodies()) == 50, "ann: the newest page is not 50 messages")
        assert ann.bodies() == [f"history {i}" for i in range(80, 130)]
        for _ in range(10):
            if len(ann.bodies()) == 130:
                break
            count = len(ann.bodies())
            ann.d.execute_script("document.getElementById('scroller').scrollTop = 0")
            ann.until(lambda count=count: len(ann.bodies()) > count or len(ann.bodies()) == 130, "ann: scrolling up loaded nothing")
        assert ann.bodies() == [f"history {i}" for i in range(130)], "every message once, in seq order"
        ann.until(lambda: ann.el("#load-older").get_attribute("hidden") is not None, "ann: still offers older messages")
        ann.until(lambda: not ann.d.find_elements(By.CSS_SELECTOR, "li.conv .badge"), "ann: opening did not clear the unread count")
        assert ann.script_errors() == []
    finally:
        server.stop()


def test_the_same_page_works_against_a_cluster(datadir, browsers):
    """Each person's browser talks to another node of a three-node cluster."""
    from test_cluster import Cluster
    cluster = Cluster(datadir)
    try:
        ann = Page(f"http://{cluster[0].base}", "ann")
        browsers.append(ann)
        ann.register("ann", "Ann")
        bob = Page(f"http://{cluster[1].base}", "bob")
        browsers.append(bob)
        bob.register("bob", "Bob")
        ann.fill("#direct-username", "bob")
        ann.el("#new-direct button").click()
        ann.until(lambda: ann.el("#conv-title").text == "Bob", "ann: conversation with bob not opened")
        ann.until(lambda: ann.el("#conv-sub").text == "online", "ann: bob (another node) not shown online")
        ann.send("across the mesh")
        bob.until(lambda: "1" in bob.el("li.conv .badge").text, "bob: no unread badge")
        bob.open_conversation("Ann")
        bob.until_bodies(["across the mesh"])
        ann.until(lambda: ann.status_of("across the mesh") == "read", "ann: no read receipt across nodes")
        bob.visible("#message-input").send_keys("typing")
        ann.until(lambda: "Bob is typing" in ann.el("#typing").text, "ann: no typing across nodes")
        bob.el("#message-input").clear()
        bob.send("and back")
        ann.until_bodies(["across the mesh", "and back"])
        ann.shot("10-cluster")
        assert ann.script_errors() == [] and bob.script_errors() == []
    finally:
        for n in cluster:
            if n.proc.poll() is None:
                n.stop()
