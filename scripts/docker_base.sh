#!/usr/bin/env bash
# Base images for machines that reach no image registry: a local `debian:bookworm-slim` made
# with debootstrap from the Debian mirror apt already uses, and `postgres:15-bookworm` built on
# it from docker/postgres/ (a stand-in for the official image). Each is made only when missing,
# under the names a registry would give, so Dockerfile and compose.yaml stay what they are
# elsewhere. Needs root, debootstrap and a running Docker daemon (scripts/setup.sh --docker).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  mirror=$(grep -rhoE '^URIs: *\S+debian/?$' /etc/apt/sources.list.d/ 2>/dev/null | head -1 | awk '{print $2}')
  mirror=${mirror:-$(grep -hoE '^deb \S+debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')}
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null
  echo "docker_base: debian:bookworm-slim imported (debootstrap, ${mirror:-deb.debian.org})"
fi
if ! docker image inspect postgres:15-bookworm >/dev/null 2>&1; then
  docker build --quiet --network host -t postgres:15-bookworm docker/postgres >/dev/null
  echo "docker_base: postgres:15-bookworm built from docker/postgres/"
fi
