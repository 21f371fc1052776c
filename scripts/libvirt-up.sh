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
# when the daemons cannot be brought up.
set -euo pipefail

PIDS_FILE=${VMTUNE_PIDS_FILE:-/run/vmtune-test-daemons.pids}
TIMEOUT=${VMTUNE_LIBVIRT_TIMEOUT:-30}
URI=qemu:///system
SOCK=/var/run/libvirt/libvirt-sock
QEMU_CONF=/etc/libvirt/qemu.conf
LOG_DIR=/var/log/libvirt
PACKAGES=(hwloc libvirt-daemon-system qemu-system-x86 libvirt-dev pkg-config
          libvirt-clients virtinst python3-venv python3-dev)

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

# pid of a running daemon by exact process name (newest), empty if none
daemon_pid() { pgrep -n -x "$1" 2>/dev/null || true; }

# read the pid a daemonised process wrote into its pid file (root paths)
pidfile_pid() {
    local f=$1
    [ -s "$f" ] && tr -dc '0-9' <"$f" || true
}

STARTED=()   # "name pid"

start_daemon() {
    local name=$1 pidfile=$2 pid
    shift 2
    "$@" || die "'$*' failed to start (exit $?); see $LOG_DIR/$name.log"
    # -d forks; the pid file appears once the daemon has initialised.
    local i
    for i in $(seq 1 50); do
        pid=$(pidfile_pid "$pidfile")
        [ -n "$pid" ] && [ -d "/proc/$pid" ] && break
        pid=""
        sleep 0.1
    done
    [ -n "$pid" ] || pid=$(daemon_pid "$name")
    [ -n "$pid" ] || die "$name exited right after start; see $LOG_DIR/$name.log"
    STARTED+=("$name $pid")
}

record_pids() {
    [ "${#STARTED[@]}" -eq 0 ] && return 0
    local tmp entry name pid
    tmp=$(mktemp "${PIDS_FILE}.XXXXXX")
    # keep still-alive entries from an earlier run, then add the new ones
    if [ -f "$PIDS_FILE" ]; then
        while read -r name pid; do
            [ -n "${pid:-}" ] || continue
            if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
                echo "$name $pid" >>"$tmp"
            fi
        done <"$PIDS_FILE"
    fi
    for entry in "${STARTED[@]}"; do echo "$entry" >>"$tmp"; done
    mv "$tmp" "$PIDS_FILE"
}

main() {
    install_packages

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

    if libvirt_ok; then
        lv_pid=$(daemon_pid libvirtd)
        if [ "$QEMU_CONF_CHANGED" -eq 1 ]; then
            note "WARNING: $QEMU_CONF changed while libvirtd${lv_pid:+ (pid $lv_pid)} was running;" \
                 "run scripts/libvirt-down.sh (or restart libvirtd) for it to take effect"
        fi
        echo "libvirt-up: nothing started; libvirtd${lv_pid:+ (pid $lv_pid)} already answers on $URI"
        return 0
    fi

    [ "$(id -u)" -eq 0 ] || die "libvirtd is not running on $URI and starting it needs root"

    if [ -z "$(daemon_pid virtlogd)" ]; then
        start_daemon virtlogd /var/run/virtlogd.pid \
            env LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOG_DIR/virtlogd.log}" \
            virtlogd -d
    fi

    lv_pid=$(daemon_pid libvirtd)
    if [ -n "$lv_pid" ]; then
        # running but not answering yet (e.g. still initialising): just wait
        note "libvirtd (pid $lv_pid) is running but not answering yet; waiting"
    else
        start_daemon libvirtd /var/run/libvirtd.pid \
            env LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOG_DIR/libvirtd.log}" \
            libvirtd -d
    fi
    record_pids

    local deadline
    deadline=$(( $(date +%s) + TIMEOUT ))
    until libvirt_ok; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            local err
            err=$(virsh -q -c "$URI" version 2>&1 || true)
            note "virsh -c $URI version: $err"
            if [ -f "$LOG_DIR/libvirtd.log" ]; then
                note "last lines of $LOG_DIR/libvirtd.log:"
                tail -n 15 "$LOG_DIR/libvirtd.log" >&2 || true
            fi
            die "libvirtd did not answer on $URI within ${TIMEOUT}s (socket $SOCK $( [ -S "$SOCK" ] && echo exists || echo missing ))"
        fi
        if [ -z "$(daemon_pid libvirtd)" ]; then
            [ -f "$LOG_DIR/libvirtd.log" ] && tail -n 15 "$LOG_DIR/libvirtd.log" >&2
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
