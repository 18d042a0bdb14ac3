# syntax=docker/dockerfile:1
# Multi-stage: dependencies are installed from uv.lock in a builder; the runtime image has no build tools,
# runs as a non-root user, and keeps its data (SQLite file, signing keys, exports) in the /data volume.
#
#   docker build -t puente .
#   docker run -p 8000:8000 -v puente-data:/data -e PUENTE_BASE_URL=http://localhost:8000 puente
#
# Behind a TLS-terminating proxy set PUENTE_BASE_URL to the public https address (links, Location
# headers and token audiences use it; OAuth refuses a non-loopback http one) and
# PUENTE_FORWARDED_ALLOW_IPS to the proxy's address, so that X-Forwarded-For/-Proto are believed.
# compose.yaml runs it with PostgreSQL.

FROM python:3.11-slim AS builder
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
# every runtime package (tests/test_code_health.py checks this list against pyproject.toml's)
COPY api ./api
COPY auth ./auth
COPY bulk ./bulk
COPY cli ./cli
COPY clinical ./clinical
COPY exchange ./exchange
COPY fhir_mappings ./fhir_mappings
COPY migrations ./migrations
COPY programme ./programme
COPY rules ./rules
COPY seed ./seed
COPY settings ./settings
COPY storage ./storage
COPY wiring ./wiring
RUN uv sync --frozen --no-dev

FROM python:3.11-slim AS runtime
RUN groupadd --system puente && useradd --system --gid puente --home-dir /app --shell /usr/sbin/nologin puente
WORKDIR /app
COPY --from=builder --chown=puente:puente /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PUENTE_DATA_DIR=/data \
    PUENTE_DATABASE_URL=sqlite+aiosqlite:////data/puente.db \
    PUENTE_HOST=0.0.0.0 \
    PUENTE_PORT=8000 \
    PUENTE_LOG_FORMAT=json
RUN mkdir -p /data && chown puente:puente /data
VOLUME ["/data"]
USER puente
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["puente", "serve", "--workers", "2"]
