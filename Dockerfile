# syntax=docker/dockerfile:1
# One image for every role: `relayer`, `miner`, `localnet` (pass the command as arguments).
#   docker build -t pocket-relay-miner .
#   docker run --rm pocket-relay-miner relayer --config /app/config.relayer.example.yaml

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY cmd ./cmd
COPY core ./core
COPY protocol ./protocol
COPY chain ./chain
COPY rings ./rings
COPY transport ./transport
COPY cache ./cache
COPY relayer ./relayer
COPY miner ./miner
COPY localnet ./localnet
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 relayminer \
  && useradd --system --uid 10001 --gid relayminer --home-dir /app --shell /usr/sbin/nologin relayminer
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY config.relayer.example.yaml config.miner.example.yaml ./
COPY localnet/genesis.sample.yaml ./localnet/genesis.sample.yaml
USER 10001:10001
# relay, health, gRPC, WebSocket, relayer metrics, miner metrics, localnet RPC
EXPOSE 8080 8081 8082 8083 9090 9092 26657
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cmd/main.js"]
CMD ["--help"]
