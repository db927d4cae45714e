# syntax=docker/dockerfile:1
# The demo publisher (examples/publisher on the Node SDK), publishing to a
# gateway node inside the cluster. Build from the repository root:
#   docker build -f deploy/docker/publisher.Dockerfile -t logs-sse-demo-publisher .
FROM node:20-bookworm-slim
WORKDIR /src
COPY publishers/node publishers/node
COPY npm-package/package.json npm-package/package.json
COPY examples/package.json examples/package-lock.json examples/
COPY examples/publisher examples/publisher
RUN cd examples && npm install --omit=dev --no-audit --no-fund --ignore-scripts @datashop/logs-sse-publisher@file:../publishers/node
USER node
ENTRYPOINT ["node", "examples/publisher/demo-publisher.mjs"]
