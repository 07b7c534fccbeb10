# syntax=docker/dockerfile:1
#
# One image for every porch role: `porch up` (the default command, embedded mode) or any
# distributed role (`porch ingest-api`, `porch processor <name>`, `porch registry`, ...), chosen
# by the command. Build with BuildKit (the default builder of current Docker):
#
#   docker build -t porch .
#   docker run --rm -p 8080:8080 -v porch-data:/data porch        # prints a dev API key
#
# docker-compose.yml runs the distributed stack from this image.

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# --- build --------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build

# rdkafka-sys compiles the bundled librdkafka with its own configure script (mklove, bash) and
# make, C and C++ (`make libs` builds src and src-cpp); libz-sys and openssl-sys link the system
# zlib and OpenSSL found by pkg-config (OpenSSL for TLS listeners and SASL/SCRAM, rdkafka's ssl
# feature). No cmake or python3 is needed: librdkafka's configure skips its optional python3
# linker-script step by itself.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The registry and the target dir live in cache mounts, so a rebuild after a source change only
# recompiles what changed. The binary is copied out in the same step: the target dir is not part
# of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin porch \
 && install -D -m 0755 target/release/porch /out/porch

# --- runtime ------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim

# curl only for health checks (GET /readyz); zlib and OpenSSL are librdkafka's shared
# libraries, ca-certificates the roots a TLS listener's certificate is checked against.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl zlib1g libssl3 \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid, and the directories the roles write, owned by it (a named
# volume mounted on one of them starts with this ownership).
RUN groupadd --system --gid 10001 porch \
 && useradd --system --uid 10001 --gid porch --home-dir /var/lib/porch --no-create-home \
      --shell /usr/sbin/nologin porch \
 && mkdir -p /data /var/lib/porch/search /var/lib/porch/images /etc/porch \
 && chown -R porch:porch /data /var/lib/porch

COPY --from=build /out/porch /usr/local/bin/porch
COPY porch.example.toml /etc/porch/porch.example.toml

USER 10001:10001
WORKDIR /var/lib/porch
ENV PORCH_LOG=info

# The HTTP API of `porch up` and `porch ingest-api`; other roles are configured by --listen.
EXPOSE 8080
VOLUME ["/data"]

# For the default command; docker-compose.yml sets its own check per role.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:8080/readyz"]

ENTRYPOINT ["porch"]
CMD ["up", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
