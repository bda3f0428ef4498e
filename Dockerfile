# syntax=docker/dockerfile:1
# Switchboard's image: `docker build -t switchboard .` (docs/OPERATIONS.md, "Containers").
# Containers always get DATABASE_URL: the zero-setup embedded Postgres is not in the image.

ARG RUST_VERSION=1.94

# --- Builder --------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /build
# Query macros compile from the committed .sqlx/ data: no database at build time.
ENV SQLX_OFFLINE=true \
    CARGO_INCREMENTAL=0

# Dependency layer: the manifests with an empty crate, built once and cached until
# Cargo.toml or Cargo.lock change; source edits rebuild only the crate itself.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin switchboard \
    && rm -rf src

COPY build.rs build.rs
COPY src src
COPY migrations migrations
# The report fonts are compiled into the binary (src/render/text.rs).
COPY assets assets
COPY .sqlx .sqlx
# The dummy build left newer artefacts for the crate: make cargo rebuild it.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin switchboard \
    && cp target/release/switchboard /usr/local/bin/switchboard

# --- Runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# CA roots for outgoing HTTPS (the vendors' APIs, webhooks; reqwest verifies against the
# system store). Unpinned on purpose: the security updates of the release are wanted.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin switchboard \
    && mkdir /data \
    && chown 10001:10001 /data

COPY --from=builder /usr/local/bin/switchboard /usr/local/bin/switchboard

# DATA_DIR holds what the binary writes itself: the first admin token when the database
# has none (bootstrap-admin-token) and, in sandbox mode, the WhatsApp sandbox secrets.
# Logs go to stdout (LOG_FILE unset), so the root filesystem can be read-only.
ENV DATA_DIR=/data \
    BIND=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json
WORKDIR /data
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080

# The image has no curl or wget: bash's /dev/tcp asks GET /healthz. Only the `api` and
# `all` roles listen; worker and scheduler containers turn the check off (compose.yaml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["switchboard"]
CMD ["serve", "--role", "all"]
