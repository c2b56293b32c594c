#!/usr/bin/env bash
# Fresh clone -> ready project, idempotent (a second run takes seconds):
#   1. a pinned uv in .tools/ (its own venv: nothing touches the system Python),
#   2. the locked environment in .venv/ (exactly uv.lock, the project installed editable),
#   3. the DVC-tracked raw data (from the remote in .dvc/config: ../shared/dvc-store here).
# `--docker` also makes a Docker daemon and Compose ready (tests/docker, docs/deploy.md):
# Debian's docker.io and docker-compose when there is no daemon, and the base images
# (scripts/docker_base.sh) when no registry can give them.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if [ "$(.tools/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$PYTHON" -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# Real servers the tests start, from Debian's packages, installed once (needs root or sudo):
# PostgreSQL (pytest -k postgres), Chromium, which Playwright drives headless
# (tests/integration/test_page.py; never `playwright install`, which would download a browser of
# its own), SLURM with munge for a one-node cluster (tests/cluster), and Prometheus for promtool,
# which checks docs/alerts.yml (only the tool: a daemon an init system started is stopped).
PACKAGES=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || PACKAGES+=(postgresql)
[ -x /usr/bin/chromium ] || PACKAGES+=(chromium)
command -v slurmctld >/dev/null || PACKAGES+=(slurm-wlm)
command -v munged >/dev/null || PACKAGES+=(munge)
command -v promtool >/dev/null || PACKAGES+=(prometheus)
if [ ${#PACKAGES[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  if [[ " ${PACKAGES[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
# --frozen: install exactly the lock, fail rather than re-resolve; never download an interpreter.
# --compile-bytecode: this environment (like many CI images) sets PYTHONDONTWRITEBYTECODE=1, so
# without it every process compiles mlflow, sklearn, pandas... from source (seconds per import).
# The `slurm` and `ray` extras too: tests/cluster runs sweeps through hydra/launcher=slurm and
# hydra/launcher=ray_cluster.
UV_PYTHON_DOWNLOADS=never .tools/bin/uv sync --frozen --compile-bytecode --extra slurm --extra ray \
  --python "$PYTHON" --quiet
# Only the raw data: the pipeline's outputs (dvc.lock) are made by `dvc repro`, not pulled.
.venv/bin/dvc pull --quiet data/raw/ObesityDataSet_raw_and_data_sinthetic.csv.dvc
echo "setup: .venv ready ($(.venv/bin/python --version)), data: $(md5sum data/raw/*.csv | cut -d' ' -f1)"

if [ "${1:-}" = --docker ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  PACKAGES=()
  command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || PACKAGES+=(docker.io)
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || PACKAGES+=(docker-compose)
  command -v debootstrap >/dev/null || PACKAGES+=(debootstrap)
  if [ ${#PACKAGES[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then  # installed but not running (no init system here)
    $SUDO sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start (/var/log/dockerd.log)" >&2; exit 1; }
  fi
  $SUDO bash scripts/docker_base.sh
  echo "setup: docker ready ($(docker version --format '{{.Server.Version}}'))"
fi
