# The Docker engine of a test run; sourced by scripts/test.
#
# docker_engine_up: an engine that already answers (DOCKER_HOST, or the
# default socket) is used as it is and never stopped. Otherwise this starts
# one of its own, on its own socket so that nothing else on the machine picks
# it up by accident:
#   dockerd --bridge=none --iptables=false --ip6tables=false
# no bridge network and no firewall rules (an engine that manages iptables
# sets the FORWARD policy to DROP and breaks bridged network namespaces), so
# every container runs with --network host. Its images stay in
# $TF_TESTBED_CACHE/docker for the next run. Runs sharing it hold a shared
# lock; docker_engine_down (from a trap) stops it when the last one ends.
#
# docker_engine_down: stop the engine docker_engine_up started, unless
# another run still uses it.

TF_DOCKER_RUN=${TF_DOCKER_RUN:-/run/telefeatures-docker}
TF_DOCKER_DATA=${TF_DOCKER_DATA:-${TF_TESTBED_CACHE:-$HOME/.cache/telefeatures-testbed}/docker}
tf_docker_ours=

docker_engine_up() {
    if docker info >/dev/null 2>&1; then
        echo "Docker engine: using the one at ${DOCKER_HOST:-the default socket} (left running)"
        return 0
    fi
    if ! command -v dockerd >/dev/null; then
        echo "Docker engine: no dockerd (apt-get install docker.io)" >&2
        return 1
    fi
    mkdir -p "$TF_DOCKER_RUN" "$TF_DOCKER_DATA"
    export DOCKER_HOST="unix://$TF_DOCKER_RUN/docker.sock"
    local started=
    exec {tf_docker_start_fd}>"$TF_DOCKER_RUN/start.lock"
    flock -x "$tf_docker_start_fd"
    if ! docker info >/dev/null 2>&1; then
        started=1
        setsid dockerd --host "$DOCKER_HOST" --pidfile "$TF_DOCKER_RUN/dockerd.pid" \
            --exec-root "$TF_DOCKER_RUN/exec" --data-root "$TF_DOCKER_DATA" --storage-driver overlay2 \
            --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
            >"$TF_DOCKER_RUN/dockerd.log" 2>&1 </dev/null {tf_docker_start_fd}>&- &
        local i
        for i in $(seq 1 120); do
            docker info >/dev/null 2>&1 && break
            if ! kill -0 $! 2>/dev/null; then break; fi
            sleep 0.5
        done
    fi
    exec {tf_docker_use_fd}>"$TF_DOCKER_RUN/use.lock"
    flock -s "$tf_docker_use_fd"
    tf_docker_ours=1
    flock -u "$tf_docker_start_fd"
    if ! docker info >/dev/null 2>&1; then
        echo "Docker engine: dockerd did not start; its log ($TF_DOCKER_RUN/dockerd.log) ends with:" >&2
        tail -n 20 "$TF_DOCKER_RUN/dockerd.log" >&2
        return 1
    fi
    if [ -n "$started" ]; then
        echo "Docker engine: started dockerd $(docker info --format '{{.ServerVersion}}') at $DOCKER_HOST" \
             "(no bridge, no iptables; data in $TF_DOCKER_DATA)"
    else
        echo "Docker engine: sharing the one another test run started at $DOCKER_HOST"
    fi
}

docker_engine_down() {
    [ -n "$tf_docker_ours" ] || return 0
    tf_docker_ours=
    exec {tf_docker_use_fd}>&-
    flock -x "$tf_docker_start_fd"
    # Nobody else holds the use lock: this run is the last user.
    if flock -xn "$TF_DOCKER_RUN/use.lock" true; then
        local pid
        pid=$(cat "$TF_DOCKER_RUN/dockerd.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
            local i
            for i in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            echo "Docker engine: stopped dockerd $pid"
        fi
    else
        echo "Docker engine: left running for the other test run using it"
    fi
    flock -u "$tf_docker_start_fd"
}
