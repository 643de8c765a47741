#!/usr/bin/env bash
# Remove everything DEPLOY.md made, in the reverse order of set-up. The ledger
# goes with the Cloud SQL instance: export it first if it must be kept.
# Needs: gcloud, bq, and the variables of DEPLOY.md step 0.
set -euo pipefail
: "${PROJECT_ID:?}" "${REGION:?}" "${SQL_INSTANCE:?}"
DATASET="${DATASET:-hookledger}"
REPO="${REPO:-hookledger}"
QUEUE=hookledger-countdowns

if [ "${1:-}" != "--yes" ]; then
    read -r -p "Delete hookledger from project $PROJECT_ID, its database included? [y/N] " answer
    [ "$answer" = "y" ] || { echo "nothing deleted"; exit 1; }
fi
gcloud config set project "$PROJECT_ID"
gone() { "$@" --quiet >/dev/null 2>&1 || true; }  # already gone is fine

echo "== the checkpoint key's version (KMS keeps the key and ring themselves)"
gone gcloud kms keys versions destroy 1 --key checkpoints --keyring hookledger \
    --location "$REGION"

echo "== monitoring: alert policies, uptime check, dashboard, the daily verify"
for policy in $(gcloud monitoring policies list --filter 'displayName:"hookledger: "' \
        --format 'value(name)' 2>/dev/null); do
    gone gcloud monitoring policies delete "$policy"
done
for check in $(gcloud monitoring uptime list-configs \
        --filter 'displayName="hookledger selftest"' --format 'value(name)' 2>/dev/null); do
    gone gcloud monitoring uptime delete "$check"
done
for board in $(gcloud monitoring dashboards list --filter 'displayName="hookledger"' \
        --format 'value(name)' 2>/dev/null); do
    gone gcloud monitoring dashboards delete "$board"
done
gone gcloud scheduler jobs delete hookledger-verify --location "$REGION"
gone gcloud run jobs delete hookledger-verify --region "$REGION"

echo "== Cloud Run services and the migration job"
gone gcloud run services delete hookledger-worker --region "$REGION"
gone gcloud run services delete hookledger-api --region "$REGION"
gone gcloud run jobs delete hookledger-migrate --region "$REGION"

echo "== image repository"
gone gcloud artifacts repositories delete "$REPO" --location "$REGION"

echo "== Cloud SQL (the ledger, its backups)"
gone gcloud sql instances delete "$SQL_INSTANCE"

echo "== BigQuery dataset"
bq rm -r -f --dataset "$PROJECT_ID:$DATASET" >/dev/null 2>&1 || true

echo "== Cloud Tasks queue"
gone gcloud tasks queues delete "$QUEUE" --location "$REGION"

echo "== secrets"
for name in database-url database-owner-url veriff-secret post-purchase-secret \
            shopify-secret stripe-secret authorizenet-secret sendgrid-public-key \
            api-token sendgrid-api-key authorizenet-transaction-key export-hash-key \
            metrics-token run-monitoring operator-tokens auditor-tokens; do
    gone gcloud secrets delete "hookledger-$name"
done

echo "== project roles, then the service accounts"
sa() { echo "serviceAccount:$1@$PROJECT_ID.iam.gserviceaccount.com"; }
for binding in "hookledger-api roles/cloudsql.client" "hookledger-worker roles/cloudsql.client" \
               "hookledger-migrate roles/cloudsql.client" "hookledger-worker roles/bigquery.jobUser" \
               "hookledger-api roles/monitoring.metricWriter" \
               "hookledger-worker roles/monitoring.metricWriter"; do
    read -r account role <<<"$binding"
    gone gcloud projects remove-iam-policy-binding "$PROJECT_ID" --condition=None \
        --member "$(sa "$account")" --role "$role"
done
for account in hookledger-api hookledger-worker hookledger-tasks hookledger-migrate; do
    gone gcloud iam service-accounts delete "$account@$PROJECT_ID.iam.gserviceaccount.com"
done

echo "done: hookledger is gone from $PROJECT_ID (the APIs stay enabled)"
