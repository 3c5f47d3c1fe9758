#!/usr/bin/env bash
# Run a command while CPU cores are held busy, as on a shared workshop host or CI machine.
#
#   tools/under_load.sh [-c CORES] [-t MAX_SECONDS] COMMAND [ARGS...]
#   tools/under_load.sh make test        # the check: the suite passes with one core held busy
#
# Starts CORES (default 1) busy loops, each bounded to MAX_SECONDS (default 7200) so none can
# outlive a forgotten run, runs COMMAND, stops the loops, and prints the command's wall time
# with the load averages before and after. Exits with COMMAND's status.
set -euo pipefail

cores=1
max_s=7200
while getopts "c:t:h" opt; do
    case "$opt" in
        c) cores=$OPTARG ;;
        t) max_s=$OPTARG ;;
        *) sed -n '2,9p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }

busy_pids=()
stop_busy() {
    for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${busy_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_busy EXIT INT TERM

for _ in $(seq "$cores"); do
    # a shell loop that only spins, checking its deadline (bash's SECONDS) each time round
    bash -c 'end=$((SECONDS + '"$max_s"')); while [ $SECONDS -lt $end ]; do :; done' &
    busy_pids+=("$!")
done

echo "under_load: $cores busy core(s) (pids ${busy_pids[*]}); load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)" >&2
start=$(date +%s%N)
status=0
"$@" || status=$?
end=$(date +%s%N)
echo "under_load: '$*' exited $status after $(( (end - start) / 1000000 )) ms; load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)" >&2
exit $status
