"""Every operation of the published OpenAPI schema, fuzzed by schemathesis: whatever
the input, the answer is never a server error, and no delivery without a valid
signature appends an event (every provider's route is fuzzed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.e2e_helpers import count_events
from tests.support import PROVIDERS, ServerProcess, admin_execute, signed, with_database

EXAMPLES = 30
WEBHOOK = "POST /api/v1/{provider}/webhook"
EXPECTED_OPERATIONS = {
    WEBHOOK,
    "GET /api/v1/orders/{order_id}/events",
    "GET /api/v1/orders/{order_id}",
    "GET /health",
    "GET /healthz",
    "GET /metrics",
    "GET /__selftest",
    "GET /api/v1/orders/{order_id}/evidence",
    "GET /api/v1/checkpoints/latest",
    "GET /api/v1/checkpoints/key",
    "GET /api/v1/checkpoints/{size}",
    "GET /api/v1/proofs/consistency",
    "GET /api/v1/events/{position}/proof",
    "POST /api/v1/erasures",
}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzzed_server(server_url: str, template_name: str) -> Iterator[ServerProcess]:
    name = f"hl_fuzz_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f"CREATE DATABASE {name} TEMPLATE {template_name} STRATEGY FILE_COPY")
    process = ServerProcess(with_database(server_url, name)).start()
    yield process
    process.stop()
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def operations(fuzzed_server: ServerProcess) -> dict[str, Any]:
    """The operations of the schema the running server publishes."""
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/schema/openapi.json")
    found: dict[str, Any] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        found[operation.label] = operation
    return found


def fuzz(operation: Any, mode: GenerationMode, **fixed: Any) -> bool:
    """Send up to EXAMPLES generated requests; False if the mode has nothing to generate."""

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @FUZZ_SETTINGS
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error], timeout=10)

    try:
        run()
    except Unsatisfiable:
        # No way to break this operation's (empty or unconstrained) inputs.
        if mode is GenerationMode.POSITIVE:
            raise
        return False
    return True


def test_the_schema_publishes_every_operation(operations: dict[str, Any]) -> None:
    assert set(operations) == EXPECTED_OPERATIONS


def test_no_generated_request_to_any_operation_gets_a_server_error(
    operations: dict[str, Any],
) -> None:
    negated = 0
    for operation in operations.values():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            negated += fuzz(operation, mode) and mode is GenerationMode.NEGATIVE
    assert negated >= 1  # the webhook body at least can be made wrong


def _ledger_size(server: ServerProcess) -> int:
    return count_events(server.env["HOOKLEDGER_DATABASE_URL"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_generated_delivery_to_a_known_provider_gets_a_server_error_or_an_event(
    operations: dict[str, Any], fuzzed_server: ServerProcess, provider: str
) -> None:
    before = _ledger_size(fuzzed_server)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        assert fuzz(operations[WEBHOOK], mode, path_parameters={"provider": provider})
    assert _ledger_size(fuzzed_server) == before, "an unsigned delivery was recorded"


def _body_bytes(transport: dict[str, Any]) -> bytes | None:
    if "json" in transport:
        return json.dumps(transport["json"]).encode()
    data = transport.get("data")
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    return None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_generated_body_correctly_signed_gets_a_server_error(
    operations: dict[str, Any], fuzzed_server: ServerProcess, provider: str
) -> None:
    """Past the signature check: generated bodies reach the parser and the adapters."""
    statuses: set[int] = set()

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategy = operations[WEBHOOK].as_strategy(
            generation_mode=mode, path_parameters={"provider": provider}
        )

        @given(case=strategy)
        @FUZZ_SETTINGS
        def run(case: Any) -> None:
            transport = case.as_transport_kwargs(base_url=fuzzed_server.url)
            raw = _body_bytes(transport)
            if raw is None:
                return  # a generated body that is not bytes at all: nothing to sign
            headers = {str(k).lower(): str(v) for k, v in transport["headers"].items()}
            signature = signed(provider, raw)
            signature["content-type"] = headers.get("content-type", "application/json")
            response = httpx.request(
                transport["method"],
                transport["url"],
                params=transport.get("params"),
                headers={**headers, **signature},
                content=raw,
                timeout=10,
            )
            statuses.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        run()
    # The signature was accepted: what came back is about the body, not the signature.
    assert 401 not in statuses
    assert 400 in statuses
