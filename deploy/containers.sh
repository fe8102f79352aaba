#!/usr/bin/env bash
# The six-country corridor of deploy/compose.yaml in containers, on this machine: what `make compose-up`,
# `compose-demo`, `compose-test` and `compose-down` run.
#
#   deploy/containers.sh up       deploy/.env (a random POSTGRES_PASSWORD) if missing; a Docker engine (a private
#                                 dockerd when none answers and we are root); the base images; the node image built
#                                 from ../Dockerfile; `compose up -d`; wait until all six nodes are healthy; copy the
#                                 corridor file (URLs, tokens) out of the volume to .corridor/containers/corridor.json
#   deploy/containers.sh demo     up, then `transit-window demo --against .corridor/containers/corridor.json`
#   deploy/containers.sh test     the container tests (tests/deploy/test_containers.py) with TW_CONTAINER_TESTS=1
#   deploy/containers.sh down     `compose down -v` (containers, network, volumes) and stop the private dockerd
#   deploy/containers.sh docker|compose ARGS   docker / compose against the same engine and project
#   deploy/containers.sh env      prints `export DOCKER_HOST=...` for that engine (eval it to use plain docker)
#
# Settings (environment):
#   TW_BASE_IMAGES   official: python:3.11-slim-bookworm and postgres:16-bookworm from a registry;
#                    local: stand-ins bootstrapped here from Debian's packages (mmdebstrap), for machines that reach no
#                    image registry; auto (default): official when a registry answers, local otherwise
#   TW_CACHE_DIR     where the private engine's images and the stand-ins' root filesystems are kept between runs
#                    (default /var/cache/transit-window as root)
#   TW_COMPOSE       the Compose command (default: the `docker compose` plugin if present, else `docker-compose`)
#   TW_HEALTHY_WITHIN  seconds to wait for six healthy nodes (default 240)
#   TW_DEBIAN_MIRROR the Debian mirror for local bases (default: the bookworm mirrors apt already uses)
#
# Compose 1.29 (Debian's docker-compose) and Compose 2 both work: the project name is passed here (-p
# transit-corridor) and sits in deploy/.env (COMPOSE_PROJECT_NAME) for whoever runs compose by hand.
set -euo pipefail

DEPLOY=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$DEPLOY")
PROJECT=transit-corridor
NODES="kz kg uz tj tm az"
OUT="$REPO/.corridor/containers"
CACHE=${TW_CACHE_DIR:-$([ "$(id -u)" = 0 ] && echo /var/cache/transit-window || echo "${XDG_CACHE_HOME:-$HOME/.cache}/transit-window")}
# The private engine: its images under the cache (kept), its runtime state under /run (a short path: containerd's
# socket paths must stay under 108 bytes).
PRIVATE_ROOT="$CACHE/docker"
PRIVATE_EXEC=/run/transit-window-docker
PRIVATE_SOCKET="$PRIVATE_EXEC/docker.sock"
PRIVATE_PID="$PRIVATE_EXEC/dockerd.pid"
OFFICIAL_PYTHON=python:3.11-slim-bookworm
OFFICIAL_POSTGRES=postgres:16-bookworm
LOCAL_PYTHON=transit-window/python-standin:3.11-bookworm
LOCAL_POSTGRES=transit-window/postgres-standin:15-bookworm
# Part of the stand-ins' cache key with the mirrors, pip settings, CA bundle and entrypoint: change it when
# local_bases changes what goes into them.
STANDIN_RECIPE="1 bookworm minbase python3 python3-venv ca-certificates | postgresql-15"

say() { printf 'containers: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- the engine -----------------------------------------------------------------------------------------------

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# An engine that answers: the private one if it runs, else whatever DOCKER_HOST (or the default socket) names.
find_engine() {
    if [ -S "$PRIVATE_SOCKET" ] && DOCKER_HOST="unix://$PRIVATE_SOCKET" engine_answers; then
        export DOCKER_HOST="unix://$PRIVATE_SOCKET"
    else
        engine_answers
    fi
}

use_engine() {
    command -v docker >/dev/null || die "no docker CLI (apt-get install docker.io)"
    if ! find_engine; then
        [ "$(id -u)" = 0 ] || die "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-unset}); start one, or run as root"
        command -v dockerd >/dev/null || die "no Docker engine answers and there is no dockerd (apt-get install docker.io)"
        start_private_engine
    fi
    [ -n "${QUIET:-}" ] || say "engine: Docker $(docker version --format '{{.Server.Version}}') at ${DOCKER_HOST:-the default socket}"
}

start_private_engine() {
    mkdir -p "$PRIVATE_ROOT" "$PRIVATE_EXEC"
    local log="$CACHE/dockerd.log" started
    started=$(now)
    say "starting a private dockerd (data $PRIVATE_ROOT, socket $PRIVATE_SOCKET, log $log)"
    # setsid: the engine outlives this script (compose-up leaves the corridor running) until `down` stops it.
    setsid dockerd --data-root "$PRIVATE_ROOT" --exec-root "$PRIVATE_EXEC/exec" --pidfile "$PRIVATE_PID" \
        -H "unix://$PRIVATE_SOCKET" >"$log" 2>&1 </dev/null &
    export DOCKER_HOST="unix://$PRIVATE_SOCKET"
    for _ in $(seq 1 60); do
        engine_answers && { say "private dockerd ready in $(since "$started") s"; return; }
        kill -0 "$!" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 30 "$log" >&2
    die "the private dockerd did not start"
}

stop_private_engine() {
    [ -f "$PRIVATE_PID" ] || return 0
    local pid
    pid=$(cat "$PRIVATE_PID")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping the private dockerd ($pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$PRIVATE_PID"
}

compose() {
    local command=${TW_COMPOSE:-}
    if [ -z "$command" ]; then
        if docker compose version >/dev/null 2>&1; then command="docker compose"
        elif command -v docker-compose >/dev/null; then command=docker-compose
        else die "no Compose (apt-get install docker-compose, or the docker compose plugin)"
        fi
    fi
    # shellcheck disable=SC2086 # "docker compose" is two words
    $command -p "$PROJECT" -f "$DEPLOY/compose.yaml" --env-file "$DEPLOY/.env" "$@"
}

# --- deploy/.env --------------------------------------------------------------------------------------------------

ensure_env() {
    [ -f "$DEPLOY/.env" ] && return
    local password
    password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && sed "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$password/" "$DEPLOY/.env.example" >"$DEPLOY/.env")
    say "wrote deploy/.env from .env.example with a random POSTGRES_PASSWORD (never commit it)"
}

# --- base images --------------------------------------------------------------------------------------------------

registry_answers() {
    [ "${TW_BASE_IMAGES:-auto}" = local ] && return 1
    docker image inspect "$OFFICIAL_PYTHON" "$OFFICIAL_POSTGRES" >/dev/null 2>&1 && return 0
    timeout 120 docker pull -q "$OFFICIAL_PYTHON" >/dev/null 2>&1 && timeout 300 docker pull -q "$OFFICIAL_POSTGRES" >/dev/null 2>&1
}

choose_bases() {
    case ${TW_BASE_IMAGES:-auto} in
        official | local | auto) ;;
        *) die "TW_BASE_IMAGES must be official, local or auto (not ${TW_BASE_IMAGES})" ;;
    esac
    if registry_answers; then
        export TW_PYTHON_IMAGE=$OFFICIAL_PYTHON TW_POSTGRES_IMAGE=$OFFICIAL_POSTGRES
        say "bases: the official $OFFICIAL_PYTHON and $OFFICIAL_POSTGRES"
        return
    fi
    [ "${TW_BASE_IMAGES:-auto}" = official ] && die "TW_BASE_IMAGES=official, but the registry does not answer"
    say "bases: no image registry answers; local stand-ins from Debian's packages"
    local_bases
    export TW_PYTHON_IMAGE=$LOCAL_PYTHON TW_POSTGRES_IMAGE=$LOCAL_POSTGRES
}

# The Debian mirrors apt already uses for this release (the machine's own way to its packages).
debian_sources() {
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    [ "$codename" = bookworm ] || codename=bookworm
    if [ -n "${TW_DEBIAN_MIRROR:-}" ]; then
        printf 'deb %s %s main\n' "$TW_DEBIAN_MIRROR" "$codename"
        return
    fi
    apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null |
        awk -v c="$codename" '($2 == c || $2 == c "-updates" || $2 == c "-security") && $3 == "main" {
            print "deb " $1 " " $2 " main" }' | sort -u
    # Nothing listed (apt never updated): Debian's own mirror.
    apt-get indextargets 'Identifier: Packages' 2>/dev/null | grep -q "Release: $codename" ||
        printf 'deb http://deb.debian.org/debian %s main\n' "$codename"
}

# What the build needs to reach the package index from inside a container the way this machine does: the CA bundle
# (it may hold a local proxy's CA) and pip's index, certificate and proxy settings, never local paths.
pip_config_for_images() {
    local index extra trusted proxy
    index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
    extra=${PIP_EXTRA_INDEX_URL:-$(python3 -m pip config get global.extra-index-url 2>/dev/null || true)}
    trusted=${PIP_TRUSTED_HOST:-$(python3 -m pip config get global.trusted-host 2>/dev/null || true)}
    proxy=${PIP_PROXY:-${HTTPS_PROXY:-${https_proxy:-}}}
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n'
    case $index in http://* | https://*) printf 'index-url = %s\n' "$index" ;; esac
    extra=$(printf '%s\n' $extra | grep -E '^https?://' | tr '\n' ' ' || true)
    [ -n "$extra" ] && printf 'extra-index-url = %s\n' "$extra"
    [ -n "$trusted" ] && printf 'trusted-host = %s\n' "$trusted"
    [ -n "$proxy" ] && printf 'proxy = %s\n' "$proxy"
    return 0
}

# The root filesystems, as tarballs (both made at once when both are missing: most of the time is the mirror's).
python_rootfs() {
    # shellcheck disable=SC2016 # $1 is mmdebstrap's root folder, expanded by its hook shell
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='ln -sf python3 "$1/usr/bin/python"' \
        --customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"' \
        --customize-hook="cp '$CACHE/bases/pip.conf' \"\$1/etc/pip.conf\"" \
        --format=tar bookworm "$1.new" - <<<"$2"
    mv "$1.new" "$1"
}

postgres_rootfs() {
    # shellcheck disable=SC2016
    mmdebstrap --quiet --variant=minbase --include=postgresql-15 \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='rm -rf "$1/var/lib/postgresql/15" "$1/etc/postgresql/15"' \
        --customize-hook="cp '$DEPLOY/standin/postgres-entrypoint.sh' \"\$1/usr/local/bin/docker-entrypoint.sh\"" \
        --customize-hook='chmod 0755 "$1/usr/local/bin/docker-entrypoint.sh"; mkdir -p "$1/docker-entrypoint-initdb.d"' \
        --format=tar bookworm "$1.new" - <<<"$2"
    mv "$1.new" "$1"
}

local_bases() {
    command -v mmdebstrap >/dev/null || die "local bases need mmdebstrap (apt-get install mmdebstrap)"
    local sources pipconf key python_tar postgres_tar started pids=""
    sources=$(debian_sources)
    pipconf=$(pip_config_for_images)
    mkdir -p "$CACHE/bases"
    # A cache key over everything that goes into a stand-in: change any of it and the stand-in is made again.
    key=$( { printf '%s\n' "$STANDIN_RECIPE" "$sources" "$pipconf";
             cat /etc/ssl/certs/ca-certificates.crt "$DEPLOY/standin/postgres-entrypoint.sh"; } | sha256sum | cut -c1-16)
    python_tar="$CACHE/bases/python-$key.tar"
    postgres_tar="$CACHE/bases/postgres-$key.tar"

    started=$(now)
    if ! docker image inspect "$LOCAL_PYTHON-$key" >/dev/null 2>&1 && [ ! -s "$python_tar" ]; then
        say "bootstrapping the Python base (Debian bookworm: python3 3.11, venv, CA certificates) into $python_tar"
        printf '%s\n' "$pipconf" >"$CACHE/bases/pip.conf"
        python_rootfs "$python_tar" "$sources" &
        pids="$pids $!"
    fi
    if ! docker image inspect "$LOCAL_POSTGRES-$key" >/dev/null 2>&1 && [ ! -s "$postgres_tar" ]; then
        say "bootstrapping the PostgreSQL stand-in (Debian bookworm's postgresql-15) into $postgres_tar"
        postgres_rootfs "$postgres_tar" "$sources" &
        pids="$pids $!"
    fi
    for pid in $pids; do wait "$pid" || die "mmdebstrap failed (the mirrors: $(echo $sources))"; done
    [ -z "$pids" ] || say "stand-in root filesystems bootstrapped in $(since "$started") s"

    if ! docker image inspect "$LOCAL_PYTHON-$key" >/dev/null 2>&1; then
        docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
            --message "stand-in for $OFFICIAL_PYTHON: Debian bookworm's python3 (3.11), made by deploy/containers.sh" \
            "$python_tar" "$LOCAL_PYTHON-$key" >/dev/null
    fi
    docker tag "$LOCAL_PYTHON-$key" "$LOCAL_PYTHON"
    if ! docker image inspect "$LOCAL_POSTGRES-$key" >/dev/null 2>&1; then
        # (No STOPSIGNAL: `docker import` does not take it. SIGTERM is PostgreSQL's smart shutdown, which ends once
        # the nodes, stopped first, have closed their sessions.)
        docker import \
            --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' --change 'ENV PGDATA=/var/lib/postgresql/data' \
            --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
            --change 'EXPOSE 5432' --change 'VOLUME /var/lib/postgresql/data' \
            --message "stand-in for $OFFICIAL_POSTGRES on PostgreSQL 15, made by deploy/containers.sh" \
            "$postgres_tar" "$LOCAL_POSTGRES-$key" >/dev/null
    fi
    docker tag "$LOCAL_POSTGRES-$key" "$LOCAL_POSTGRES"
    # Older stand-ins go, tarballs and images.
    find "$CACHE/bases" -name '*.tar' ! -name "*-$key.tar" -delete
    docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^transit-window/(python|postgres)-standin:.*-[0-9a-f]{16}$' |
        grep -v -- "-$key\$" | xargs -r docker rmi >/dev/null 2>&1 || true
}

# --- the corridor ---------------------------------------------------------------------------------------------------

build_image() {
    local image started
    image=$(sed -n 's/^TW_IMAGE=//p' "$DEPLOY/.env")
    image=${TW_IMAGE:-${image:-transit-window:local}}
    started=$(now)
    # The classic builder when the CLI has no buildx; BuildKit otherwise. Either reads ../Dockerfile as it is.
    docker build --quiet --build-arg "PYTHON_IMAGE=$TW_PYTHON_IMAGE" -t "$image" -f "$REPO/Dockerfile" "$REPO" >/dev/null
    say "image $image built from the Dockerfile in $(since "$started") s:" \
        "$(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')," \
        "$(docker image inspect -f '{{len .RootFS.Layers}}' "$image") layers"
}

wait_healthy() {
    local within=${TW_HEALTHY_WITHIN:-240} started=$1 deadline status unhealthy id
    deadline=$(( $(date +%s) + within ))
    while :; do
        unhealthy=""
        for node in $NODES; do
            id=$(container_of "$node")
            status=$( [ -n "$id" ] && docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)
            [ "$status" = healthy ] || unhealthy="$unhealthy $node:$status"
        done
        [ -z "$unhealthy" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "not healthy after ${within} s:$unhealthy"
            compose ps >&2 || true
            for item in $unhealthy; do
                say "--- logs of ${item%%:*} ---"
                compose logs --no-color --tail 60 "${item%%:*}" >&2 || true
            done
            exit 1
        fi
        sleep 1
    done
    say "six nodes healthy $(since "$started") s after compose up"
}

# The container of a compose service, by the labels Compose 1 and 2 both set (their container names differ).
container_of() {
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$1" | head -n 1
}

copy_corridor_file() {
    mkdir -p "$OUT"
    (umask 077 && docker cp "$(container_of kz):/data/corridor.json" "$OUT/corridor.json.new")
    chmod 0600 "$OUT/corridor.json.new"
    mv "$OUT/corridor.json.new" "$OUT/corridor.json"
    say "corridor file (URLs and tokens by role): ${OUT#"$REPO/"}/corridor.json"
}

up() {
    local started
    ensure_env
    use_engine
    choose_bases
    build_image
    started=$(now)
    compose up -d --no-build --remove-orphans
    wait_healthy "$started"
    copy_corridor_file
    compose ps
}

down() {
    if command -v docker >/dev/null && find_engine && [ -f "$DEPLOY/.env" ]; then
        compose down -v --remove-orphans --timeout 15 || true
    fi
    stop_private_engine
}

case ${1:-} in
    up) up ;;
    down) down ;;
    demo)
        up
        "$REPO/.venv/bin/transit-window" demo --against "$OUT/corridor.json"
        ;;
    test)
        use_engine
        TW_CONTAINER_TESTS=1 "$REPO/.venv/bin/python" -m pytest -p no:cacheprovider -p no:xdist -v -s \
            "$REPO/tests/deploy/test_containers.py"
        ;;
    docker) shift; QUIET=1 use_engine; docker "$@" ;;
    compose) shift; QUIET=1 use_engine; compose "$@" ;;
    env) QUIET=1 use_engine; printf 'export DOCKER_HOST=%s\n' "${DOCKER_HOST:-}" ;;
    *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { print }' "$0" >&2; exit 2 ;;
esac
