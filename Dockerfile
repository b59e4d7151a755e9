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
# gthread keeps Entra's connections alive; --reuse-port spreads them over the workers
CMD ["gunicorn", "app:create_app()", "--bind", "0.0.0.0:8000", "--workers", "4", "--worker-class", "gthread", "--threads", "2", "--keep-alive", "5", "--reuse-port", "--access-logfile", "-"]
