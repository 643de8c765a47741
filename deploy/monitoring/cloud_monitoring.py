"""Cloud Monitoring's copies of the Prometheus alerts and the Grafana dashboard.

Writes deploy/monitoring/cloud/: one alert policy per rule of alerts.yml (a
PromQL condition over Managed Service for Prometheus, the same expression, the
same wait, the runbook in its documentation) and a dashboard with the Grafana
dashboard's panels. `deploy/monitoring.sh` creates them in a project. Run this
after changing alerts.yml or grafana-dashboard.json; a test fails while the
files differ from what it writes.

    python deploy/monitoring/cloud_monitoring.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
OUT = HERE / "cloud"
# Cloud Monitoring knows no "info": it is the lowest it has.
SEVERITIES = {"critical": "CRITICAL", "warning": "WARNING", "info": "WARNING"}
PREFIX = "hookledger: "
LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
# A policy's documentation cannot quote the value: the words around it go too.
VALUE = re.compile(r"\{\{\s*\$value\s*\}\}\s*(s\s+)?")


def seconds(duration: str | None) -> str:
    """A Prometheus duration (``5m``, ``1h``, ``30s``) as Cloud Monitoring's ``300s``."""
    if not duration:
        return "0s"
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return f"{int(duration[:-1]) * units[duration[-1]]}s"


def documented(text: str) -> str:
    """An alert's summary with Prometheus's templates as Cloud Monitoring's variables."""
    return LABEL.sub(lambda found: f"${{metric.label.{found.group(1)}}}", VALUE.sub("", text))


def policy(rule: dict[str, Any]) -> dict[str, Any]:
    """One Prometheus alerting rule as a Cloud Monitoring alert policy."""
    name = str(rule["alert"])
    severity = str(rule["labels"]["severity"])
    annotations = rule["annotations"]
    summary = documented(str(annotations["summary"]))
    return {
        "displayName": PREFIX + name,
        "documentation": {
            "content": f"{summary}\n\nRunbook: {annotations['runbook_url']} in the hookledger "
            "repository.",
            "mimeType": "text/markdown",
        },
        "userLabels": {"service": "hookledger", "severity": severity},
        "severity": SEVERITIES[severity],
        "combiner": "OR",
        "conditions": [
            {
                "displayName": name,
                "conditionPrometheusQueryLanguage": {
                    "query": " ".join(str(rule["expr"]).split()),
                    "duration": seconds(rule.get("for")),
                    "evaluationInterval": "60s",
                    "alertRule": name,
                    "labels": {"severity": severity},
                },
            }
        ],
        "alertStrategy": {"autoClose": "1800s"},
    }


def dashboard(grafana: dict[str, Any]) -> dict[str, Any]:
    """The Grafana dashboard's panels as Cloud Monitoring tiles (PromQL charts)."""
    tiles = []
    for panel in grafana["panels"]:
        place = panel["gridPos"]
        tiles.append({
            # Grafana's grid is 24 wide, Cloud Monitoring's mosaic 48.
            "xPos": place["x"] * 2, "yPos": place["y"] * 2,
            "width": place["w"] * 2, "height": place["h"] * 2,
            "widget": {
                "title": panel["title"],
                "xyChart": {
                    "dataSets": [
                        {"timeSeriesQuery": {"prometheusQuery": target["expr"]},
                         "plotType": "LINE"}
                        for target in panel["targets"]
                    ],
                },
            },
        })  # fmt: skip
    return {"displayName": "hookledger", "mosaicLayout": {"columns": 48, "tiles": tiles}}


def render() -> dict[str, str]:
    """Every file this writes, by its path under OUT, with its text."""
    rules = [r for g in yaml.safe_load((HERE / "alerts.yml").read_text())["groups"]
             for r in g["rules"]]  # fmt: skip
    grafana = json.loads((HERE / "grafana-dashboard.json").read_text())
    files = {f"policies/{r['alert']}.json": _json(policy(r)) for r in rules}
    files["dashboard.json"] = _json(dashboard(grafana))
    return files


def _json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    wanted = render()
    made = {str(p.relative_to(OUT)) for p in OUT.rglob("*.json") if p.parent.name == "policies"}
    stale = sorted(made - set(wanted))
    differ = sorted(path for path, text in wanted.items()
                    if not (OUT / path).exists() or (OUT / path).read_text() != text)  # fmt: skip
    if args.check:
        for path in [*differ, *stale]:
            print(f"out of date: deploy/monitoring/cloud/{path}")
        return 1 if differ or stale else 0
    for path in stale:
        (OUT / path).unlink()
    for path in differ:
        (OUT / path).parent.mkdir(parents=True, exist_ok=True)
        (OUT / path).write_text(wanted[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
