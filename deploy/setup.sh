#!/usr/bin/env bash
# One-time set-up of a Google Cloud project for hookledger, step by step as in
# DEPLOY.md. Safe to run again: every step that exists already is skipped.
# Needs: gcloud (authenticated as a project owner), bq, and these variables.
set -euo pipefail
: "${PROJECT_ID:?}" "${REGION:?}" "${SQL_INSTANCE:?}"
DATASET="${DATASET:-hookledger}"
QUEUE=hookledger-countdowns
gcloud config set project "$PROJECT_ID"

exists() { "$@" >/dev/null 2>&1; }

echo "== APIs"
gcloud services enable run.googleapis.com sqladmin.googleapis.com \
    cloudtasks.googleapis.com secretmanager.googleapis.com \
    bigquery.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com \
    monitoring.googleapis.com cloudscheduler.googleapis.com

echo "== service accounts (one per job, each with only what it needs)"
for account in hookledger-api hookledger-worker hookledger-tasks hookledger-migrate; do
    exists gcloud iam service-accounts describe "$account@$PROJECT_ID.iam.gserviceaccount.com" \
        || gcloud iam service-accounts create "$account" --display-name "$account"
done
sa() { echo "serviceAccount:$1@$PROJECT_ID.iam.gserviceaccount.com"; }

echo "== Cloud SQL: every service connects through the built-in connector"
for account in hookledger-api hookledger-worker hookledger-migrate; do
    gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
        --member "$(sa "$account")" --role roles/cloudsql.client >/dev/null
done

echo "== Secret Manager: each secret readable only by the accounts that use it"
secret() {  # NAME ACCOUNT...
    local name=$1; shift
    exists gcloud secrets describe "$name" \
        || gcloud secrets create "$name" --replication-policy automatic
    for account in "$@"; do
        gcloud secrets add-iam-policy-binding "$name" --member "$(sa "$account")" \
            --role roles/secretmanager.secretAccessor >/dev/null
    done
}
secret hookledger-database-url hookledger-api hookledger-worker
secret hookledger-database-owner-url hookledger-migrate
secret hookledger-veriff-secret hookledger-api
secret hookledger-post-purchase-secret hookledger-api
secret hookledger-shopify-secret hookledger-api
secret hookledger-stripe-secret hookledger-api
secret hookledger-authorizenet-secret hookledger-api
secret hookledger-sendgrid-public-key hookledger-api
secret hookledger-api-token hookledger-api
secret hookledger-operator-tokens hookledger-api
secret hookledger-auditor-tokens hookledger-api
secret hookledger-sendgrid-api-key hookledger-worker
secret hookledger-authorizenet-transaction-key hookledger-worker
secret hookledger-export-hash-key hookledger-worker
secret hookledger-metrics-token hookledger-api hookledger-worker
secret hookledger-run-monitoring hookledger-api hookledger-worker

echo "== metrics: each service's Prometheus sidecar writes to Cloud Monitoring"
for account in hookledger-api hookledger-worker; do
    gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
        --member "$(sa "$account")" --role roles/monitoring.metricWriter >/dev/null
done

echo "== Cloud Tasks queue, its retries, and who may use it"
# Retries: 1 s doubling to 5 min, 30 attempts at most. hookledger answers 2xx
# and dead-letters a task at HOOKLEDGER_TASKS_MAX_RETRIES (20), before Cloud
# Tasks would drop it silently; the reconciler fires whatever is left.
if exists gcloud tasks queues describe "$QUEUE" --location "$REGION"; then
    verb=update
else
    verb=create
fi
gcloud tasks queues "$verb" "$QUEUE" --location "$REGION" \
    --max-attempts 30 --min-backoff 1s --max-backoff 300s --max-doublings 8 \
    --max-retry-duration 0s --max-dispatches-per-second 100 --max-concurrent-dispatches 50
# The worker makes and deletes tasks, and signs them as hookledger-tasks; the
# API only looks at the queue (the self-test).
for role in roles/cloudtasks.enqueuer roles/cloudtasks.taskDeleter roles/cloudtasks.viewer; do
    gcloud tasks queues add-iam-policy-binding "$QUEUE" --location "$REGION" \
        --member "$(sa hookledger-worker)" --role "$role" >/dev/null
done
gcloud tasks queues add-iam-policy-binding "$QUEUE" --location "$REGION" \
    --member "$(sa hookledger-api)" --role roles/cloudtasks.viewer >/dev/null
gcloud iam service-accounts add-iam-policy-binding \
    "hookledger-tasks@$PROJECT_ID.iam.gserviceaccount.com" \
    --member "$(sa hookledger-worker)" --role roles/iam.serviceAccountUser >/dev/null

echo "== BigQuery dataset for the exporter (the worker writes, analysts read)"
exists bq show --dataset "$PROJECT_ID:$DATASET" \
    || bq --location "$REGION" mk --dataset \
        --description "hookledger events, one row per event" "$PROJECT_ID:$DATASET"
bq query --nouse_legacy_sql --quiet \
    "GRANT \`roles/bigquery.dataEditor\` ON SCHEMA \`$PROJECT_ID.$DATASET\`
     TO 'serviceAccount:hookledger-worker@$PROJECT_ID.iam.gserviceaccount.com'"
gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
    --member "$(sa hookledger-worker)" --role roles/bigquery.jobUser >/dev/null

echo "== Cloud KMS key that signs checkpoints (Ed25519; it never leaves KMS)"
gcloud services enable cloudkms.googleapis.com
exists gcloud kms keyrings describe hookledger --location "$REGION" \
    || gcloud kms keyrings create hookledger --location "$REGION"
exists gcloud kms keys describe checkpoints --keyring hookledger --location "$REGION" \
    || gcloud kms keys create checkpoints --keyring hookledger --location "$REGION" \
        --purpose asymmetric-signing --default-algorithm ec-sign-ed25519
for account in hookledger-api hookledger-worker; do
    for role in roles/cloudkms.signer roles/cloudkms.publicKeyViewer; do
        gcloud kms keys add-iam-policy-binding checkpoints --keyring hookledger \
            --location "$REGION" --member "$(sa "$account")" --role "$role" >/dev/null
    done
done

echo "done: now put the secrets' values in (DEPLOY.md step 4)"
