#!/usr/bin/env bash
# Cloud Monitoring for a deployed hookledger (DEPLOY.md step 9): the alert
# policies (deploy/monitoring/cloud/policies, the Prometheus rules as PromQL
# conditions over Managed Service for Prometheus), an uptime check of
# /__selftest with its policy, the dashboard, and the daily `hookledger verify`
# job (deploy/verify-job.yaml) with its Cloud Scheduler trigger. Safe to run again: what exists
# is updated, not made twice. ALERT_EMAIL, when set, is told of every alert.
# Needs: gcloud (project owner or monitoring admin), envsubst, and the variables.
set -euo pipefail
: "${PROJECT_ID:?}" "${REGION:?}" "${SQL_INSTANCE:?}" "${IMAGE:?}"
HERE="$(cd "$(dirname "$0")" && pwd)"
gcloud config set project "$PROJECT_ID"
gcloud services enable monitoring.googleapis.com

API_URL="$(gcloud run services describe hookledger-api --region "$REGION" --format 'value(status.url)')"
export API_HOST="${API_URL#https://}"

channels=()
if [ -n "${ALERT_EMAIL:-}" ]; then
    channel="$(gcloud beta monitoring channels list \
        --filter "type=\"email\" AND labels.email_address=\"$ALERT_EMAIL\"" --format 'value(name)')"
    if [ -z "$channel" ]; then
        channel="$(gcloud beta monitoring channels create --type email \
            --display-name "hookledger on-call" --channel-labels "email_address=$ALERT_EMAIL" \
            --format 'value(name)')"
    fi
    channels=(--notification-channels "$channel")
fi

policy() {  # FILE: create the policy, or update the one of the same name
    local file=$1 name existing
    name="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["displayName"])' "$file")"
    existing="$(gcloud monitoring policies list --filter "displayName=\"$name\"" \
        --format 'value(name)')"
    if [ -n "$existing" ]; then
        gcloud monitoring policies update "$existing" --policy-from-file "$file" >/dev/null
    else
        gcloud monitoring policies create --policy-from-file "$file" "${channels[@]}" >/dev/null
    fi
    echo "  $name"
}

echo "== alert policies"
for file in "$HERE"/monitoring/cloud/policies/*.json; do
    policy "$file"
done

echo "== uptime check of $API_HOST/__selftest, and its policy"
if [ -z "$(gcloud monitoring uptime list-configs \
        --filter 'displayName="hookledger selftest"' --format 'value(name)')" ]; then
    gcloud monitoring uptime create "hookledger selftest" --resource-type uptime-url \
        --resource-labels "host=$API_HOST,project_id=$PROJECT_ID" \
        --protocol https --port 443 --path /__selftest --period 1 --timeout 10 \
        --status-codes 200 >/dev/null
fi
uptime="$(mktemp)"
trap 'rm -f "$uptime"' EXIT
envsubst '${API_HOST}' < "$HERE/monitoring/uptime-policy.json" > "$uptime"
policy "$uptime"

echo "== hookledger verify, every day at 03:00 UTC"
job="$(mktemp)"
trap 'rm -f "$uptime" "$job"' EXIT
envsubst < "$HERE/verify-job.yaml" > "$job"
gcloud run jobs replace "$job" --region "$REGION" >/dev/null
gcloud run jobs add-iam-policy-binding hookledger-verify --region "$REGION" \
    --member "serviceAccount:hookledger-worker@$PROJECT_ID.iam.gserviceaccount.com" \
    --role roles/run.invoker >/dev/null
run_uri="https://run.googleapis.com/v2/projects/$PROJECT_ID/locations/$REGION/jobs/hookledger-verify:run"
if gcloud scheduler jobs describe hookledger-verify --location "$REGION" >/dev/null 2>&1; then
    verb=update
else
    verb=create
fi
gcloud scheduler jobs "$verb" http hookledger-verify --location "$REGION" \
    --schedule "0 3 * * *" --time-zone UTC --uri "$run_uri" --http-method POST \
    --oauth-service-account-email "hookledger-worker@$PROJECT_ID.iam.gserviceaccount.com" \
    >/dev/null

echo "== dashboard"
if [ -z "$(gcloud monitoring dashboards list --filter 'displayName="hookledger"' \
        --format 'value(name)')" ]; then
    gcloud monitoring dashboards create --config-from-file "$HERE/monitoring/cloud/dashboard.json"
fi
echo "done: Monitoring > Alerting and Dashboards > hookledger"
