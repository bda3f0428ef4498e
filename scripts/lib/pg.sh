# Throwaway PostgreSQL cluster for scripts/test and the benchmarks. Source it, then
# `pg_start [extra -c options]`; it exports PG_TMP, PG_PORT, PG_BIN and installs a
# trap that stops the cluster and removes it. As root the cluster runs as the
# `postgres` user (PostgreSQL refuses root).

pg_find_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"; return
  fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  echo "no PostgreSQL server binaries (initdb, pg_ctl) found; install PostgreSQL (e.g. apt-get install postgresql)" >&2
  return 1
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 55439
}

PG_AS=()
pg_stop() {
  [ -n "${PG_TMP:-}" ] || return 0
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TMP"
  PG_TMP=
}

pg_start() {
  PG_BIN=$(pg_find_bin)
  PG_TMP=$(mktemp -d /tmp/switchboard-pg.XXXXXX)
  chmod 755 "$PG_TMP"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PG_TMP"
    PG_AS=(runuser -u postgres --)
  fi
  PG_PORT=${PG_PORT:-$(pg_free_port)}
  trap pg_stop EXIT INT TERM
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  local opts="-p $PG_PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 $*"
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 -o "$opts" start >/dev/null
  export PG_TMP PG_PORT PG_BIN
}
