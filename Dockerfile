# syntax=docker/dockerfile:1
# One image for Tally's three services and the web console; docker-compose.yml picks the binary
# per service (command: command-api | projector | query-api | console). Everything a binary needs at run time is
# compiled in: the stream and consumer definitions (include_str! of nats/*.json) and the
# read-model migrations (sqlx::migrate!), so the runtime stage holds only the binaries.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The registry, git checkouts and target/ live in BuildKit cache mounts: a rebuild after a
# source change downloads nothing and recompiles only the workspace crates, not the ~300
# dependencies (a cold release build takes minutes). target/ is a cache, not a layer, so the
# binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p command-api -p projector -p query-api -p web-console --bins \
    && mkdir -p /out \
    && cp target/release/command-api target/release/projector target/release/query-api \
       target/release/console /out/

# Same Debian release as the build stage, so the binaries find the glibc they were linked
# against. curl is for the compose health checks (GET /readyz).
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tally \
    && useradd --system --uid 10001 --gid tally --no-create-home --shell /usr/sbin/nologin tally
COPY --from=build /out/ /usr/local/bin/
# Numeric, so that orchestrators can verify "not root" without reading /etc/passwd.
USER 10001:10001
# The services bind 0.0.0.0 by default (COMMAND_API_HOST, QUERY_API_HOST, PROJECTOR_HOST,
# CONSOLE_HOST).
EXPOSE 8080 8081 8082 8083
CMD ["command-api"]
