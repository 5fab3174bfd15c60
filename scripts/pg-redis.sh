#!/usr/bin/env bash
# Start a throwaway PostgreSQL and Redis on free loopback ports, and stop them afterwards.
# (Copied from the steering repo's shared/scripts/start-pg-redis.sh, where it was tested on a fresh
# Debian 12 root; ./scripts/test runs the whole suite through it.)
#
# Made for a test script on a clean Debian 12 machine that runs as root (CI here), and works
# unchanged for a developer running as an ordinary user who has the packages installed.
#
#   Run a command between start and stop (the usual way):
#       ./start-pg-redis.sh run -- python -m pytest tests/integration
#   Or source it and call the functions yourself:
#       . ./start-pg-redis.sh
#       pgredis_start            # exports TEST_PG_DSN, TEST_REDIS_URL (and PGREDIS_DIR)
#       trap pgredis_stop EXIT
#
# What it does:
#   * installs postgresql and redis-server from Debian if their binaries are missing (root only),
#     without creating Debian's default "main" cluster and without starting the system services;
#   * initdb into a fresh temp dir as the `postgres` user (initdb refuses to run as root),
#     trust auth, no fsync (a throwaway: durability off, speed on), sockets in that temp dir;
#   * redis-server with no persistence, daemonized, pidfile and log in that temp dir;
#   * both bound to 127.0.0.1 only, ports picked free in PGREDIS_PORT_MIN..PGREDIS_PORT_MAX;
#   * stop: `pg_ctl stop -m fast`, `redis-cli shutdown nosave` (each server's own command),
#     then kills by the recorded PID only if it is still there, then removes the temp dir.
#
# Knobs (environment): PGREDIS_PORT_MIN=24000 PGREDIS_PORT_MAX=24999 PGREDIS_DB=trioproxy
#                      PGREDIS_NO_INSTALL=1 (fail instead of installing)
#                      PGREDIS_DURABLE=1 (keep fsync/synchronous_commit on, for benchmarks)

pgredis__log() { printf 'pgredis: %s\n' "$*" >&2; }

pgredis__free_port() {
    # A port in [min, max] that nothing listens on and that we can bind right now.
    # Without python3 (a bare Debian): a port nothing answers on through bash's /dev/tcp.
    if ! command -v python3 >/dev/null; then
        local lo=${PGREDIS_PORT_MIN:-24000} hi=${PGREDIS_PORT_MAX:-24999} p i
        for i in $(seq 1 200); do
            p=$(( lo + RANDOM % (hi - lo + 1) ))
            case " $* " in *" $p "*) continue ;; esac
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
        done
        return 1
    fi
    python3 - "${PGREDIS_PORT_MIN:-24000}" "${PGREDIS_PORT_MAX:-24999}" "$@" <<'EOF'
import random, socket, sys
lo, hi, taken = int(sys.argv[1]), int(sys.argv[2]), set(map(int, sys.argv[3:]))
ports = list(range(lo, hi + 1))
random.shuffle(ports)
for p in ports:
    if p in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    sys.exit("no free port in range")
EOF
}

pgredis__pgbin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -n "$d" ] && [ -x "$d/initdb" ] && printf '%s\n' "$d"
}

pgredis_install() {
    # Debian's packages; the postinst scripts would create and start a "main" cluster and a
    # system redis: the first is switched off, the second is refused by policy-rc.d in
    # containers (and harmless elsewhere, since we never use the default port).
    if [ -n "$(pgredis__pgbin)" ] && command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return 0
    fi
    if [ "${PGREDIS_NO_INSTALL:-}" = 1 ] || [ "$(id -u)" != 0 ]; then
        pgredis__log "postgresql/redis-server missing: apt-get install postgresql redis-server"
        return 1
    fi
    pgredis__log "installing postgresql and redis-server from Debian"
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf
    # Keep the packages from starting system services (a redis on 6379): a temporary
    # policy-rc.d, unless the image already has one (Docker images do).
    local own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    # `apt-get update` only when the lists are empty (a fresh image): it costs seconds.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -q >/dev/null || rc=1
    fi
    [ $rc = 0 ] && { apt-get install -y -q --no-install-recommends postgresql redis-server >/dev/null || rc=1; }
    [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
    return $rc
}

pgredis__as_pg() {
    # initdb and postgres must not run as root: run them as Debian's `postgres` user.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pgredis_start() {
    pgredis_install || return 1
    local pgbin dir pgport rport durable=()
    pgbin=$(pgredis__pgbin) || { pgredis__log "no PostgreSQL binaries"; return 1; }
    dir=$(mktemp -d /tmp/pgredis.XXXXXX) || return 1
    PGREDIS_DIR=$dir
    PGREDIS_PGBIN=$pgbin
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"

    # --- PostgreSQL ---
    pgport=$(pgredis__free_port) || return 1
    pgredis__as_pg "$pgbin/initdb" -D "$dir/pg" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    if [ "${PGREDIS_DURABLE:-}" != 1 ]; then
        durable=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
    fi
    # pg_ctl -w waits until the server accepts connections.
    pgredis__as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 60 \
        -o "-c port=$pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir \
            -c max_connections=200 ${durable[*]}" start >/dev/null \
        || { cat "$dir/pg.log" >&2; return 1; }
    PGREDIS_PG_PORT=$pgport
    "$pgbin/psql" -qAtX -h 127.0.0.1 -p "$pgport" -U postgres -d postgres \
        -c "CREATE DATABASE ${PGREDIS_DB:-trioproxy}" >/dev/null || return 1

    # --- Redis ---
    rport=$(pgredis__free_port "$pgport") || return 1
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
        || { cat "$dir/redis.log" >&2; return 1; }
    local i
    for i in $(seq 1 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null)" = PONG ] && break
        sleep 0.05
    done
    [ "$(redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null)" = PONG ] \
        || { cat "$dir/redis.log" >&2; return 1; }
    PGREDIS_REDIS_PORT=$rport

    export PGREDIS_DIR PGREDIS_PGBIN PGREDIS_PG_PORT PGREDIS_REDIS_PORT
    export TEST_PG_DSN="postgresql://postgres@127.0.0.1:$pgport/${PGREDIS_DB:-trioproxy}"
    export TEST_REDIS_URL="redis://127.0.0.1:$rport/0"
    pgredis__log "PostgreSQL $TEST_PG_DSN, Redis $TEST_REDIS_URL (dir $dir)"
}

pgredis_stop() {
    local dir=${PGREDIS_DIR:-} pid
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -n "${PGREDIS_REDIS_PORT:-}" ]; then
        redis-cli -h 127.0.0.1 -p "$PGREDIS_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        if [ -f "$dir/redis.pid" ]; then
            pid=$(cat "$dir/redis.pid")
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        fi
    fi
    if [ -f "$dir/pg/postmaster.pid" ]; then
        pgredis__as_pg "$PGREDIS_PGBIN/pg_ctl" -D "$dir/pg" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || { pid=$(head -n1 "$dir/pg/postmaster.pid" 2>/dev/null) && [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; }
    fi
    rm -rf "$dir"
    unset PGREDIS_DIR PGREDIS_PG_PORT PGREDIS_REDIS_PORT TEST_PG_DSN TEST_REDIS_URL
}

# Run mode: ./start-pg-redis.sh run -- CMD...  (start, run CMD with the env set, always stop)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    case "${1:-}" in
        run)
            shift; [ "${1:-}" = -- ] && shift
            pgredis_start || { pgredis_stop; exit 1; }
            trap 'pgredis_stop' EXIT
            # The command runs as a child we wait for, so INT/TERM reach us at once (bash
            # defers traps while a foreground command runs): pass them on, then clean up.
            "$@" <&0 &
            child=$!
            trap 'kill -TERM "$child" 2>/dev/null' INT TERM
            wait "$child"; rc=$?
            while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
            exit "$rc"
            ;;
        install) pgredis_install ;;
        *) echo "usage: $0 run -- CMD [ARGS...] | install   (or source it: pgredis_start / pgredis_stop)" >&2; exit 2 ;;
    esac
fi
