# syntax=docker/dockerfile:1
# The edge: nginx with deploy/nginx/logs-sse.conf (TLS, HTTP/2, SSE
# unbuffered, two gateway nodes) serving the demo app's static files
# (examples/build.sh → examples/app/dist). Mount the certificate at
# /etc/nginx/tls/tls.crt and tls.key. Build from the repository root:
#   docker build -f deploy/docker/app.Dockerfile -t logs-sse-app .
FROM rust:1-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq nodejs npm \
    && rustup target add wasm32-unknown-unknown
WORKDIR /src
# The CLI's version is the wasm-bindgen crate's pin, read by scripts/lib.sh.
COPY scripts/lib.sh scripts/lib.sh
COPY client-wasm/Cargo.toml client-wasm/Cargo.toml
RUN bash -c '. scripts/lib.sh && ensure_wasm_bindgen'
COPY . .
RUN bash examples/build.sh

FROM nginx:1.27-bookworm
RUN rm /etc/nginx/conf.d/default.conf
COPY deploy/nginx/logs-sse.conf /etc/nginx/conf.d/logs-sse.conf
COPY --from=build /src/examples/app/dist /srv/logs-sse-app
EXPOSE 443
