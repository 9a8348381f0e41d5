# The prediction API: Litestar + onnxruntime + numpy + polars, no jax/flax/dagster.
# Build from the repository root:  docker build -f deploy/serving.Dockerfile -t cse-serving .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/opt/cse \
    CSE_HOME=/var/lib/cse \
    CSE_SERVING_HOST=0.0.0.0 \
    CSE_SERVING_PORT=8000

COPY deploy/requirements-serving.txt /tmp/requirements-serving.txt
RUN pip install --no-cache-dir -r /tmp/requirements-serving.txt \
    && useradd --system --uid 10001 --home-dir /var/lib/cse --create-home cse

# Only the two packages the service runs; cse_assets (Dagster wiring) stays out.
WORKDIR /opt/cse
COPY cse_models/ cse_models/
COPY cse_serving/ cse_serving/

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "cse_serving"]
CMD ["serve"]
