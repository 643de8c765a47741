"""What a production process needs set for the features its settings turn on,
read from the code's own settings, so that a deployment file checked against it
(tests/unit/test_deploy_files.py) cannot forget a setting a feature requires."""

from __future__ import annotations

from api.providers import BUILT_IN
from hookledger.settings import Settings, variable

API = "api"
WORKER = "worker"


def missing(settings: Settings, role: str) -> list[str]:
    """The variables ``role`` (``api``: intake and reads; ``worker``: the
    background work) needs for what ``settings`` turn on, and lacks."""
    # Both sign checkpoints (the worker on schedule, the API on demand for
    # evidence) and serve the key: without it no checkpoint is ever signed.
    fields = ["database_url", "checkpoint_key", "checkpoint_origin"]
    if role == API:
        # Every built-in provider is served: each refuses all without a secret.
        fields += [adapter.secrets_field for adapter in BUILT_IN.values()]
        fields.append("api_token")  # reads and the self-test are open without it
        fields.append("operator_tokens")  # erasure on request refuses everyone without it
    if settings.timer_backend == "cloudtasks":
        fields += ["tasks_queue", "tasks_target_url"]
        if role == API and not settings.tasks_secret:
            fields.append("tasks_service_account")  # who may call the task endpoint
    if role == WORKER:
        if settings.bigquery_project:
            # With a real database the export's keyed hash needs a stable key.
            fields += ["bigquery_dataset", "export_hash_key"]
        if not settings.safe_mode:
            fields += ["sendgrid_api_key", "authorizenet_login_id", "authorizenet_transaction_key",
                       "email_from", "verification_url"]  # fmt: skip
    return [variable(f) for f in fields if not getattr(settings, f)]
