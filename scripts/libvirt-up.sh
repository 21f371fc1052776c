#!/usr/bin/env bash
# Bring up a real libvirtd + QEMU for vmtune's integration tests on a machine
# without systemd (containers, CI runners).  Idempotent: safe to run again.
#
#   - installs the Debian packages below when any is missing
#     (apt-get update at most once, and only when an install is needed);
#   - when run as root, sets user = "root" / group = "root" in
#     /etc/libvirt/qemu.conf so QEMU may open /dev/kvm;
#   - starts `virtlogd -d` and `libvirtd -d` only when they are not running;
#   - waits (max $VMTUNE_LIBVIRT_TIMEOUT s, default 30) for
#     `virsh -c qemu:///system version` to answer;
#   - records the pids it started in /run/vmtune-test-daemons.pids so that
#     scripts/libvirt-down.sh stops only those.
#
# Prints one summary line on stdout.  Exits non-zero with a message on stderr
# when the daemons cannot be brought up (whatever it did start is still in the
# pids file, so scripts/libvirt-down.sh cleans up after a failure too).
set -euo pipefail

PIDS_FILE=${VMTUNE_PIDS_FILE:-/run/vmtune-test-daemons.pids}
TIMEOUT=${VMTUNE_LIBVIRT_TIMEOUT:-30}
URI=qemu:///system
SOCK=/var/run/libvirt/libvirt-sock
QEMU_CONF=/etc/libvirt/qemu.conf
LOG_DIR=/var/log/libvirt
# the second line: Debian's own Python packages vmtune runs on (`make test-debian`) and builds its .deb
# with (`make deb`)
PACKAGES=(hwloc libvirt-daemon-system qemu-system-x86 libvirt-dev pkg-config
          libvirt-clients virtinst python3-venv python3-dev
          python3-lxml python3-typer python3-rich python3-libvirt
          debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-wheel man-db)

die() { echo "libvirt-up: ERROR: $*" >&2; exit 1; }
note() { echo "libvirt-up: $*" >&2; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- packages
missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            echo "$p"
        fi
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root; install them first"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get -y -qq -o DPkg::Lock::Timeout=600)
    note "installing: ${missing[*]}"
    # Update first only when there are no package lists at all; otherwise try
    # the install with the lists we have and update once if that fails.
    local updated=0
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        "${apt[@]}" update >&2 || die "apt-get update failed"
        updated=1
    fi
    if ! "${apt[@]}" install "${missing[@]}" >&2; then
        [ "$updated" -eq 1 ] && die "apt-get install ${missing[*]} failed"
        "${apt[@]}" update >&2 || die "apt-get update failed"
        "${apt[@]}" install "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    fi
}

# ---------------------------------------------------------------- qemu.conf
# Set `key = "value"` in qemu.conf: replace an active setting, else append.
QEMU_CONF_CHANGED=0
set_qemu_conf() {
    local key=$1 value=$2 line
    line="$key = \"$value\""
    if grep -qxF "$line" "$QEMU_CONF"; then
        return 0
    fi
    if grep -qE "^[[:space:]]*$key[[:space:]]*=" "$QEMU_CONF"; then
        sed -i -E "s|^[[:space:]]*$key[[:space:]]*=.*|$line|" "$QEMU_CONF"
    else
        printf '%s\n' "$line" >>"$QEMU_CONF"
    fi
    QEMU_CONF_CHANGED=1
}

# ---------------------------------------------------------------- daemons
libvirt_ok() { virsh -q -c "$URI" version >/dev/null 2>&1; }

# true while pid is a live (non-zombie) process named $2.  Zombies count as
# dead: without systemd, pid 1 may reap a stopped daemon only later.
alive() {
    local pid=$1 name=$2 state
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid of a live daemon by exact process name, empty if none
daemon_pid() {
    local pid
    for pid in $(pgrep -x "$1" 2>/dev/null || true); do
        if alive "$pid" "$1"; then
            echo "$pid"
            return 0
        fi
    done
}

# read the pid a daemonised process wrote into its pid file (root paths)
pidfile_pid() {
    local f=$1
    [ -s "$f" ] && tr -dc '0-9' <"$f" || true
}

STARTED=()   # "name pid"

start_daemon() {
    local name=$1 pidfile=$2 pid
    shift 2
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        show_log "$name"
        die "'$*' failed to start (exit $rc); see $LOG_DIR/$name.log"
    fi
    # -d forks; the pid file appears once the daemon has initialised.
    local i
    for i in $(seq 1 50); do
        pid=$(pidfile_pid "$pidfile")
        [ -n "$pid" ] && alive "$pid" "$name" && break
        pid=""
        sleep 0.1
    done
    [ -n "$pid" ] || pid=$(daemon_pid "$name")
    if [ -z "$pid" ]; then
        show_log "$name"
        die "$name exited right after start; see $LOG_DIR/$name.log"
    fi
    STARTED+=("$name $pid")
    record_pids "$name $pid"   # record at once, so a later failure can be cleaned up
}

show_log() {
    local f="$LOG_DIR/$1.log"
    if [ -s "$f" ]; then
        note "last lines of $f:"
        tail -n 5 "$f" >&2 || true
    fi
}

# append "name pid" entries to the pids file, dropping dead earlier entries
record_pids() {
    local tmp entry name pid
    tmp=$(mktemp "${PIDS_FILE}.XXXXXX")
    # keep still-alive entries from an earlier run, then add the new ones
    if [ -f "$PIDS_FILE" ]; then
        while read -r name pid; do
            [ -n "${pid:-}" ] || continue
            if alive "$pid" "$name"; then
                echo "$name $pid" >>"$tmp"
            fi
        done <"$PIDS_FILE"
    fi
    for entry in "$@"; do echo "$entry" >>"$tmp"; done
    mv "$tmp" "$PIDS_FILE"
}

main() {
    install_packages
    # `make test` installs packages before pip (libvirt-python builds against libvirt-dev)
    if [ "${1:-}" = "--install-only" ]; then
        return 0
    fi

    for cmd in virsh libvirtd virtlogd; do
        command -v "$cmd" >/dev/null || die "$cmd not found after package install"
    done

    if [ "$(id -u)" -eq 0 ]; then
        [ -f "$QEMU_CONF" ] || die "$QEMU_CONF not found"
        set_qemu_conf user root
        set_qemu_conf group root
    fi

    local t0 lv_pid
    t0=$(now)
    mkdir -p "$LOG_DIR"

    # virtlogd is needed by every guest start (stdio_handler = "logd"), so it
    # is checked on its own even when libvirtd already answers.
    if [ -z "$(daemon_pid virtlogd)" ]; then
        [ "$(id -u)" -eq 0 ] || die "virtlogd is not running and starting it needs root"
        start_daemon virtlogd /var/run/virtlogd.pid \
            env LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOG_DIR/virtlogd.log}" \
            virtlogd -d
    fi

    if libvirt_ok; then
        lv_pid=$(daemon_pid libvirtd)
        if [ "$QEMU_CONF_CHANGED" -eq 1 ]; then
            note "WARNING: $QEMU_CONF changed while libvirtd${lv_pid:+ (pid $lv_pid)} was running;" \
                 "restart libvirtd (scripts/libvirt-down.sh; scripts/libvirt-up.sh) for it to take effect"
        fi
        if [ "${#STARTED[@]}" -gt 0 ]; then
            echo "libvirt-up: started ${STARTED[0]/ / pid }; libvirtd${lv_pid:+ (pid $lv_pid)} already answers on $URI"
        else
            echo "libvirt-up: nothing started; libvirtd${lv_pid:+ (pid $lv_pid)} already answers on $URI"
        fi
        return 0
    fi

    [ "$(id -u)" -eq 0 ] || die "libvirtd is not running on $URI and starting it needs root"

    lv_pid=$(daemon_pid libvirtd)
    if [ -n "$lv_pid" ]; then
        # running but not answering yet (e.g. still initialising): just wait
        note "libvirtd (pid $lv_pid) is running but not answering yet; waiting"
    else
        start_daemon libvirtd /var/run/libvirtd.pid \
            env LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOG_DIR/libvirtd.log}" \
            libvirtd -d
    fi

    local deadline
    deadline=$(( $(date +%s) + TIMEOUT ))
    until libvirt_ok; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            local err
            err=$(virsh -q -c "$URI" version 2>&1 || true)
            note "virsh -c $URI version: $err"
            show_log libvirtd
            die "libvirtd did not answer on $URI within ${TIMEOUT}s (socket $SOCK $( [ -S "$SOCK" ] && echo exists || echo missing ))"
        fi
        if [ -z "$(daemon_pid libvirtd)" ]; then
            show_log libvirtd
            die "libvirtd died during startup; see $LOG_DIR/libvirtd.log"
        fi
        sleep 0.2
    done

    local what="nothing"
    if [ "${#STARTED[@]}" -gt 0 ]; then
        what=$(printf '%s, ' "${STARTED[@]/ / pid }")
        what=${what%, }
    fi
    echo "libvirt-up: started ${what}; $URI ready after $(elapsed "$t0")s (pids in $PIDS_FILE)"
}

main "$@"
