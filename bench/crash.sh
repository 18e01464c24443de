#!/usr/bin/env bash
# Crash under load: kill -9 a `kefu run` while the load generator (benches/load.rs) runs, RUNS
# times per setup, and collect one table row per run.
#
#   bench/crash.sh                  # 10 × crash-sqlite, then 10 × crash-pg3
#   RUNS=3 bench/crash.sh crash-sqlite
#
# crash-sqlite: the only instance is killed LOAD_KILL_AFTER s (default 2) into the generation and
# restarted at once on the same SQLite file. crash-pg3: three instances on one PostgreSQL schema;
# the holder of the `telegram:poll:<bot id>` lease is killed (instance 0 when there is none). Each
# run reports the messages lost (never answered: must be 0), the replies doubled, and the
# failover time (kill → the first getUpdates that reaches the fake afterwards, and → the first
# answered with updates). The load sizes come from LOAD_USERS / LOAD_MESSAGES / LOAD_RATE
# (default 200 × 3 at 100/s); LOAD_GRACE bounds the wait for replies after the generation (45 s,
# long enough for a delivery lease of 30 s to expire). Each run stays under about 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
if [ "$#" -gt 0 ]; then
    setups=("$@")
else
    setups=(crash-sqlite crash-pg3)
fi

cargo bench --bench load --no-run >/dev/null 2>&1 || cargo bench --bench load --no-run

out=$(mktemp)
trap 'rm -f "$out"' EXIT
header=""
for setup in "${setups[@]}"; do
    for run in $(seq 1 "$RUNS"); do
        echo "== $setup run $run/$RUNS" >&2
        log=$(mktemp)
        # The bench's own deadline bounds a run (about 60 s); timeout is a second guard that also
        # leaves room for a rebuild when the sources changed since the --no-run above.
        if timeout 600 cargo bench --bench load -- "$setup" >"$log" 2>>"${CRASH_LOG:-/dev/null}"; then
            if [ -z "$header" ]; then
                header=$(grep '^| scenario' "$log" | head -1)
            fi
            grep "^| $setup " "$log" | sed "s/^| $setup /| $setup #$run /" >>"$out" || true
        else
            echo "| $setup #$run | failed (exit $?) |" >>"$out"
        fi
        rm -f "$log"
    done
done

echo
echo "${header:-| scenario | instances | load | kill after | killed | kill → first getUpdates (ms) | kill → first update served (ms) | lost | doubled |}"
echo "|---|---|---|---|---|---|---|---|---|"
cat "$out"
