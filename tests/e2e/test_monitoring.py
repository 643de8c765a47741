"""Alerts as code: the Prometheus rules pass their promtool unit tests, every
metric they and the Grafana dashboard name exists in /metrics of a running
service, and every alert has a runbook that names it."""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest
import yaml

from hookledger.checkpoint_key import new_private_pem
from tests.e2e_helpers import (
    order_body,
    run_cli,
    send_post_purchase,
    signed_whole_ledger,
    wait_for,
)
from tests.promtool import promtool
from tests.support import ROOT, ServerProcess

MONITORING = ROOT / "deploy" / "monitoring"
RUNBOOKS = ROOT / "docs" / "runbooks"
# A histogram's and a counter's series carry suffixes /metrics shows too.
METRIC = re.compile(r"\bhookledger_[a-z_]+\b")


def alerts() -> list[dict[str, object]]:
    document = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    """The queries of the Grafana dashboard, of Cloud Monitoring's dashboard and
    of its alert policies."""
    grafana = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in grafana["panels"] for target in panel["targets"]]
    cloud = json.loads((MONITORING / "cloud" / "dashboard.json").read_text())
    queries += [data["timeSeriesQuery"]["prometheusQuery"]
                for tile in cloud["mosaicLayout"]["tiles"]
                for data in tile["widget"]["xyChart"]["dataSets"]]  # fmt: skip
    for path in (MONITORING / "cloud" / "policies").glob("*.json"):
        for condition in json.loads(path.read_text())["conditions"]:
            queries.append(condition["conditionPrometheusQueryLanguage"]["query"])
    return queries


def test_the_alert_rules_pass_their_promtool_tests() -> None:
    binary, why = promtool()
    if binary is None:
        pytest.skip(why)
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([str(binary), *command], cwd=MONITORING, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_that_names_it() -> None:
    for rule in alerts():
        name = str(rule["alert"])
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}")
        for part in ("**What it means.**", "**Confirm.**", "**Fix.**", "**Over when**"):
            assert part in text, (name, part)


def test_every_metric_an_alert_names_exists_in_a_running_service(database_url: str) -> None:
    key = new_private_pem()
    env = {"HOOKLEDGER_BACKGROUND": "true", "HOOKLEDGER_CHECKPOINT_KEY": key,
           "HOOKLEDGER_CHECKPOINT_INTERVAL": "1s"}  # fmt: skip
    server = ServerProcess(database_url, env=env).start()
    try:
        assert send_post_purchase(server.url, order_body("mon-1")).status_code == 200
        assert wait_for(lambda: signed_whole_ledger(database_url), 20)
        # The verify gauges show once a verify of the whole ledger has run.
        verified = run_cli(database_url, "verify", env={"HOOKLEDGER_CHECKPOINT_KEY": key})
        assert verified.returncode == 0, verified.stdout + verified.stderr
        text = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    queries = [str(rule["expr"]) for rule in alerts()] + dashboard_queries()
    named = {m for query in queries for m in METRIC.findall(query)}
    exposed = set(METRIC.findall(text))
    assert named and named <= exposed, sorted(named - exposed)
