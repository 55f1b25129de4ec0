# Container image of imagebuilder-exporter: one static binary on distroless.
#
#   docker build -t imagebuilder-exporter .
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t imagebuilder-exporter:0.1.0 .
#
# Docker cannot run on this project's machines, so .ci/static-binary.sh runs
# the same `cargo build` as the builder stage below and tests that binary as
# uid 65532 against the simulator. KEEP THE TARGET AND THE CARGO COMMAND IN
# SYNC WITH .ci/static-binary.sh (.ci/lint-deploy.sh fails if they differ).

# ---------------------------------------------------------------- builder
FROM rust:1.95.0-bookworm AS builder

# Why musl rather than glibc with +crt-static: a static glibc still loads NSS
# modules with dlopen for getaddrinfo, and distroless/static has none of them,
# so DNS (the AWS endpoints) would fail at run time. musl resolves names from
# /etc/hosts and /etc/resolv.conf by itself. musl-gcc (musl-tools) compiles
# aws-lc-sys's C code (rustls' crypto provider) for the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl

WORKDIR /build

# Dependencies in their own layer: built against stub sources, so this layer
# is reused until a Cargo.toml or Cargo.lock change. Every target that the
# workspace's manifests name needs a file here, or cargo refuses them. The
# simulator (crates/imagebuilder-sim) is a workspace member, and the default
# `demo` feature links it in for --demo.
COPY Cargo.toml Cargo.lock ./
COPY crates/imagebuilder-sim/Cargo.toml crates/imagebuilder-sim/
RUN mkdir -p src benches crates/imagebuilder-sim/src crates/imagebuilder-sim/benches \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/scale.rs \
    && echo 'fn main() {}' > benches/hostile.rs \
    && echo 'fn main() {}' > benches/organization.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > crates/imagebuilder-sim/src/main.rs \
    && echo 'fn main() {}' > crates/imagebuilder-sim/benches/organization.rs \
    && touch crates/imagebuilder-sim/src/lib.rs \
    && cargo build --release --locked --target x86_64-unknown-linux-musl --config 'profile.release.strip="symbols"' --bin imagebuilder-exporter \
    && rm -rf src crates/imagebuilder-sim/src

# The real sources. COPY keeps their modification times, which may be older
# than the stub build: touch the crate roots so that cargo rebuilds the crate.
# build.rs puts the revision in --version: the context has no .git, so it
# comes from the build argument (`unknown` without it).
ARG REVISION=unknown
ENV IMAGEBUILDER_EXPORTER_REVISION=${REVISION}
COPY build.rs ./
COPY src ./src
COPY crates/imagebuilder-sim/src ./crates/imagebuilder-sim/src
RUN touch src/lib.rs src/main.rs crates/imagebuilder-sim/src/lib.rs crates/imagebuilder-sim/src/main.rs \
    && cargo build --release --locked --target x86_64-unknown-linux-musl --config 'profile.release.strip="symbols"' --bin imagebuilder-exporter

# ------------------------------------------------------------------ final
# distroless/static: CA certificates (rustls-native-certs reads
# /etc/ssl/certs), /etc/passwd with the nonroot user (uid 65532, home
# /home/nonroot), tzdata; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="imagebuilder-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS EC2 Image Builder workflow step executions" \
      org.opencontainers.image.source="https://github.com/example/imagebuilder-exporter" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

COPY --from=builder /build/target/x86_64-unknown-linux-musl/release/imagebuilder-exporter /imagebuilder-exporter

# Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# The default --web.listen-address is :9863, all interfaces.
EXPOSE 9863
ENTRYPOINT ["/imagebuilder-exporter"]
