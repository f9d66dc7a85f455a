#!/usr/bin/env bash
# Starts a PyTorch program on every GPU of one or several nodes with torchrun (DDP).
# One node: torchrun --standalone. Several nodes: inside a Slurm allocation of that many nodes (what
# `utils/slurm.pl --num-nodes N` asks for), srun starts one torchrun per node with the job's environment
# (--export=ALL) and they meet at the allocation's first node, so one command in a batch script trains on all.
# The nodes meet through torchrun's static rendezvous (--master_addr/--master_port, node rank = the Slurm node
# id): Slurm fixes the nodes, so the elastic c10d rendezvous adds nothing, and its store, held by the first
# node's torchrun, closed when that node finished while the others still sent keep-alives to it, which ended
# every successful run with a C++ stack (TCPStore recvVector failed) in the log.
set -euo pipefail

nnodes=1
nproc_per_node=1
rdzv_port=${MASKSPEC_RDZV_PORT:-29400}

usage="Usage: $0 [--nnodes N] [--nproc_per_node G] [--rdzv_port P] <program> [<args>...]
<program> and its arguments are torchrun's: a script, or -m <module>.
  --nnodes N          nodes (default $nnodes); N > 1 needs a Slurm allocation of N nodes (utils/slurm.pl --num-nodes N)
  --nproc_per_node G  processes (GPUs) per node (default $nproc_per_node)
  --rdzv_port P       rendezvous port on the first node (default $rdzv_port; environment MASKSPEC_RDZV_PORT)
Elsewhere (no Slurm), start on each node by hand, with node rank R = 0 on the first node, 1, ... on the others:
  torchrun --nnodes N --nproc_per_node G --node_rank R --master_addr <first-node> --master_port P <program>...
e.g.: $0 --nnodes 2 --nproc_per_node 8 -m maskspec.bin.pretrain --device cuda --config conf/pretrain_base.yaml ..."

die() { echo "$0: $*" >&2; exit 1; }
positive_int() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) echo "$usage"; exit 0 ;;
    --nnodes | --nproc_per_node | --rdzv_port)
      [ $# -ge 2 ] || die "option $1 needs a value"
      positive_int "$1" "$2"
      printf -v "${1#--}" '%s' "$2"
      shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die "no program to run (see --help)"

if command -v torchrun > /dev/null; then
  torchrun=(torchrun)
else
  torchrun=(python -m torch.distributed.run)
fi

if [ "$nnodes" -eq 1 ]; then
  exec "${torchrun[@]}" --standalone --nproc_per_node "$nproc_per_node" "$@"
fi

# Several nodes: the allocation must hold them, and this script runs once, on its first node.
[ -n "${SLURM_JOB_ID:-}" ] || die "--nnodes $nnodes needs a Slurm allocation of $nnodes nodes (utils/slurm.pl" \
  "--num-nodes $nnodes, cmd.sh's cuda_cmd); outside Slurm start torchrun on each node by hand (see --help)"
allocated=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-}}
[ -n "$allocated" ] || die "Slurm job $SLURM_JOB_ID does not say how many nodes it has (SLURM_JOB_NUM_NODES)"
[ "$allocated" -ge "$nnodes" ] || die "--nnodes $nnodes but Slurm job $SLURM_JOB_ID has $allocated node(s)"
# sed, not head: head would close the pipe early and pipefail would count that as a failure
first_node=$(scontrol show hostnames "${SLURM_JOB_NODELIST:?Slurm did not set SLURM_JOB_NODELIST}" | sed -n 1p)
[ -n "$first_node" ] || die "scontrol found no host in SLURM_JOB_NODELIST='$SLURM_JOB_NODELIST'"
# The node's address in slurm.conf (NodeAddr) where it has one; a node name need not resolve.
first_addr=$(scontrol show node "$first_node" 2> /dev/null | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p' | sed -n 1p) || true
first_node=${first_addr:-$first_node}
echo "$0: $nnodes nodes x $nproc_per_node processes, rendezvous at $first_node:$rdzv_port (Slurm job $SLURM_JOB_ID)" >&2
# --export=ALL: the job's environment (path.sh's LC_ALL, VIRTUAL_ENV, OMP_NUM_THREADS, NCCL_*) on every node,
# whatever SLURM_EXPORT_ENV the batch job was given (sbatch --export=PATH would pass only PATH).
# --kill-on-bad-exit: one failed node ends the others instead of leaving them waiting in a collective.
# Each task sets its node rank from SLURM_NODEID (torchrun reads --node_rank from PET_NODE_RANK).
# shellcheck disable=SC2016
exec srun --nodes "$nnodes" --ntasks "$nnodes" --ntasks-per-node 1 --export=ALL --kill-on-bad-exit=1 \
  bash -c 'export PET_NODE_RANK=${SLURM_NODEID:?srun did not set SLURM_NODEID}; exec "$@"' torchrun_node \
  "${torchrun[@]}" --nnodes "$nnodes" --nproc_per_node "$nproc_per_node" \
  --master_addr "$first_node" --master_port "$rdzv_port" "$@"
