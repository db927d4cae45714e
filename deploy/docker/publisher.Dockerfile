# syntax=docker/dockerfile:1
# The demo publisher (examples/publisher on the Node SDK, which has no
# dependencies), publishing to a gateway node inside the cluster. Build
# from the repository root:
#   docker build -f deploy/docker/publisher.Dockerfile -t logs-sse-demo-publisher .
FROM node:20-bookworm-slim
WORKDIR /app
COPY publishers/node node_modules/@datashop/logs-sse-publisher
COPY examples/publisher publisher
USER node
ENTRYPOINT ["node", "publisher/demo-publisher.mjs"]
