#!/bin/sh
# The one-shot `bootstrap` service of deploy/compose.yaml: everything a fresh corridor needs before its nodes start,
# made with the operator's own CLI (`transit-window keys generate`, `trust init|sign`, `clients add`).
#
#   1. a key per node:                  $TW_BOOTSTRAP_DIR/<NODE>/node-key.pem   (mode 0600)
#   2. the genesis trust list, signed by every member:
#                                       $TW_BOOTSTRAP_DIR/trust/genesis.json
#                                       $TW_BOOTSTRAP_DIR/trust/genesis.sha256  (the hash nodes pin)
#   3. an admin API client per node:    $TW_BOOTSTRAP_DIR/<NODE>/admin-token   (the bearer token, mode 0600)
#   4. a demo client per other role:    $TW_BOOTSTRAP_DIR/<NODE>/clients.json  (customs, permits, forwarder, device:
#                                       ids and tokens, `transit-window clients add-roles`, mode 0600)
#   5. the corridor file for the host:  $TW_BOOTSTRAP_DIR/corridor.json       (each node's URL as published on the
#                                       host and its tokens by role: what `transit-window demo --against` reads;
#                                       deploy/containers.sh copies it out; mode 0600)
#
# Idempotent: what exists is kept, so restarting the stack never replaces a key, the genesis or a token.
# Settings (environment):
#   TW_BOOTSTRAP_DIR        where keys, trust list and tokens go (the shared volume)
#   TW_BOOTSTRAP_THRESHOLD  member signatures a trust-list version needs
#   TW_BOOTSTRAP_VALID_DAYS days until the genesis expires (default 365)
#   TW_BOOTSTRAP_MEMBERS    one line per member: NODE NAME ENDPOINT DATABASE_URL [HOST_URL] (NAME without spaces);
#                           the database must already be migrated (`transit-window db upgrade`); HOST_URL is the
#                           node as the host reaches it (its published port), ENDPOINT when left out.
#   TW_BOOTSTRAP_FORWARDER_PARTY  the party the demo forwarder clients act for (optional)
#
# One machine holding every country's key is a demo topology. In a real corridor each country runs steps 1 and 3
# itself, sends only its public key to the genesis ceremony and signs the genesis with `trust sign`.
set -eu
umask 077

dir=${TW_BOOTSTRAP_DIR:?set TW_BOOTSTRAP_DIR}
threshold=${TW_BOOTSTRAP_THRESHOLD:?set TW_BOOTSTRAP_THRESHOLD}
valid_days=${TW_BOOTSTRAP_VALID_DAYS:-365}
table=$(printf '%s\n' "${TW_BOOTSTRAP_MEMBERS:?set TW_BOOTSTRAP_MEMBERS}" | sed '/^[[:space:]]*$/d')
trust="$dir/trust/genesis.json"

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# Wait for background jobs one by one: `set -e` stops at the first that failed.
wait_all() {
    for pid in $1; do wait "$pid"; done
}

# 1. Keys (in parallel: each is its own process).
pids=""
while read -r node name endpoint database published; do
    if [ ! -f "$dir/$node/node-key.pem" ]; then
        mkdir -p "$dir/$node"
        transit-window keys generate --out "$dir/$node/node-key.pem" </dev/null >&2 &
        pids="$pids $!"
    else
        say "$node: key kept"
    fi
done <<TABLE
$table
TABLE
wait_all "$pids"

# 2. The genesis: version 1 listing every member, then one signature per member.
if [ ! -f "$trust" ]; then
    mkdir -p "$dir/trust"
    set --
    while read -r node name endpoint database published; do
        set -- "$@" --member "$node=$name,$endpoint,$dir/$node/node-key.pem"
    done <<TABLE
$table
TABLE
    transit-window trust init --out "$trust.new" --threshold "$threshold" --valid-days "$valid_days" "$@" >&2
    while read -r node name endpoint database published; do
        transit-window trust sign "$trust.new" --key "$dir/$node/node-key.pem" </dev/null >&2
    done <<TABLE
$table
TABLE
    mv "$trust.new" "$trust"  # every node checks the signatures against the threshold before it trusts the file
else
    say "genesis kept"
fi
# The SHA-256 of the signed payload: what every node pins (TW_GENESIS_SHA256).
python - "$trust" >"$dir/trust/genesis.sha256" <<'PY'
import base64, hashlib, json, sys

payload = json.load(open(sys.argv[1]))["payload"]
print(hashlib.sha256(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).hexdigest())
PY

# 3. An admin client per node, in its own database; the token is printed once by the CLI and kept here.
pids=""
while read -r node name endpoint database published; do
    token="$dir/$node/admin-token"
    if [ ! -s "$token" ]; then
        (
            TW_DATABASE_URL=$database transit-window clients add --name "corridor operator ($node)" --role admin \
                </dev/null >"$token.out" &&
                tail -n 1 "$token.out" >"$token" &&
                rm -f "$token.out"
        ) &
        pids="$pids $!"
    else
        say "$node: admin token kept"
    fi
done <<TABLE
$table
TABLE
wait_all "$pids"

# 4. A demo client per other role, for the story and the API tour (`transit-window demo --against`).
pids=""
while read -r node name endpoint database published; do
    clients="$dir/$node/clients.json"
    if [ ! -s "$clients" ]; then
        (
            TW_DATABASE_URL=$database transit-window clients add-roles --name "demo {role} ($node)" \
                --role customs --role permits --role forwarder --role device \
                ${TW_BOOTSTRAP_FORWARDER_PARTY:+--forwarder-party "$TW_BOOTSTRAP_FORWARDER_PARTY"} \
                </dev/null >"$clients.new" &&
                mv "$clients.new" "$clients"
        ) &
        pids="$pids $!"
    else
        say "$node: demo clients kept"
    fi
done <<TABLE
$table
TABLE
wait_all "$pids"

# 5. The corridor file: rewritten from what is kept, so a restart writes the same bytes.
python - "$dir" "${TW_BOOTSTRAP_FORWARDER_PARTY:-}" "$table" >"$dir/corridor.json.new" <<'PY'
import json, sys
from pathlib import Path

folder, party, table = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
nodes = []
for line in table.splitlines():
    node, _name, endpoint, _database, *published = line.split()
    clients = json.loads((folder / node / "clients.json").read_text())
    nodes.append({
        "id": node,
        "url": published[0] if published else endpoint,
        "endpoint": endpoint,
        "tokens": {"admin": (folder / node / "admin-token").read_text().strip()}
        | {role: client["token"] for role, client in clients.items()},
        "client_ids": {role: client["id"] for role, client in clients.items()},
        "forwarder_party": party or None,
    })
genesis = (folder / "trust" / "genesis.sha256").read_text().strip()
print(json.dumps({"genesis_sha256": genesis, "nodes": nodes}, indent=2))
PY
mv "$dir/corridor.json.new" "$dir/corridor.json"

say "genesis sha256 $(cat "$dir/trust/genesis.sha256"); admin tokens in $dir/<NODE>/admin-token; URLs and tokens in $dir/corridor.json"
