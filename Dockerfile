# One image for every role of the stack (compose.yaml): `docker run IMAGE train -m sweep=hgb`,
# `IMAGE serve`, `IMAGE monitor`, `IMAGE registry versions`; `mlflow server` is in it too.
# Its base comes from a registry; docs/deploy.md says how to make it locally where none is
# reachable. Built with `docker build --network host -t obesity .` (or `docker compose build`).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS uv
ARG UV_VERSION=0.13.9
ENV DEBIAN_FRONTEND=noninteractive
# An extra CA for a TLS-intercepting proxy: its *.crt in docker/ca/ (git-ignored) is trusted here.
COPY docker/ca/ /usr/local/share/ca-certificates/extra/
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates >/dev/null \
    && update-ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
WORKDIR /app
# exactly uv.lock, no dev group, bytecode compiled, Debian's python3.11 (never a downloaded one)
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_FROZEN=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# What the image installs, from the lock: the dev group and the extras left out. The install
# below is keyed on this file's content, so neither a code change nor a dev tool added to
# uv.lock reinstalls the dependencies.
FROM uv AS requirements
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv export --no-dev --no-emit-project --quiet -o requirements.txt

FROM uv AS builder
COPY --from=requirements /app/requirements.txt ./
RUN /opt/uv/bin/uv venv --quiet --python /usr/bin/python3 /app/.venv \
    && /opt/uv/bin/uv pip install --quiet --python /app/.venv/bin/python -r requirements.txt
COPY pyproject.toml uv.lock README.md ./
COPY configs/ configs/
COPY hydra_plugins/ hydra_plugins/
COPY obesity/ obesity/
# the project itself (the dependencies are in place: uv checks them against the lock)
RUN /opt/uv/bin/uv sync --no-dev --no-editable --python /usr/bin/python3 --quiet

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends python3 libgomp1 >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 obesity \
    && mkdir -p /app/data /app/outputs /artifacts && chown obesity /app/outputs /artifacts
COPY --from=builder /app/.venv /app/.venv
# paths.root is /app: data/ (mounted) and outputs/ (a volume) below it
ENV PATH=/app/.venv/bin:$PATH OBESITY_ROOT=/app PYTHONUNBUFFERED=1 \
    MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
WORKDIR /app
USER obesity
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["python", "-m", "obesity"]
CMD ["serve", "host=0.0.0.0"]
