#!/usr/bin/env bash
# Run a command with no network but the loopback interface.
#
#   tools/offline.sh COMMAND [ARGS...]
#
# Where the platform allows it (Linux with `unshare`, as root or with user namespaces), the
# command runs in a fresh network namespace holding only `lo`: nothing it starts — Python
# children run with -I or -S, which skip the test suite's network guard, or any other
# program — can reach another machine. Elsewhere it runs the command as it is and says so;
# the suite's in-process guard (tests/_netguard) still blocks Python code.
set -euo pipefail

if [ "${1:-}" = "--inside" ]; then
    shift
    # a new namespace starts with lo down: bring it up (Jupyter kernels and torch.distributed use it)
    if command -v ip >/dev/null 2>&1; then
        ip link set lo up
    else
        python3 - <<'PY'
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]  # SIOCGIFFLAGS
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # SIOCSIFFLAGS: IFF_UP
PY
    fi
    export MMCOURSE_NETNS=1
    exec "$@"
fi

if [ "${MMCOURSE_NETNS:-}" = 1 ] || [ "${MMCOURSE_NETNS:-}" = off ]; then
    exec "$@"  # already inside one, or switched off on purpose
fi
if command -v unshare >/dev/null 2>&1; then
    if unshare -n true 2>/dev/null; then
        exec unshare -n "$0" --inside "$@"
    elif unshare -rn true 2>/dev/null; then
        exec unshare -rn "$0" --inside "$@"
    fi
fi
echo "offline.sh: no network namespace available here (unshare -n not permitted); running with the" \
     "in-process network guard only" >&2
exec "$@"
