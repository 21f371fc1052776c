#!/usr/bin/env bash
# Stop only the daemons scripts/libvirt-up.sh started (listed, one "name pid"
# per line, in /run/vmtune-test-daemons.pids).  Daemons that were already
# running before libvirt-up.sh are left alone.  Idempotent.
#
# QEMU guests survive a libvirtd stop; running domains are reported, not
# destroyed (destroy your test guests first).
set -euo pipefail

PIDS_FILE=${VMTUNE_PIDS_FILE:-/run/vmtune-test-daemons.pids}
URI=qemu:///system

note() { echo "libvirt-down: $*" >&2; }

if [ ! -s "$PIDS_FILE" ]; then
    echo "libvirt-down: nothing to stop ($PIDS_FILE absent or empty)"
    rm -f "$PIDS_FILE"
    exit 0
fi

if command -v virsh >/dev/null && virsh -q -c "$URI" version >/dev/null 2>&1; then
    running=$(virsh -q -c "$URI" list --name 2>/dev/null | sed '/^$/d' | tr '\n' ' ' || true)
    [ -n "$running" ] && note "WARNING: domains still running (left alone): $running"
fi

# true while pid is a live (non-zombie) process named $2
alive() {
    local pid=$1 name=$2 state
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Stop libvirtd before virtlogd (guests' and libvirtd's log pipes go to
# virtlogd); otherwise reverse start order.
mapfile -t entries < <(tac "$PIDS_FILE" | grep '^libvirtd ' || true; tac "$PIDS_FILE" | grep -v '^libvirtd ' || true)
stopped=()
failed=0
for entry in "${entries[@]}"; do
    read -r name pid <<<"$entry"
    [ -n "${pid:-}" ] || continue
    if ! alive "$pid" "$name"; then
        note "$name pid $pid no longer running; skipped"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do            # up to 10 s
        alive "$pid" "$name" || break
        sleep 0.1
    done
    if alive "$pid" "$name"; then
        note "$name pid $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    if alive "$pid" "$name"; then
        note "ERROR: could not stop $name pid $pid"
        failed=1
    else
        stopped+=("$name pid $pid")
    fi
done

if [ "$failed" -eq 0 ]; then
    rm -f "$PIDS_FILE"
fi
if [ "${#stopped[@]}" -gt 0 ]; then
    what=$(printf '%s, ' "${stopped[@]}")
    echo "libvirt-down: stopped ${what%, }"
else
    echo "libvirt-down: nothing was running"
fi
exit "$failed"
