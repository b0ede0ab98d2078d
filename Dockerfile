# The agentsync tenant server. Build: docker build -t agentsync-server .
# Run:   docker run -p 8787:8787 -e DATABASE_URL=postgres://… -e AGENTSYNC_ADMIN_TOKEN=… agentsync-server
# Without DATABASE_URL it keeps an embedded database under /data (mount a volume there; one replica only).

# Stage 1: install, test-free build of the bundle.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY examples ./examples
RUN npm run build \
 && mkdir -p /app/node_modules/@electric-sql \
 && cp -r dist package.json examples /app/ \
 && rm -f /app/dist/*.map \
 && cp -r node_modules/@electric-sql/pglite node_modules/@electric-sql/pglite-socket /app/node_modules/@electric-sql/

# Stage 2: the bundle and the embedded database's files only (the rest is bundled), run by an unprivileged user.
FROM node:22-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8787 XDG_CACHE_HOME=/tmp/cache
WORKDIR /app
COPY --from=build /app /app
RUN mkdir /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/bin.js"]
CMD ["serve", "--data", "/data"]
