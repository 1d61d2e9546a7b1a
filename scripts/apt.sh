# Sourced by install.sh and install-test-deps.sh: `apt_get ARGS...` runs
# apt-get, waiting while another apt or dpkg holds its locks (a fresh
# machine runs unattended upgrades in its first minutes) instead of failing
# at once. Waits at most ARTIFACTFS_APT_WAIT seconds (default 1800).

apt_get() {
    local deadline=$((SECONDS + ${ARTIFACTFS_APT_WAIT:-1800})) log said=0 status
    log=$(mktemp)
    while true; do
        status=0
        # DPkg::Lock::Timeout makes apt itself wait for the dpkg lock; `apt-get update`
        # (the lists lock) does not honour it, hence the loop.
        apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
        if ((status == 0)) || ! grep -qE 'Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock' "$log" \
            || ((SECONDS >= deadline)); then
            rm -f "$log"
            return "$status"
        fi
        if ((!said)); then
            echo "apt-get: another apt or dpkg (unattended upgrades?) holds its lock; waiting up to ${ARTIFACTFS_APT_WAIT:-1800} s" >&2
            said=1
        fi
        sleep "${ARTIFACTFS_APT_POLL:-5}"
    done
}
