"""The API's own description holds its real answers: every status and body the
routes give (provoked here one by one against a real server) is declared in
/schema/openapi.json with a body of that shape; and the interactive reference
at /schema loads nothing from outside the service."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e_helpers import order_body, send_post_purchase, send_veriff
from tests.support import ServerProcess

TOKEN = "schema-reader-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def guarded(shared_database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(shared_database_url, env={"HOOKLEDGER_API_TOKEN": TOKEN}).start()
    yield process
    process.stop()


def _properties(schema: dict[str, Any], node: dict[str, Any]) -> tuple[set[str], set[str]]:
    if "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return set(node.get("properties", {})), set(node.get("required", []))


def declared(schema: dict[str, Any], path: str, method: str, answer: httpx.Response) -> None:
    """Fail unless ``answer``'s status is declared for the route, with its body's shape."""
    responses = schema["paths"][path][method]["responses"]
    status = str(answer.status_code)
    assert status in responses, f"{method.upper()} {path} answered {status}, undeclared"
    content = responses[status].get("content", {})
    if "application/json" not in content:
        return
    body = answer.json()
    allowed, required = _properties(schema, content["application/json"]["schema"])
    assert required <= set(body), (path, status, body)
    assert set(body) <= allowed, (path, status, sorted(set(body) - allowed))


def test_every_answer_a_route_gives_is_declared_with_its_body(guarded: ServerProcess) -> None:
    url = guarded.url
    schema = httpx.get(url + "/schema/openapi.json", timeout=10).json()
    hook = "/api/v1/{provider}/webhook"
    answers = [
        (hook, send_post_purchase(url, order_body("schema-1"))),  # 200 recorded
        (hook, send_post_purchase(url, order_body("schema-1"))),  # 200 idempotent
        (hook, send_veriff(url, b"{not json")),  # 400
        (hook, send_veriff(url, {"id": "x"}, secret="wrong")),  # 401
        (hook, httpx.post(url + "/api/v1/nobody/webhook", content=b"{}", timeout=10)),  # 404
        (hook, httpx.post(url + "/api/v1/veriff/webhook", content=b"x" * (2 << 20),
                          headers={"content-type": "application/json"}, timeout=10)),  # 413
        (hook, httpx.post(url + "/api/v1/veriff/webhook", content=b"{}",
                          headers={"content-type": "text/plain"}, timeout=10)),  # 415
    ]  # fmt: skip
    for read in ("/api/v1/orders/{order_id}/events", "/api/v1/orders/{order_id}"):
        concrete = read.replace("{order_id}", "schema-1")
        answers += [
            (read, httpx.get(url + concrete, headers=AUTH, timeout=10)),  # 200
            (read, httpx.get(url + concrete, timeout=10)),  # 401
            (read, httpx.get(url + read.replace("{order_id}", "nope"), headers=AUTH, timeout=10)),
        ]
    answers += [
        ("/healthz", httpx.get(url + "/healthz", timeout=10)),
        ("/health", httpx.get(url + "/health", timeout=10)),
        ("/metrics", httpx.get(url + "/metrics", timeout=10)),
        ("/__selftest", httpx.get(url + "/__selftest", headers=AUTH, timeout=10)),
        ("/__selftest", httpx.get(url + "/__selftest", timeout=10)),
    ]
    seen = set()
    for path, response in answers:
        declared(schema, path, "post" if path == hook else "get", response)
        seen.add((path, response.status_code))
    assert {s for p, s in seen if p == hook} == {200, 400, 401, 404, 413, 415}
    # An error's body is the one documented shape, not Litestar's own.
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "detail"}
    assert "extra" not in json.dumps(schema["paths"][hook]["post"]["responses"]["400"])


def test_the_interactive_reference_loads_only_the_services_own_files(
    guarded: ServerProcess,
) -> None:
    page = httpx.get(guarded.url + "/schema", timeout=10)
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources, page.text
    for source in sources:
        assert source.startswith("/"), f"{source} is loaded from outside the service"
        assert httpx.get(guarded.url + source, timeout=10).status_code == 200, source
    # The schema is in the page itself: nothing else to fetch.
    assert '"openapi"' in page.text
