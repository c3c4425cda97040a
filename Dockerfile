# syntax=docker/dockerfile:1
#
# The pdm image: one stripped binary, run as a non-root user, that serves any subset of
# the mesh (`pdm serve identity`, `pdm serve all`).
#
#   docker build -t pdm:dev .
#   docker run --rm -p 50051-50057:50051-50057 -p 9090:9090 pdm:dev            # the whole mesh
#   docker run --rm -p 50052:50052 pdm:dev serve consent                        # one service
#
# Stages: `chef` (the toolchain and cargo-chef) → `planner` (the dependency recipe, from
# the manifests only) → `builder` (dependencies first, in their own cached layer; then
# the workspace) → the runtime image (distroless: glibc and CA certificates, no shell).

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

# === toolchain ===
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# === dependency recipe: changes only when a Cargo.toml or Cargo.lock changes ===
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# === build ===
FROM chef AS builder
# Release-profile overrides, set before cooking so the cached dependency build and the
# final build share one fingerprint: no debug info, symbols stripped (the image carries
# only the binary). Protobuf code generation is pure Rust (protox): no protoc needed;
# gcc from the base image builds the bundled SQLite.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never
COPY --from=planner /src/recipe.json recipe.json
# This layer is rebuilt only when the recipe changes: source edits reuse it.
RUN cargo chef cook --release --bin pdm --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin pdm \
 && mkdir -p /out/data \
 && cp target/release/pdm /out/pdm \
 && /out/pdm --version

# === runtime ===
# distroless/cc: glibc, libgcc and CA certificates, nothing else; `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pdm" \
      org.opencontainers.image.description="the personal-data mesh: gRPC services that enforce a privacy policy" \
      org.opencontainers.image.licenses="Apache-2.0"
# The binary stays root-owned and read-only to the user that runs it.
COPY --from=builder /out/pdm /usr/local/bin/pdm
# SQLite files and generated development secrets (the default, single-node setup). With
# BuildKit, --chown also applies to the /data directory this COPY creates.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV PDM__SERVER__HOST=0.0.0.0 \
    PDM__DATA_DIR=/data \
    PDM__METRICS__LISTEN=0.0.0.0:9090
VOLUME ["/data"]
USER 65532:65532
# gRPC: identity, consent, telemetry, retention, transfers, rights; then Prometheus /metrics.
EXPOSE 50051 50052 50053 50054 50055 50056 50057 9090
ENTRYPOINT ["pdm"]
CMD ["serve", "all"]
