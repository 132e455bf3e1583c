#!/usr/bin/env bash
# The API against its own OpenAPI document: schemathesis (pinned below) generates requests
# from /v1/openapi.json of a running `flywheel serve` (SQLite, a fresh temporary database,
# the admin key) and runs every check on the answers — no 5xx, every status and header
# documented, every body matching its schema, schema-valid requests accepted, invalid ones
# refused, auth not ignored — in all four phases (examples, coverage, fuzzing, and
# stateful sequences that follow the document's links). Any failure exits non-zero.
#
# The stateful phase starts from one project (created below, every item to review) and
# follows the links along the product's flows: items, a reviewer granted the project,
# their claim, the answer, the amendment, the override, the export… (every request with
# the admin key: a reviewer's own work is still refused, 403). Webhooks may point at
# private addresses, so that a link can create one
# (http://127.0.0.1:9, where nothing listens: its deliveries fail and are retried).
#
# Run on its own from the repository's root or anywhere:   .ci/schemathesis.sh
#   FLYWHEEL_BIN=path/to/flywheel    test that binary instead of building target/debug/flywheel
#   SCHEMATHESIS_EXAMPLES=N          cases per operation and phase (default 25)
#   SCHEMATHESIS_SEED=N              the generator's seed (default 22; any seed must pass)
#   SCHEMATHESIS_WORKERS=N           concurrent workers (default 2)
#   extra arguments are passed to `schemathesis run` (e.g. --include-path-regex items)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
root="$PWD"
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
venv="$target/venv-schemathesis"

if [ ! -x "$venv/bin/schemathesis" ] || [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  echo "== schemathesis $SCHEMATHESIS_VERSION into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

bin="${FLYWHEEL_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --locked --quiet -p flywheel
  bin="$target/debug/flywheel"
fi
bin=$(realpath "$bin")

tmp=$(mktemp -d)
admin_key="schemathesis-admin-key-0123456789"
"$bin" serve --listen 127.0.0.1:0 --database "sqlite://$tmp/st.db" --admin-key "$admin_key" \
  --webhooks-allow-private true >"$tmp/out" 2>"$tmp/err" &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
}
trap 'stop; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q '^flywheel listening' "$tmp/out" && break; sleep 0.1; done
api=$(sed -n 's/^flywheel listening on \(http:[^ ]*\).*/\1/p' "$tmp/out")
if [ -z "$api" ]; then
  echo "flywheel serve did not start:" >&2
  cat "$tmp/err" >&2
  exit 1
fi

# The project the stateful phase starts from (`GET /v1/projects` links to it): generated
# projects are mostly refused (a policy's rules must compile), and one whose items all go
# to review gives reviewers work to claim.
curl -sf -XPOST "$api/v1/projects" -H "authorization: Bearer $admin_key" -H 'content-type: application/json' \
  -d '{"name": "st", "labels": ["ham", "spam"], "policy": {"rules": [
        {"name": "everything", "when": "true", "action": "review", "queue": "standard", "tier": 1}]}}' >/dev/null

echo "== schemathesis --checks all against $api/v1/openapi.json"
status=0
# From the temporary directory: schemathesis keeps what it found under ./.schemathesis, and
# every run starts clean.
cd "$tmp"
"$venv/bin/schemathesis" --config-file "$root/.ci/schemathesis.toml" run "$api/v1/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $admin_key" \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --seed "${SCHEMATHESIS_SEED:-22}" \
  --workers "${SCHEMATHESIS_WORKERS:-2}" \
  --generation-database none \
  --no-color \
  "$@" || status=$?

# A 5xx the checks saw is also in the server's log, with its cause.
if grep -q 'request failed\|panicked' "$tmp/err"; then
  echo "== the server logged failures:" >&2
  grep 'request failed\|panicked' "$tmp/err" | head -20 >&2
  status=1
fi
exit "$status"
