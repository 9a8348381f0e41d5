# Dagster (webserver, daemon, run and step pods) with cse's code location and the JAX training stack.
# Build from the repository root:
#   docker build -f deploy/dagster.Dockerfile -t cse-dagster .                              # CPU
#   docker build -f deploy/dagster.Dockerfile --build-arg CSE_EXTRAS=k8s,gpu -t cse-dagster:gpu .  # CUDA 12 JAX
FROM python:3.11-slim

# Extras of pyproject.toml: `k8s` (dagster-k8s: K8sRunLauncher, k8s_job_executor), `gpu` (jax[cuda12]).
ARG CSE_EXTRAS=k8s

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    CSE_HOME=/var/lib/cse

WORKDIR /opt/dagster/app
COPY pyproject.toml README.md ./
COPY cse_models/ cse_models/
COPY cse_assets/ cse_assets/
COPY cse_serving/ cse_serving/
RUN pip install --no-cache-dir "./[${CSE_EXTRAS}]" \
    && useradd --system --uid 10001 --home-dir /var/lib/cse --create-home cse \
    && mkdir -p "$DAGSTER_HOME" \
    && chown cse "$DAGSTER_HOME"

# The Postgres instance (runs queued and launched by the daemon, DAGSTER_PG_* from the environment);
# Kubernetes mounts deploy/k8s/dagster.yaml here instead.
COPY deploy/dagster-postgres.yaml /opt/dagster/dagster_home/dagster.yaml

USER 10001
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-m", "cse_assets.definitions"]
