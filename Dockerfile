# The production image: `hookledger serve` on Cloud Run (see deploy/DEPLOY.md).
# Build stage: the README's install (a venv, pip install of this project), made
# non-editable so the runtime stage needs only the venv, not the source, and
# without the `embedded` extra: the image uses Cloud SQL, never pgserver's Postgres.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN python -m venv /opt/hookledger \
    && /opt/hookledger/bin/pip install --no-cache-dir .

# Runtime stage: the venv alone, run by an unprivileged user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 hookledger \
    && useradd --system --uid 10001 --gid hookledger --no-create-home --home-dir /nonexistent hookledger
COPY --from=build /opt/hookledger /opt/hookledger
ENV PATH=/opt/hookledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8080 \
    HOOKLEDGER_DATA_DIR=/tmp/hookledger
USER 10001:10001
EXPOSE 8080
# Cloud Run sets PORT; exec so that uvicorn gets SIGTERM and drains.
CMD ["sh", "-c", "exec hookledger serve --host 0.0.0.0 --port \"$PORT\""]
