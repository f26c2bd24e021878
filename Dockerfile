# The Nightshift worker image; docker-compose.yml builds it for its worker service (docker compose up -d).
# Runs the compiled worker (dist/) on the Node.js LTS the project pins (scripts/stack/env.sh, .nvmrc), as a
# non-root user, with production dependencies only. Configuration comes from the environment at run time.
ARG NODE_VERSION=24.21.0

# --- build: every dependency, compile to dist/ ------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# --- runtime: production dependencies and dist/ ----------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# LAKE_DIR defaults to .data/lake under the working directory: owned by the user the worker runs as
RUN mkdir -p .data/lake && chown -R node:node .data
USER node
# SIGTERM finishes the running activities (up to 20 s), then exits; give it that long (docker stop -t 30)
STOPSIGNAL SIGTERM
CMD ["node", "dist/scripts/nightshift.js", "worker"]
