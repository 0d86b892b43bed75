#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for the cluster tests (idempotent).
#
#   eval "$(.ci/slurm.sh)"             # start; exports SLURM_CONF (and SSMOE_TEST_SLURM=1)
#   .ci/slurm.sh status                # sinfo of the running cluster (exit 1 when down)
#   .ci/slurm.sh stop                  # stop slurmd, slurmctld and munged (state is kept)
#   .ci/slurm.sh destroy               # stop them and delete $SSMOE_SLURM_DIR
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge packages when they are missing
# (needs root and the Debian mirror), then runs, all as root except munged (as `munge`):
# - its own munged with its own key and socket in $SSMOE_SLURM_DIR (default /tmp/ssmoe-slurm),
#   so a system munge, if any, is left alone;
# - slurmctld and slurmd on 127.0.0.1 ports $SSMOE_SLURM_PORT and +1 (default 56817/56818, not
#   Slurm's 6817/6818, so a real installation on the host does not clash), configured by
#   $SSMOE_SLURM_DIR/slurm.conf - never /etc/slurm - which clients find through SLURM_CONF;
# - one node (this host: all its CPUs and 90% of its memory, as `slurmd -C` detects them) in
#   one default partition `ssmoe`;
# - no cgroups (containers rarely allow them): proctrack/linuxproc, task/none,
#   jobacct_gather/none. A job's memory and CPU limits are therefore scheduling bookkeeping,
#   not enforced.
# - no slurmdbd: AccountingStorageType=accounting_storage/none, so `sacct` has nothing to show.
#   Job states come from squeue/scontrol, which keep a finished job for MinJobAge (1 h here),
#   and every finished job is appended to $SSMOE_SLURM_DIR/jobcomp.txt (jobcomp/filetxt).
# Logs: $SSMOE_SLURM_DIR/log/ (munged: $SSMOE_SLURM_DIR/munge/munged.log). Progress goes to stderr; stdout is exactly the `export` lines.
set -euo pipefail

DIR="${SSMOE_SLURM_DIR:-/tmp/ssmoe-slurm}"
PORT="${SSMOE_SLURM_PORT:-56817}"
PARTITION="${SSMOE_SLURM_PARTITION:-ssmoe}"
ACTION="${1:-start}"
CONF="$DIR/slurm.conf"
SOCKET="$DIR/munge/munge.socket"

log() { echo "slurm.sh: $*" >&2; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() { # pidfile name
    if pid_alive "$1"; then
        local pid
        pid="$(cat "$1")"
        log "stopping $2 (pid $pid)"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
        log "$2 did not stop in 10 s: SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
}

case "$ACTION" in
stop | destroy)
    stop_daemon "$DIR/run/slurmd.pid" slurmd
    stop_daemon "$DIR/run/slurmctld.pid" slurmctld
    stop_daemon "$DIR/munge/munged.pid" munged
    if [[ "$ACTION" == destroy ]]; then rm -rf "$DIR"; fi
    exit 0
    ;;
status)
    [[ -f "$CONF" ]] || { log "not configured ($CONF missing)"; exit 1; }
    SLURM_CONF="$CONF" sinfo >&2
    exit 0
    ;;
start) ;;
*) log "usage: $0 [start|status|stop|destroy]"; exit 2 ;;
esac

[[ "$(id -u)" == 0 ]] || { log "the local cluster runs its daemons as root: run as root"; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
        slurmctld slurmd slurm-client munge >&2
fi

mkdir -p "$DIR"/{state,spool,run,log}
id munge >/dev/null 2>&1 || useradd --system --no-create-home munge

# --- munge: our own key, socket, pid and log in $DIR/munge (owned by munge, not writable by
# others: munged refuses insecure paths).
if ! pid_alive "$DIR/munge/munged.pid"; then
    install -d -o munge -g munge -m 0700 "$DIR/munge"
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        log "creating a munge key"
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        chown munge: "$DIR/munge/munge.key"
        chmod 0400 "$DIR/munge/munge.key"
    fi
    chmod 0755 "$DIR/munge" # clients (root, job users) must reach the socket
    log "starting munged ($SOCKET)"
    runuser -u munge -- munged --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" >&2 || {
        tail -n 20 "$DIR/munge/munged.log" >&2 2>/dev/null
        exit 1
    }
fi

# --- slurm.conf (rewritten on every start: it only depends on this host)
NODE="$(hostname -s)"
read -r CPUS MEM < <(slurmd -C | awk '/^NodeName/ {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["CPUs"], v["RealMemory"] }')
MEM=$((MEM * 9 / 10))
cat >"$CONF.new" <<EOF
# Written by .ci/slurm.sh: a one-node test cluster without cgroups or accounting.
ClusterName=ssmoe
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
MinJobAge=3600
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((MEM / CPUS))
KillWait=30
MailProg=/bin/true
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$CONF.new" "$CONF"; then
    mv "$CONF.new" "$CONF"
    RECONF=1
else
    rm "$CONF.new"
    RECONF=0
fi
export SLURM_CONF="$CONF"

if ! pid_alive "$DIR/run/slurmctld.pid"; then
    log "starting slurmctld on 127.0.0.1:$PORT"
    slurmctld -f "$CONF" >&2
    RECONF=0
fi
if ! pid_alive "$DIR/run/slurmd.pid"; then
    log "starting slurmd ($NODE, $CPUS CPUs, $MEM MB)"
    slurmd -f "$CONF" >&2
elif [[ "$RECONF" == 1 ]]; then
    log "configuration changed: scontrol reconfigure"
    scontrol reconfigure >&2
fi

# Wait until the node takes jobs (idle or already running some).
for _ in $(seq 60); do
    state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)"
    case "$state" in
    idle* | mixed* | allocated* | completing*) break ;;
    down* | drain*)
        scontrol update NodeName="$NODE" State=RESUME >&2 2>/dev/null || true ;;
    esac
    sleep 1
done
case "$state" in
idle* | mixed* | allocated* | completing*) ;;
*)
    log "node $NODE is '${state:-unreachable}' after 60 s; logs in $DIR/log:"
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 2>/dev/null || true
    exit 1
    ;;
esac

log "ready: partition $PARTITION, node $NODE ($state); logs in $DIR/log"
echo "export SLURM_CONF=$CONF"
echo "export SSMOE_TEST_SLURM=1"
