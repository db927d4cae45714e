# syntax=docker/dockerfile:1
# The gateway: built in a Rust image, run from debian-slim as a non-root
# user. Every setting comes from the LOGS_SSE_* environment variables the
# gateway reads (deploy/gateway.env; secrets from the orchestrator).
# Build from the repository root:
#   docker build -f deploy/docker/gateway.Dockerfile -t logs-sse-gateway .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p logs-sse-gateway \
    && cargo build --release --locked -p logs-sse-cli --features tls \
    && install -D target/release/logs-sse-gateway target/release/logs-sse -t /out

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin logs-sse
COPY --from=build /out/logs-sse-gateway /out/logs-sse /usr/local/bin/
USER 10001:10001
ENV LOGS_SSE_LISTEN=0.0.0.0:3002 \
    LOGS_SSE_LOG_FORMAT=json
EXPOSE 3002
# /health answers 200 while the node serves (503 once it stops); bash's
# /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3002 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
# SIGTERM: /health turns 503, streams get `close` `shutdown`, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/logs-sse-gateway"]
