#!/usr/bin/env bash
# Builds the two base images deploy/docker/Dockerfile takes as build args, for a machine that
# cannot pull from a registry:
#   local/debian:bookworm-slim  debootstrap --variant=minbase bookworm, imported
#   local/rust:1.95-bookworm    that + gcc + this machine's Rust toolchain (rustc, cargo, std)
#                               + this machine's CA bundle (crates.io may sit behind a TLS proxy)
#   local/redis:bookworm        that + Debian's redis-server and redis-cli, for the compose
#                               profile redis-cluster (REDIS_IMAGE; redis:7.4 otherwise)
# Idempotent: an image that exists is kept. Prints the build args on stdout:
#   eval "$(bash deploy/ci/base-images.sh)"
set -euo pipefail

log() { echo "base-images.sh: $*" >&2; }
RUNTIME=local/debian:bookworm-slim
BUILDER=local/rust:1.95-bookworm
REDIS=local/redis:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! docker image inspect "$RUNTIME" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  log "debootstrap bookworm → $RUNTIME"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >&2
  # Slim like the official image: no apt lists, no docs.
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/usr/share/{doc,man,info}/*
  tar -C "$work/rootfs" -c . | docker import - "$RUNTIME" >&2
  rm -rf "$work/rootfs"
fi

if ! docker image inspect "$BUILDER" >/dev/null 2>&1; then
  log "$RUNTIME + gcc + $(rustc --version) → $BUILDER"
  sysroot=$(rustc --print sysroot)
  mkdir -p "$work/ctx/toolchain/bin"
  cp "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$work/ctx/toolchain/bin/"
  cp -a "$sysroot/lib" "$work/ctx/toolchain/lib"
  cp /etc/ssl/certs/ca-certificates.crt "$work/ctx/"
  cat >"$work/ctx/Dockerfile" <<DOCKERFILE
FROM $RUNTIME
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t "$BUILDER" "$work/ctx" >&2
fi

if ! docker image inspect "$REDIS" >/dev/null 2>&1; then
  log "$RUNTIME + redis-server → $REDIS"
  printf '%s\n' "FROM $RUNTIME" \
    "RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \\" \
    " && rm -rf /var/lib/apt/lists/*" >"$work/Dockerfile.redis"
  DOCKER_BUILDKIT=0 docker build -q -t "$REDIS" -f "$work/Dockerfile.redis" "$work" >&2
fi

echo "export BUILDER_IMAGE=$BUILDER RUNTIME_IMAGE=$RUNTIME REDIS_IMAGE=$REDIS"
