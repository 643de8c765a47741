"""The console over HTTP, against a real server with real data: sign-in by
token into a strict session cookie for each role, the overview, finding an
order by id and by e-mail, its timeline (personal values masked for the
auditor), escaping of what providers send, a strict CSP, and forms refused
when posted from another site or with a forged cookie. (The same in a real
browser is the next step of issue 16.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.test_proofs import KEY_PEM, ORIGIN
from tests.e2e_helpers import (
    decision_body,
    order_body,
    send_post_purchase,
    send_veriff,
    wait_for,
)
from tests.support import ServerProcess

OPERATOR = "operator-console-token"
AUDITOR = "auditor-console-token"


@pytest.fixture(scope="module")
def console(shared_database_url: str) -> Iterator[ServerProcess]:
    settings = {"HOOKLEDGER_OPERATOR_TOKENS": OPERATOR, "HOOKLEDGER_AUDITOR_TOKENS": AUDITOR,
                "HOOKLEDGER_BACKGROUND": "true", "HOOKLEDGER_CHECKPOINT_KEY": KEY_PEM,
                "HOOKLEDGER_CHECKPOINT_ORIGIN": ORIGIN}  # fmt: skip
    server = ServerProcess(shared_database_url, env=settings).start()
    body = order_body("c-1", customerEmail="console.person@example.com",
                      note="<script>alert('x')</script><b>bold</b>")  # fmt: skip
    assert send_post_purchase(server.url, body).status_code == 200
    decision = decision_body("c-1")
    decision["verification"]["person"] = {"firstName": "Solveig", "dateOfBirth": "1980-04-05"}
    assert send_veriff(server.url, decision).status_code == 200
    yield server
    server.stop()


@contextmanager
def signed_in(server: ServerProcess, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answer = client.post("/console/sign-in", data={"token": token})
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP on localhost only
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    return html.split('name="csrf" value="')[1].split('"', maxsplit=1)[0]


def retry_all_count(client: httpx.Client, html: str, kind: str) -> str:
    """The confirmation page "retry all" of ``kind`` answers first."""
    data = {"csrf": csrf_of(html), "kind": kind}
    return client.post("/console/dead-letters/retry-all", data=data).text


def page(client: httpx.Client, path: str) -> httpx.Response:
    for _ in range(50):  # the projections follow the ledger in the background
        answer = client.get(path)
        if answer.status_code == 200 and "c-1" in answer.text:
            return answer
    return answer


def test_without_a_session_every_page_sends_you_to_sign_in(console: ServerProcess) -> None:
    for path in ("/console", "/console/orders", "/console/orders/c-1"):
        answer = httpx.get(console.url + path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    forged = httpx.get(console.url + "/console", cookies={"hookledger_console": "e30.AAAA"})
    assert forged.status_code == 303
    refused = httpx.post(console.url + "/console/sign-in", data={"token": "guess"})
    assert refused.status_code == 401 and "opens nothing" in refused.text
    assert "default-src 'none'" in refused.headers["content-security-policy"]


def test_each_role_signs_in_and_reads_the_overview(console: ServerProcess) -> None:
    for token, role in ((AUDITOR, "auditor"), (OPERATOR, "operator")):
        with signed_in(console, token) as client:
            answer = client.get("/console")
            assert answer.status_code == 200
            assert f'<span class="who">{role}</span>' in answer.text
            assert "Self-test" in answer.text and "Dead letters" in answer.text
            # Each subsystem's state and reason, as /__selftest gives them.
            assert '<th scope="row">ledger</th><td class="state state-' in answer.text
            assert '<td class="state state-"></td>' not in answer.text
            lag = answer.text.split("<dt>Consumer lag</dt><dd>")[1].split("</dd>")[0]
            assert "events behind" in lag or "event behind" in lag, lag
            csp = answer.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert client.get("/console/static/console.css").status_code == 200


def test_an_order_is_found_by_id_and_by_email_never_listing_the_address(
    console: ServerProcess,
) -> None:
    with signed_in(console, AUDITOR) as client:
        by_id = page(client, "/console/orders?q=c-1")
        assert 'href="/console/orders/c-1"' in by_id.text
        by_email = page(client, "/console/orders?q=Console.Person@example.com")
        assert 'href="/console/orders/c-1"' in by_email.text
        assert "keyed hash" in by_email.text
        assert "console.person@example.com" not in by_email.text.replace("Console.Person", "")
        running = page(client, "/console/orders?countdown=satisfied")
        assert 'href="/console/orders/c-1"' in running.text  # approved: satisfied
        expired = client.get("/console/orders?countdown=expired&q=c-1")
        assert 'href="/console/orders/c-1"' not in expired.text
        nothing = client.get("/console/orders?q=nobody@example.com")
        assert 'href="/console/orders/' not in nothing.text


def test_the_timeline_masks_personal_values_for_the_auditor_and_escapes_everything(
    console: ServerProcess,
) -> None:
    with signed_in(console, AUDITOR) as client:
        auditor = page(client, "/console/orders/c-1").text
    assert "order.created" in auditor and "verification.approved" in auditor
    assert "chain intact" in auditor
    assert "Solveig" not in auditor and "console.person@example.com" not in auditor
    assert "shown to operators" in auditor
    assert "<script>" not in auditor and "&lt;script&gt;" in auditor
    with signed_in(console, OPERATOR) as client:
        operator = page(client, "/console/orders/c-1").text
        assert "Countdown: " in operator and "Reminders: " in operator
        # 503 until the tree (which follows the ledger each second) has the order.
        download = wait_for(
            lambda: (d := client.get("/console/orders/c-1/evidence")).status_code == 200 and d,
            20,
        )
        assert download, "no evidence within 20 s"
        assert "attachment" in download.headers["content-disposition"]
        assert download.json()["stream"] == "order-c-1"
    assert "Solveig" in operator and "console.person@example.com" in operator
    assert "<script>" not in operator and "<b>bold</b>" not in operator


def test_forms_from_another_site_or_without_the_csrf_token_are_refused(
    console: ServerProcess,
) -> None:
    with signed_in(console, OPERATOR) as client:
        cross = client.post("/console/sign-out", data={"csrf": "x"},
                            headers={"Origin": "https://evil.example"})  # fmt: skip
        assert cross.status_code == 401
        fetched = client.post("/console/sign-in", data={"token": OPERATOR},
                              headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
        assert fetched.status_code == 401
        no_token = client.post("/console/sign-out", data={})
        assert no_token.status_code == 401
        assert client.get("/console").status_code == 200  # still signed in


def dead_letter(database_url: str, key: str) -> None:
    """An action that gave up (its provider refused it five times)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO actions (key, kind, order_id, trigger_event_id, params, state, attempts,"
            " last_error) VALUES (%s, 'refund', 'c-1', 'countdown.closed:c-1',"
            ' \'{"amount": "59.9", "currency": "EUR"}\', \'dead\', 5, \'provider said 500\')',
            (key,),
        )


def action_state(database_url: str, key: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT state FROM actions WHERE key = %s", (key,)).fetchone()
    return str(row[0]) if row else "?"


def test_an_operator_retries_a_dead_letter_and_the_ledger_records_who(
    console: ServerProcess, shared_database_url: str
) -> None:
    key = "refund:console-test"
    dead_letter(shared_database_url, key)
    with signed_in(console, AUDITOR) as auditor:
        listed = auditor.get("/console/dead-letters")
        assert key in listed.text and "provider said 500" in listed.text
        assert 'action="/console/dead-letters/retry"' not in listed.text  # no button to press
        csrf = csrf_of(auditor.get("/console").text)
        refused = auditor.post("/console/dead-letters/retry", data={"csrf": csrf, "key": key})
        assert refused.status_code == 403
    assert action_state(shared_database_url, key) == "dead"
    with signed_in(console, OPERATOR) as operator:
        page_ = operator.get("/console/dead-letters")
        csrf = csrf_of(page_.text)
        done = operator.post("/console/dead-letters/retry", data={"csrf": csrf, "key": key})
        assert done.status_code == 303 and "queued%20again" in done.headers["location"]
        # Safe mode: the retried refund is recorded as a dry run, and counts as done.
        assert wait_for(lambda: action_state(shared_database_url, key) == "done", 20)
        timeline = page(operator, "/console/orders/c-1").text
        assert "operator.retried" in timeline and "operator token" in timeline
        again = operator.post("/console/dead-letters/retry", data={"csrf": csrf, "key": key})
        assert again.status_code == 404


def test_serve_on_the_embedded_database_prints_a_one_time_operator_link(
    tmp_path: Path,
) -> None:
    server = ServerProcess("", env={"HOOKLEDGER_DATA_DIR": str(tmp_path / "data")}).start(60)
    try:
        line = next(x for x in server.output().splitlines() if x.startswith("console: "))
        link = line.split()[1]
        assert "/console/sign-in?once=" in link
        with httpx.Client(timeout=10) as browser:
            first = browser.get(link)
            assert first.status_code == 303 and first.headers["location"] == "/console"
            overview = browser.get(server.url + "/console")
            assert '<span class="who">operator</span>' in overview.text
        again = httpx.get(link, timeout=10)  # a link works once
        assert again.status_code == 401 and "used already" in again.text
    finally:
        server.stop()


def test_trouble_groups_refused_signatures_and_shows_blocked_countdowns(
    console: ServerProcess, shared_database_url: str
) -> None:
    for _ in range(3):  # signed with a secret the service does not have: mismatch
        refused = send_post_purchase(console.url, order_body("c-2"), secret="whsec_" + "A" * 32)
        assert refused.status_code == 401
    # An order whose countdown runs, and its reminder that gave up.
    assert send_post_purchase(console.url, order_body("c-3")).status_code == 200

    def running() -> bool:
        with psycopg.connect(shared_database_url) as conn:
            row = conn.execute("SELECT state FROM countdowns WHERE order_id = 'c-3'").fetchone()
        return row is not None and row[0] == "running"

    assert wait_for(running, 20)
    with psycopg.connect(shared_database_url) as conn:
        conn.execute(
            "INSERT INTO actions (key, kind, order_id, trigger_event_id, params, state, attempts,"
            " last_error) VALUES ('email.reminder:trouble', 'email.reminder', 'c-3', 't', '{}',"
            " 'dead', 5, 'SendGrid answered 503')"
        )
    with signed_in(console, AUDITOR) as client:

        def grouped() -> str | None:
            text = client.get("/console/trouble").text
            return text if "<td>mismatch</td>" in text else None

        text = wait_for(grouped, 20)  # each process adds its tally every 5 s
        assert text is not None, "the refused signatures never showed"
        assert '<th scope="row">post-purchase</th><td>mismatch</td><td>3</td>' in text
        overview = client.get("/console").text
        assert '<th scope="row">post-purchase</th><td>recorded</td>' in overview
        assert '<th scope="row">post-purchase</th><td>signature_rejected</td><td>3</td>' in overview
        assert "SendGrid answered 503" in text and "email.reminder" in text


def test_retrying_every_dead_letter_of_a_kind_says_how_many_first_then_runs_with_progress(
    console: ServerProcess, shared_database_url: str
) -> None:
    keys = [f"refund:bulk-{n}" for n in range(3)]
    for key in keys:
        dead_letter(shared_database_url, key)
    with signed_in(console, OPERATOR) as client:
        csrf = csrf_of(client.get("/console").text)
        asked = client.post(
            "/console/dead-letters/retry-all", data={"csrf": csrf, "kind": "refund"}
        )
        assert asked.status_code == 200 and "Retry 3 dead letters?" in asked.text
        assert all(action_state(shared_database_url, k) == "dead" for k in keys)  # a dry run
        started = client.post("/console/dead-letters/retry-all",
                              data={"csrf": csrf, "kind": "refund", "confirm": "yes"})  # fmt: skip
        assert started.status_code == 303 and started.headers["location"].startswith(
            "/console/jobs/"
        )

        def finished() -> str | None:
            text = client.get(started.headers["location"]).text
            return text if "finished" in text else None

        progress = wait_for(finished, 20)
        assert progress is not None and "3 done, 0 not retried, of 3" in progress
    assert wait_for(lambda: all(action_state(shared_database_url, k) == "done" for k in keys), 20)
    with signed_in(console, AUDITOR) as auditor:
        csrf = csrf_of(auditor.get("/console").text)
        refused = auditor.post("/console/dead-letters/retry-all", data={"csrf": csrf, "kind": ""})
        assert refused.status_code == 403


def test_an_operator_replays_every_projection_from_the_console_and_it_is_recorded(
    console: ServerProcess, shared_database_url: str
) -> None:
    with signed_in(console, AUDITOR) as auditor:
        page_ = auditor.get("/console/replays")
        assert "projection.orders" in page_.text and "Replay every projection" not in page_.text
        csrf = csrf_of(page_.text)
        assert auditor.post("/console/replays", data={"csrf": csrf}).status_code == 403
    with signed_in(console, OPERATOR) as client:
        csrf = csrf_of(client.get("/console/replays").text)
        started = client.post("/console/replays", data={"csrf": csrf})
        assert started.status_code == 303, started.text

        def finished() -> str | None:
            text = client.get(started.headers["location"]).text
            return text if "finished" in text else None

        done = wait_for(finished, 30)
        assert done is not None and "events" in done and "orders in" in done
        assert "replay of every projection:" in client.get("/console/replays").text
    with psycopg.connect(shared_database_url) as conn:
        row = conn.execute("SELECT payload->>'by' FROM events WHERE type = 'operator.replayed'"
                           " ORDER BY position DESC LIMIT 1").fetchone()  # fmt: skip
    assert row is not None and row[0].startswith("operator token ")


def test_an_operator_erases_a_customers_personal_data_after_confirming_and_it_is_recorded(
    console: ServerProcess, shared_database_url: str
) -> None:
    for order in ("c-erase", "c-erase-again"):  # the same person's two orders
        body = order_body(order, customerEmail="erase.me@example.com")
        assert send_post_purchase(console.url, body).status_code == 200
    with signed_in(console, AUDITOR) as auditor:
        shown = auditor.get("/console/orders/c-erase").text
        assert "Personal data" not in shown and "/erase" not in shown
        csrf = csrf_of(shown)
        refused = auditor.post("/console/orders/c-erase/erase",
                               data={"csrf": csrf, "reason": "r", "confirm": "yes"})  # fmt: skip
        assert refused.status_code == 403
    with signed_in(console, OPERATOR) as client:
        shown = client.get("/console/orders/c-erase").text
        assert "1 personal value of this order" in shown
        csrf = csrf_of(shown)
        unsaid = client.post("/console/orders/c-erase/erase", data={"csrf": csrf, "confirm": "yes"})
        assert unsaid.status_code == 400 and "Say why" in unsaid.text
        asked = client.post("/console/orders/c-erase/erase",
                            data={"csrf": csrf, "reason": "customer asked"})  # fmt: skip
        assert asked.status_code == 200 and "Erase 2 values" in asked.text
        assert "the 1 in this order" in asked.text and "1 other order" in asked.text
        assert "erase.me@example.com" in client.get("/console/orders/c-erase").text  # not yet
        confirmed = {"csrf": csrf, "reason": "customer asked", "confirm": "yes"}
        done = client.post("/console/orders/c-erase/erase", data=confirmed)
        assert done.status_code == 303 and "erased" in done.headers["location"]
        after = client.get(done.headers["location"]).text
        assert "2 personal values erased" in after and "None held" in after
        assert "erase.me@example.com" not in after and "subject.erased" in after
        again = client.get("/console/orders/c-erase-again").text
        assert "None held" in again and "erase.me@example.com" not in again
    with psycopg.connect(shared_database_url) as conn:
        row = conn.execute("SELECT payload->>'by', payload->>'via', payload->>'reason'"
                           " FROM events WHERE type = 'subject.erased'"
                           " AND stream = 'order-c-erase'").fetchone()  # fmt: skip
    assert row is not None and row[0].startswith("operator token ")
    assert row[1] == "console from 127.0.0.1" and row[2] == "customer asked"


def test_a_token_taken_out_of_the_settings_ends_the_sessions_it_opened(database_url: str) -> None:
    first = ServerProcess(database_url, env={"HOOKLEDGER_OPERATOR_TOKENS": "kept-token old-token"})
    first.start()
    cookies = {}
    try:
        for token in ("kept-token", "old-token"):
            with signed_in(first, token) as client:
                cookies[token] = client.cookies["hookledger_console"]
    finally:
        first.stop()
    # The same database (so the same cookie key); the old token revoked.
    second = ServerProcess(database_url, env={"HOOKLEDGER_OPERATOR_TOKENS": "kept-token"}).start()
    try:
        kept = httpx.get(
            second.url + "/console", cookies={"hookledger_console": cookies["kept-token"]}
        )
        assert kept.status_code == 200
        gone = httpx.get(
            second.url + "/console", cookies={"hookledger_console": cookies["old-token"]}
        )
        assert gone.status_code == 303 and gone.headers["location"] == "/console/sign-in"
    finally:
        second.stop()


def test_a_cloud_task_that_gave_up_is_listed_but_never_offered_for_retry(
    console: ServerProcess, shared_database_url: str
) -> None:
    task = "projects/p/locations/l/queues/q/tasks/c-1-expiry-given-up"
    with psycopg.connect(shared_database_url) as conn:
        conn.execute("INSERT INTO task_dead_letters (task_name, order_id, retry_count, last_error)"
                     " VALUES (%s, 'c-1', 9, 'answered 503')", (task,))  # fmt: skip
    try:
        with signed_in(console, OPERATOR) as client:
            shown = client.get("/console/dead-letters?kind=countdown.task").text
            assert task in shown and "answered 503" in shown
            assert "the reconciler still fires its timer" in shown
            assert f'name="key" value="{task}"' not in shown and "Retry all" not in shown
            assert "Retry 0 dead letters?" in retry_all_count(client, shown, "countdown.task")
    finally:
        with psycopg.connect(shared_database_url) as conn:
            conn.execute("DELETE FROM task_dead_letters WHERE task_name = %s", (task,))


def test_thousands_of_dead_letters_list_the_oldest_and_retry_all_still_takes_each(
    console: ServerProcess, shared_database_url: str
) -> None:
    with psycopg.connect(shared_database_url) as conn:
        conn.execute(
            "INSERT INTO actions (key, kind, order_id, trigger_event_id, params, state, attempts,"
            " last_error, updated_at) SELECT 'email.flood:' || n, 'email.flood', 'c-1', 't', '{}',"
            " 'dead', 5, 'provider said 500', now() - n * interval '1 second'"
            " FROM generate_series(1, 1500) AS n"
        )
    try:
        with signed_in(console, OPERATOR) as client:
            shown = client.get("/console/dead-letters?kind=email.flood").text
            assert "1500 actions or timer tasks that gave up; the oldest 200 listed" in shown
            assert shown.count('name="key" value="email.flood:') == 200
            assert "email.flood:1500" in shown and "email.flood:1300" not in shown  # oldest first
            assert "Retry all 1500 matching" in shown
            assert "Retry 1500 dead letters?" in retry_all_count(client, shown, "email.flood")
    finally:
        with psycopg.connect(shared_database_url) as conn:
            conn.execute("DELETE FROM actions WHERE kind = 'email.flood'")


def test_the_auditor_reads_what_each_operator_did_and_from_where(
    console: ServerProcess, shared_database_url: str
) -> None:
    body = order_body("c-ops", customerEmail="ops.person@example.com")
    assert send_post_purchase(console.url, body).status_code == 200
    dead_letter(shared_database_url, "refund:ops-test")
    with signed_in(console, OPERATOR) as client:
        csrf = csrf_of(client.get("/console").text)
        retried = client.post("/console/dead-letters/retry",
                              data={"csrf": csrf, "key": "refund:ops-test"})  # fmt: skip
        assert retried.status_code == 303
        asked = {"csrf": csrf, "reason": "asked by phone", "confirm": "yes"}
        erased = client.post("/console/orders/c-ops/erase", data=asked)
        assert erased.status_code == 303
    with signed_in(console, AUDITOR) as auditor:
        shown = auditor.get("/console/operators").text
    rows = shown.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    erasure = next(r for r in rows if "subject.erased" in r and "c-ops" in r)
    retry = next(r for r in rows if "operator.retried" in r and "refund:ops-test" in r)
    assert rows.index(erasure) < rows.index(retry)  # newest first
    assert "operator token " in erasure and "console from 127.0.0.1" in erasure
    assert "reason: asked by phone" in erasure and "ops.person@example.com" not in shown
    assert "operator token " in retry and "127.0.0.1" in retry
    assert 'href="/console/orders/c-ops"' in erasure


def test_behind_a_trusted_proxy_the_ledger_records_the_operators_address_not_the_proxys(
    database_url: str,
) -> None:
    settings = {"HOOKLEDGER_OPERATOR_TOKENS": OPERATOR, "HOOKLEDGER_TRUSTED_PROXIES": "1"}
    server = ServerProcess(database_url, env=settings).start()
    try:
        dead_letter(database_url, "refund:behind-proxy")
        with signed_in(server, OPERATOR) as client:
            csrf = csrf_of(client.get("/console").text)
            retried = client.post("/console/dead-letters/retry",
                                  data={"csrf": csrf, "key": "refund:behind-proxy"},
                                  headers={"X-Forwarded-For": "198.51.100.7"})  # fmt: skip
            assert retried.status_code == 303
    finally:
        server.stop()
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT payload->>'from' FROM events"
                           " WHERE type = 'operator.retried'").fetchone()  # fmt: skip
    assert row is not None and row[0] == "198.51.100.7"
