"""The deployment files, rendered as DEPLOY.md renders them, set every setting
the code requires for the features they turn on, and nothing the code does not
know; every variable they use is one DEPLOY.md's step 0 sets, and every secret
they reference is one setup.sh makes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from hookledger.deployment import API, WORKER, missing
from hookledger.exports import bigquery_config
from hookledger.settings import Settings, from_env, variable
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
SAMPLE = {
    "PROJECT_ID": "shop-prod", "REGION": "europe-west1", "SQL_INSTANCE": "hookledger",
    "DATASET": "hookledger", "REPO": "hookledger",
    "IMAGE": "europe-west1-docker.pkg.dev/shop-prod/hookledger/hookledger:abc1234",
    "SAFE_MODE": "true", "EMAIL_FROM": "verification@shop.example",
    "VERIFICATION_URL": "https://shop.example/verify?order={order_id}",
    "AUTHORIZENET_LOGIN_ID": "login-id",
    "API_URL": "https://hookledger-api-123456789.europe-west1.run.app",
}  # fmt: skip
FILES = {API: "service.yaml", WORKER: "worker.yaml"}


def render(name: str, values: dict[str, str]) -> str:
    """What ``envsubst < deploy/NAME`` writes (every ${VAR} replaced)."""
    text = (DEPLOY / name).read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def container_env(document: dict[str, Any]) -> dict[str, str]:
    """The container's variables: a value, or a stand-in for a secret reference."""
    spec = document["spec"]["template"]["spec"]
    container = (spec.get("template", {}).get("spec", spec))["containers"][0]
    env = {}
    for item in container["env"]:
        env[item["name"]] = item.get("value", "postgresql://from-a-secret@/db")
    return env


@pytest.mark.parametrize("safe_mode", ["true", "false"])
@pytest.mark.parametrize("role", [API, WORKER])
def test_each_service_sets_what_its_features_require(role: str, safe_mode: str) -> None:
    document = yaml.safe_load(render(FILES[role], {**SAMPLE, "SAFE_MODE": safe_mode}))
    env = container_env(document)
    settings = from_env(env)  # every value checked as the service would
    assert missing(settings, role) == []
    assert settings.timer_backend == "cloudtasks"
    if role == WORKER:
        # DEPLOY.md promises the BigQuery export: the worker must run it.
        assert bigquery_config(settings) is not None
        assert settings.export_hash_key.startswith("sm://")


@pytest.mark.parametrize("name", ["service.yaml", "worker.yaml", "migrate-job.yaml"])
def test_every_variable_a_file_sets_is_one_the_code_reads(name: str) -> None:
    known = {variable(f.name) for f in msgspec.structs.fields(Settings)}
    set_here = set(re.findall(r"name: (HOOKLEDGER_\w+)", (DEPLOY / name).read_text()))
    assert set_here and set_here <= known, sorted(set_here - known)


def test_every_placeholder_is_set_in_step_0_and_every_secret_made_by_setup() -> None:
    guide = (DEPLOY / "DEPLOY.md").read_text()
    step0 = guide.split("## 0.", 1)[1].split("\n## ", 1)[0]
    exported = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", step0))
    for name in ("service.yaml", "worker.yaml", "migrate-job.yaml", "verify-job.yaml"):
        used = set(re.findall(r"\$\{(\w+)\}", (DEPLOY / name).read_text()))
        assert used <= exported | {"API_URL"}, (name, sorted(used - exported))
    made = set(re.findall(r"^secret (hookledger-[\w-]+)", (DEPLOY / "setup.sh").read_text(),
                          re.MULTILINE))  # fmt: skip
    for name in ("service.yaml", "worker.yaml", "migrate-job.yaml", "verify-job.yaml"):
        text = (DEPLOY / name).read_text()
        referenced = set(re.findall(r"sm://\$\{PROJECT_ID\}/([\w-]+)", text))
        referenced |= set(re.findall(r"secretKeyRef:\s+name: ([\w-]+)", text))
        referenced |= set(re.findall(r"secretName: ([\w-]+)", text))
        assert referenced <= made, (name, sorted(referenced - made))


def test_the_api_url_is_known_before_the_first_deploy(tmp_path: Path) -> None:
    guide = (DEPLOY / "DEPLOY.md").read_text()
    assert "placeholder" not in guide
    assert guide.count("gcloud run services replace /tmp/hookledger-api.yaml") == 1


def test_teardown_removes_every_secret_and_account_setup_makes() -> None:
    setup = (DEPLOY / "setup.sh").read_text()
    teardown = (DEPLOY / "teardown.sh").read_text()
    secrets = set(re.findall(r"^secret hookledger-([\w-]+)", setup, re.MULTILINE))
    deleted = set(re.findall(r"[\w-]+", teardown.split("== secrets", 1)[1].split("done", 1)[0]))
    assert secrets and secrets <= deleted, sorted(secrets - deleted)
    accounts = set(re.findall(r"for account in ([\w -]+); do", setup)[0].split())
    assert all(account in teardown for account in accounts)


@pytest.mark.parametrize("role", [API, WORKER])
def test_each_service_has_a_metrics_sidecar_that_can_read_its_metrics(role: str) -> None:
    document = yaml.safe_load(render(FILES[role], SAMPLE))
    template = document["spec"]["template"]
    main, collector = template["spec"]["containers"]
    assert collector["name"] == "collector" and "cloud-run-gmp-sidecar" in collector["image"]
    depends = template["metadata"]["annotations"]["run.googleapis.com/container-dependencies"]
    assert msgspec.json.decode(depends) == {"collector": [main["name"]]}
    mounted = {m["name"]: m["mountPath"] for m in collector["volumeMounts"]}
    volumes = {v["name"]: v["secret"] for v in template["spec"]["volumes"]}
    assert volumes[next(iter(mounted))]["secretName"] == "hookledger-run-monitoring"
    assert mounted == {"run-monitoring": "/etc/rungmp"}
    # The sidecar scrapes with the token that the service asks for.
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["HOOKLEDGER_METRICS_TOKEN"].endswith("/hookledger-metrics-token")
    config = yaml.safe_load((DEPLOY / "monitoring" / "run-monitoring.yaml").read_text())
    (endpoint,) = config["spec"]["endpoints"]
    assert config["kind"] == "RunMonitoring" and endpoint["path"] == "/metrics"
    assert endpoint["port"] == str(main["ports"][0]["containerPort"])
    assert endpoint["params"] == {"token": ["${METRICS_TOKEN}"]}


def test_the_cloud_monitoring_files_are_what_their_generator_writes() -> None:
    done = subprocess.run([sys.executable, str(DEPLOY / "monitoring" / "cloud_monitoring.py"),
                           "--check"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_deploy_scripts_parse() -> None:
    for name in ("setup.sh", "teardown.sh", "monitoring.sh"):
        done = subprocess.run(["bash", "-n", str(DEPLOY / name)], capture_output=True, text=True,
                              check=False)  # fmt: skip
        assert done.returncode == 0, (name, done.stderr)


GCLOUD_STAND_IN = r"""#!/usr/bin/env bash
# Records each call; answers as a project that has (EXISTING set) or has not the things.
echo "$*" >> "$RECORD/calls.log"
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in
        --policy-from-file|--config-from-file)
            cp "${args[$((i+1))]}" "$RECORD/file-$RANDOM$RANDOM.json" ;;
    esac
done
case "$*" in
    "run services describe"*) echo "https://hookledger-api-123.europe-west1.run.app" ;;
    "run jobs replace"*) cp "$4" "$RECORD/verify-job.yaml" ;;
    "monitoring policies list"*|"monitoring uptime list-configs"*|"monitoring dashboards list"*)
        if [ -n "${EXISTING:-}" ]; then echo "projects/shop-prod/things/1"; fi ;;
    "scheduler jobs describe"*) [ -n "${EXISTING:-}" ] ;;
    "beta monitoring channels create"*) echo "projects/shop-prod/notificationChannels/9" ;;
esac
"""


def run_monitoring_sh(record: Path, existing: bool) -> list[str]:
    bin_dir = record / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "gcloud"
    stand_in.write_text(GCLOUD_STAND_IN)
    stand_in.chmod(0o755)
    env = {**os.environ, **SAMPLE, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "RECORD": str(record), "ALERT_EMAIL": "oncall@shop.example"}  # fmt: skip
    if existing:
        env["EXISTING"] = "1"
    (record / "calls.log").unlink(missing_ok=True)
    done = subprocess.run(["bash", str(DEPLOY / "monitoring.sh")], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return (record / "calls.log").read_text().splitlines()


def test_monitoring_sh_makes_everything_once_then_updates_it(tmp_path: Path) -> None:
    calls = run_monitoring_sh(tmp_path, existing=False)
    policies = len(list((DEPLOY / "monitoring" / "cloud" / "policies").glob("*.json")))
    created = [c for c in calls if c.startswith("monitoring policies create")]
    assert len(created) == policies + 1  # the uptime check's policy too
    assert all("--notification-channels projects/shop-prod/notificationChannels/9" in c
               for c in created)  # fmt: skip
    assert sum(c.startswith("monitoring uptime create") for c in calls) == 1
    assert sum(c.startswith("monitoring dashboards create") for c in calls) == 1
    assert any(c.startswith("scheduler jobs create http hookledger-verify") for c in calls)
    # The files handed over: valid JSON, the uptime policy's host filled in.
    sent = [json.loads(p.read_text()) for p in tmp_path.glob("file-*.json")]
    uptime = next(d for d in sent if d["displayName"].endswith("SelfTestFromOutside"))
    assert "hookledger-api-123.europe-west1.run.app" in json.dumps(uptime)
    assert "${" not in json.dumps(uptime)
    job = yaml.safe_load((tmp_path / "verify-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == SAMPLE["IMAGE"] and container["args"] == ["verify"]

    again = run_monitoring_sh(tmp_path, existing=True)
    assert not [c for c in again if c.startswith(("monitoring policies create",
                                                  "monitoring uptime create",
                                                  "monitoring dashboards create"))]  # fmt: skip
    assert sum(c.startswith("monitoring policies update") for c in again) == policies + 1
    assert any(c.startswith("scheduler jobs update http hookledger-verify") for c in again)
