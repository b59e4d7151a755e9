# The bridge's web process by default; run the worker from the same image with
#   docker run ... entra-scim-bridge python -m workers.run
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY app.py ./
COPY bridge ./bridge
COPY schemas ./schemas
COPY workers ./workers

RUN useradd --system --uid 10001 --home /app bridge
USER bridge

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
# granian parses requests outside Python (slow clients hold no thread), keeps Entra's
# connections alive and restarts a worker that dies
CMD ["granian", "--interface", "wsgi", "--factory", "app:create_app", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--blocking-threads", "4", "--http", "1", "--http1-header-read-timeout", "10000", "--respawn-failed-workers", "--workers-kill-timeout", "20", "--access-log"]
