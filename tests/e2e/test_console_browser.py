"""The console in a real browser: Debian's chromium, headless, driven by
Selenium against a real server with real data. Each role signs in through the
form; an order is found by id and by e-mail and its timeline read; the pages
are used with the keyboard alone; axe-core finds no WCAG 2 A/AA violation
(contrast included); a body full of HTML and script runs nothing; a forged
session is sent back to sign in; a form on another site that posts to the
console is refused. Screenshots of each page go to
``HOOKLEDGER_CONSOLE_SCREENSHOTS`` when it names a folder (docs/console holds
the README's)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import CHROMEDRIVER, CHROMIUM, axe_script, chromium_or_reason
from tests.e2e.test_console import AUDITOR, OPERATOR, action_state, dead_letter
from tests.e2e_helpers import decision_body, order_body, send_post_purchase, send_veriff, wait_for
from tests.support import ServerProcess

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    reason = chromium_or_reason()
    if reason is not None:
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--disable-gpu"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def axe() -> str:
    found = axe_script()
    if isinstance(found, str):
        pytest.skip(found)
    return found.read_text()


@pytest.fixture(scope="module")
def site(shared_database_url: str) -> Iterator[ServerProcess]:
    settings = {"HOOKLEDGER_OPERATOR_TOKENS": OPERATOR, "HOOKLEDGER_AUDITOR_TOKENS": AUDITOR,
                "HOOKLEDGER_BACKGROUND": "true"}  # fmt: skip
    server = ServerProcess(shared_database_url, env=settings).start()
    for n in range(3):
        body = order_body(f"b-{n}", customerEmail=f"browser.{n}@example.com", note=HOSTILE)
        assert send_post_purchase(server.url, body).status_code == 200
    decision = decision_body("b-0")
    decision["verification"]["person"] = {"firstName": HOSTILE, "dateOfBirth": "1975-06-07"}
    assert send_veriff(server.url, decision).status_code == 200
    yield server
    server.stop()


def shot(driver: webdriver.Chrome, name: str) -> None:
    folder = os.environ.get("HOOKLEDGER_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def sign_in(driver: webdriver.Chrome, site: ServerProcess, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(site.url + "/console")
    assert driver.current_url.endswith("/console/sign-in")
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.send_keys(Keys.ENTER)  # the keyboard alone: no click
    wait_for(lambda: driver.current_url.endswith("/console"), 10)


def violations(driver: webdriver.Chrome, axe: str) -> list[dict[str, Any]]:
    driver.execute_script(axe)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
        ".then(r => done(r.violations.map(v => ({id: v.id, nodes: v.nodes.length}))));"
    )
    return list(result)


def present(driver: webdriver.Chrome, by: str, value: str) -> bool:
    """Whether the page has such an element (no, while a new page replaces it)."""
    try:
        return bool(driver.find_elements(by, value))
    except WebDriverException:
        return False


def heading(driver: webdriver.Chrome) -> str:
    """The page's h1, or nothing while a new page replaces the old one."""
    try:
        return str(driver.find_element(By.TAG_NAME, "h1").text)
    except WebDriverException:
        return ""


def no_script_ran(driver: webdriver.Chrome) -> None:
    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert.text
    assert driver.execute_script("return window.pwned === undefined")


def test_each_role_signs_in_finds_an_order_and_reads_its_timeline(
    browser: webdriver.Chrome, site: ServerProcess, axe: str
) -> None:
    for token, role in ((AUDITOR, "auditor"), (OPERATOR, "operator")):
        sign_in(browser, site, token)
        assert browser.find_element(By.CLASS_NAME, "who").text == role
        assert "Self-test" in browser.find_element(By.TAG_NAME, "h2").text
        assert violations(browser, axe) == []
        shot(browser, f"overview-{role}")

        browser.get(site.url + "/console/orders")
        search = browser.find_element(By.ID, "q")
        search.send_keys("b-0", Keys.ENTER)
        wait_for(lambda: present(browser, By.LINK_TEXT, "b-0"), 10)
        assert violations(browser, axe) == []
        browser.find_element(By.ID, "q").clear()
        browser.find_element(By.ID, "q").send_keys("Browser.1@example.com", Keys.ENTER)
        wait_for(lambda: present(browser, By.LINK_TEXT, "b-1"), 10)
        assert "browser.1@example.com" not in browser.page_source
        shot(browser, f"orders-{role}")

        browser.find_element(By.LINK_TEXT, "b-1").click()
        browser.get(site.url + "/console/orders/b-0")
        timeline = browser.find_element(By.CLASS_NAME, "timeline").text
        assert "order.created" in timeline and "verification.approved" in timeline
        assert "chain intact" in browser.page_source
        for details in browser.find_elements(By.TAG_NAME, "summary"):
            details.click()
        bodies = " ".join(p.text for p in browser.find_elements(By.TAG_NAME, "pre"))
        assert ("1975-06-07" in bodies) == (role == "operator")
        assert "<script>" in bodies  # shown as text, never run
        no_script_ran(browser)
        assert violations(browser, axe) == []
        shot(browser, f"timeline-{role}")

        browser.get(site.url + "/console/trouble")
        assert "Refused signatures" in browser.page_source
        assert violations(browser, axe) == []
        shot(browser, f"trouble-{role}")

        browser.get(site.url + "/console/replays")
        assert "Who follows the ledger" in browser.page_source
        assert violations(browser, axe) == []
        shot(browser, f"replays-{role}")

        browser.get(site.url + "/console/operators")
        assert "What operators did" in browser.page_source
        assert violations(browser, axe) == []


def test_the_keyboard_reaches_every_control_in_order(
    browser: webdriver.Chrome, site: ServerProcess
) -> None:
    sign_in(browser, site, OPERATOR)
    browser.get(site.url + "/console/orders")
    reached = []
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(12):
        active = browser.switch_to.active_element
        reached.append(active.get_attribute("id") or active.text or active.tag_name)
        active.send_keys(Keys.TAB)
    assert {"q", "status", "Search", "Orders", "Sign out"} <= set(reached), reached


def test_a_forged_session_or_a_signed_out_one_is_sent_back_to_sign_in(
    browser: webdriver.Chrome, site: ServerProcess
) -> None:
    sign_in(browser, site, AUDITOR)
    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait_for(lambda: browser.current_url.endswith("/console/sign-in"), 10)
    browser.get(site.url + "/console")
    assert browser.current_url.endswith("/console/sign-in")
    browser.add_cookie({"name": "hookledger_console", "value": "e30.forged", "path": "/console"})
    browser.get(site.url + "/console")
    assert browser.current_url.endswith("/console/sign-in")
    shot(browser, "sign-in")


def test_an_operator_retries_a_dead_letter_with_a_click_and_an_auditor_cannot(
    browser: webdriver.Chrome, site: ServerProcess, axe: str, shared_database_url: str
) -> None:
    key = "refund:browser-test"
    dead_letter(shared_database_url, key)
    sign_in(browser, site, AUDITOR)
    browser.get(site.url + "/console/dead-letters")
    assert key in browser.page_source
    assert not browser.find_elements(By.XPATH, "//button[text()='Retry']")
    assert violations(browser, axe) == []
    sign_in(browser, site, OPERATOR)
    browser.get(site.url + "/console/dead-letters")
    shot(browser, "dead-letters-operator")
    browser.find_element(By.XPATH, "//button[text()='Retry']").click()
    wait_for(lambda: present(browser, By.CLASS_NAME, "done"), 10)
    assert "queued again" in browser.find_element(By.CLASS_NAME, "done").text
    assert violations(browser, axe) == []
    assert wait_for(lambda: action_state(shared_database_url, key) == "done", 20)


def test_an_operator_retries_all_dead_letters_of_a_kind_after_a_count(
    browser: webdriver.Chrome, site: ServerProcess, axe: str, shared_database_url: str
) -> None:
    for n in range(2):
        dead_letter(shared_database_url, f"refund:browser-bulk-{n}")
    sign_in(browser, site, OPERATOR)
    browser.get(site.url + "/console/dead-letters?kind=refund")
    browser.find_element(By.XPATH, "//button[starts-with(text(), 'Retry all')]").click()
    wait_for(lambda: "dead letters?" in heading(browser), 10)
    assert violations(browser, axe) == []
    shot(browser, "retry-all-confirm")
    browser.find_element(By.XPATH, "//button[starts-with(text(), 'Retry ')]").click()
    wait_for(lambda: "/console/jobs/" in browser.current_url, 10)

    def finished() -> bool:
        try:
            if "finished" in browser.page_source:
                return True
            browser.refresh()
        except WebDriverException:
            pass  # the page was being replaced: look again
        return False

    wait_for(finished, 20)
    assert "2 done" in browser.page_source
    assert violations(browser, axe) == []
    shot(browser, "job")


def test_an_operator_erases_a_customers_personal_data_after_a_confirmation_page(
    browser: webdriver.Chrome, site: ServerProcess, axe: str
) -> None:
    sign_in(browser, site, OPERATOR)
    browser.get(site.url + "/console/orders/b-2")
    assert "browser.2@example.com" in browser.page_source
    browser.find_element(By.ID, "reason").send_keys("the customer asked, ticket 7")
    browser.find_element(By.XPATH, "//button[text()='Erase…']").click()
    wait_for(lambda: "Erase the personal data" in heading(browser), 10)
    assert violations(browser, axe) == []
    shot(browser, "erase-confirm")
    browser.find_element(By.XPATH, "//button[starts-with(text(), 'Erase 1 value')]").click()
    wait_for(lambda: present(browser, By.CLASS_NAME, "done"), 10)
    assert "1 personal value erased" in browser.find_element(By.CLASS_NAME, "done").text
    assert "browser.2@example.com" not in browser.page_source
    assert violations(browser, axe) == []
    sign_in(browser, site, AUDITOR)  # who did it, as the auditor reads it
    browser.get(site.url + "/console/operators")
    assert "the customer asked, ticket 7" in browser.page_source
    assert violations(browser, axe) == []
    shot(browser, "operators-auditor")


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """Another site's web server (its port, and the folder it serves)."""
    folder = tmp_path_factory.mktemp("elsewhere")
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], folder
    server.shutdown()
    server.server_close()


def test_a_form_on_another_site_posting_to_the_console_is_refused(
    browser: webdriver.Chrome, site: ServerProcess, elsewhere: tuple[int, Path],
    shared_database_url: str,
) -> None:  # fmt: skip
    key = "refund:browser-csrf"
    dead_letter(shared_database_url, key)
    port, folder = elsewhere
    (folder / "prize.html").write_text(
        '<!doctype html><title>You won</title><form method="post" '
        f'action="{site.url}/console/dead-letters/retry">'
        f'<input type="hidden" name="key" value="{key}">'
        '<input type="hidden" name="csrf" value="guessed">'
        "<button>Claim your prize</button></form>"
    )
    sign_in(browser, site, OPERATOR)
    # Another site (localhost is not 127.0.0.1), then a page of the same site
    # on another port (the session cookie goes along; the Origin gives it away).
    for host in ("localhost", "127.0.0.1"):
        browser.get(f"http://{host}:{port}/prize.html")
        browser.find_element(By.TAG_NAME, "button").click()
        wait_for(lambda: site.url in browser.current_url, 10)
        assert "queued again" not in browser.page_source
        assert "unauthorized" in browser.page_source
    assert action_state(shared_database_url, key) == "dead"
    browser.get(site.url + "/console")
    assert browser.current_url.endswith("/console")  # the operator is still signed in


def test_every_page_fits_a_phones_width(browser: webdriver.Chrome, site: ServerProcess) -> None:
    sign_in(browser, site, OPERATOR)
    browser.set_window_size(390, 844)
    try:
        for path in ("/console", "/console/orders", "/console/orders/b-0", "/console/dead-letters",
                     "/console/trouble", "/console/replays", "/console/operators"):  # fmt: skip
            browser.get(site.url + path)
            if path == "/console/orders/b-0":
                shot(browser, "timeline-phone")
            for details in browser.find_elements(By.TAG_NAME, "summary"):
                details.click()
            page = "document.documentElement"
            wide = browser.execute_script(f"return [{page}.scrollWidth, {page}.clientWidth]")
            assert wide[0] <= wide[1], (path, wide)  # nothing to scroll sideways
    finally:
        browser.set_window_size(1280, 900)
