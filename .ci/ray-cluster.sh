#!/usr/bin/env bash
# A real two-node Ray cluster on 127.0.0.1 for the tests: a head and one worker node, each a
# separate `ray start` (1 CPU each), all under one private temp dir so that `stop` ends exactly
# the processes this script started (by PID), never another Ray on the machine.
#   .ci/ray-cluster.sh start PORT   → prints the address 127.0.0.1:PORT once both nodes are up
#   .ci/ray-cluster.sh stop PORT
set -euo pipefail
cmd=${1:?usage: ray-cluster.sh start|stop PORT}
port=${2:?usage: ray-cluster.sh start|stop PORT}
dir=/tmp/ekray-$port   # short: Ray's socket paths live under it
# a throw-away cluster on the loopback: no token (Ray 2.60 enables token auth by default)
export RAY_USAGE_STATS_ENABLED=0 RAY_DISABLE_DOCKER_CPU_WARNING=1 RAY_AUTH_MODE=disabled

py=${PYTHON:-python}   # the interpreter the tests run (its Ray, not whichever `ray` is first on PATH)
ray_cli() { "$py" -m ray.scripts.scripts "$@"; }
# every process of this cluster: those naming $dir, and all their descendants (Ray renames its agents and workers)
pids() {
    local todo found=""
    todo=$(pgrep -f -- "$dir" || true)
    while [ -n "$todo" ]; do
        found="$found $todo"
        todo=$(for p in $todo; do pgrep -P "$p" || true; done)
    done
    echo $found
}

case "$cmd" in
start)
    mkdir -p "$dir"
    ray_cli start --head --port "$port" --num-cpus 1 --node-ip-address 127.0.0.1 --include-dashboard=false \
        --temp-dir "$dir" --disable-usage-stats >"$dir/head.log" 2>&1
    ray_cli start --address "127.0.0.1:$port" --num-cpus 1 --node-ip-address 127.0.0.1 \
        --temp-dir "$dir" --disable-usage-stats >"$dir/worker.log" 2>&1
    for _ in $(seq 60); do   # wait until the cluster sees both nodes
        n=$("$py" -c "import ray; ray.init(address='127.0.0.1:$port', logging_level='ERROR', log_to_driver=False); print(sum(1 for x in ray.nodes() if x['Alive']))" 2>/dev/null || echo 0)
        [ "$n" -ge 2 ] && { echo "127.0.0.1:$port"; exit 0; }
        sleep 1
    done
    echo "ray-cluster: nodes did not come up (see $dir/*.log)" >&2
    exit 1
    ;;
stop)
    p=$(pids)
    [ -n "$p" ] && kill $p 2>/dev/null || true
    sleep 2
    [ -n "$p" ] && kill -9 $p 2>/dev/null || true
    rm -rf "$dir"
    ;;
*) echo "usage: ray-cluster.sh start|stop PORT" >&2; exit 2 ;;
esac
