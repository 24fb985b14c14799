#!/usr/bin/env bash
# golden-kporacle.sh: regenerate the expected outputs of the golden corpus
# (golden/<scenario>/) with kporacle, the offline runner of the real kube-proxy
# v1.37.2 rule generators. Development-only: nothing in the build or the tests
# runs this script or needs kporacle; the outputs are committed.
#
# Usage:
#   KPORACLE=/path/to/kporacle hack/golden-kporacle.sh [scenario...]
#   CHECK=1 KPORACLE=/path/to/kporacle hack/golden-kporacle.sh [scenario...]
#
# With no scenario names every directory under golden/ that has an input.yaml is
# processed. A scenario is golden/<name>/ with:
#   input.yaml  the manifests (kporacle reads it as-is)
#   args        svc2rules `compile` flags, one per line, `--flag=value`
#               (`--flag` alone means `--flag=true`); blank lines and lines
#               starting with `#` are ignored.
# For each scenario the script translates args into kporacle flags (mechanically,
# see map_flag below), runs
#   kporacle -mode iptables <flags> -f input.yaml                       > iptables.txt
#   kporacle -mode iptables <flags> -iptables-view restore -f input.yaml > iptables-restore.txt
#   kporacle -mode nftables <flags> -f input.yaml                       > nft.txt
#   kporacle -mode ipvs     <flags> -f input.yaml                       > ipvs.txt
# inside the scenario directory and rewrites PROVENANCE with the exact commands.
# If kporacle fails for a mode, that file is removed and PROVENANCE says why.
# Outputs are kporacle's stdout byte for byte; never edit them by hand.
#
# Scenarios from Git-style manifests (golden/git-*/, input.yaml without
# ClusterIPs, node ports or endpoints) also hold materialized.yaml: what
# svc2rules materialize assumed (allocation, EndpointSlices derived from the
# workloads). For them the script first runs
#   svc2rules materialize <args> -f input.yaml                         > materialized.yaml
# (SVC2RULES names the binary; default: built from this checkout) and kporacle
# reads materialized.yaml instead of input.yaml, so the expected files are
# kube-proxy's rules for the cluster the manifests would produce. The args
# that only shape that cluster (--nodes, --service-node-port-range,
# --no-allocate) are not passed to kporacle.
#
# CHECK=1 writes nothing: it regenerates into a temporary directory and reports
# every expected file (or PROVENANCE) that differs; exit status 1 on any
# difference.
#
# Build kporacle with: (cd ../shared/kporacle && go build -o /tmp/kporacle .)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
golden="$root/golden"
KPORACLE=${KPORACLE:-}
if [[ -z "$KPORACLE" ]]; then
  echo "golden-kporacle.sh: set KPORACLE to the kporacle binary" >&2
  exit 2
fi
if [[ ! -x "$KPORACLE" ]]; then
  echo "golden-kporacle.sh: $KPORACLE is not executable" >&2
  exit 2
fi
KPORACLE=$(cd "$(dirname "$KPORACLE")" && pwd)/$(basename "$KPORACLE")
CHECK=${CHECK:-}
if [[ -n "${SVC2RULES:-}" ]]; then
  SVC2RULES=("$(cd "$(dirname "$SVC2RULES")" && pwd)/$(basename "$SVC2RULES")")
elif compgen -G "$golden/*/materialized.yaml" >/dev/null; then
  svc2rules_bin=$(mktemp -d)/svc2rules
  go build -C "$root" -o "$svc2rules_bin" ./cmd/svc2rules
  SVC2RULES=("$svc2rules_bin")
fi

# map_flag NAME: the kporacle flag for an svc2rules compile flag (without dashes).
map_flag() {
  case "$1" in
    ip-family) echo family ;;
    node-name|node-ip|node-addresses|cluster-cidr|masquerade-all|masquerade-bit|\
    nodeport-addresses|localhost-nodeports|nfacct|conntrack-tcp-be-liberal|\
    ipvs-scheduler|ipvs-exclude-cidrs|service-cidrs|zone|feature-gates) echo "$1" ;;
    nodes|service-node-port-range|no-allocate) echo "" ;;  # svc2rules-only: the assumed cluster
    *) return 1 ;;
  esac
}

# read_args FILE: sets the array kflags from an args file.
read_args() {
  kflags=()
  sflags=()
  local line name value kname
  [[ -f "$1" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line=${line%$'\r'}
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! "$line" =~ ^--([a-z0-9-]+)(=(.*))?$ ]]; then
      echo "golden-kporacle.sh: $1: not a --flag=value line: $line" >&2
      return 1
    fi
    name=${BASH_REMATCH[1]}
    if [[ -n "${BASH_REMATCH[2]}" ]]; then value=${BASH_REMATCH[3]}; else value=true; fi
    if ! kname=$(map_flag "$name"); then
      echo "golden-kporacle.sh: $1: flag --$name has no kporacle equivalent" >&2
      return 1
    fi
    sflags+=("--$name=$value")
    if [[ -n "$kname" ]]; then kflags+=("-$kname=$value"); fi
  done <"$1"
}

# quote ARGS...: shell-quoted command line (for PROVENANCE).
quote() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:,=+@-]*$ ]]; then out+=" $a"; else out+=" $(printf '%q' "$a")"; fi
  done
  echo "${out# }"
}

# generate DIR OUTDIR: write the expected files and PROVENANCE of scenario DIR into OUTDIR.
generate() {
  local dir=$1 out=$2 file mode view rc errf input=input.yaml
  read_args "$dir/args"
  : >"$out/PROVENANCE"
  errf=$(mktemp)
  if [[ -f "$dir/materialized.yaml" ]]; then
    input=materialized.yaml
    local mcmd=(svc2rules materialize "${sflags[@]}" -f input.yaml)
    if ! (cd "$dir" && "${SVC2RULES[@]}" "${mcmd[@]:1}" >"$out/materialized.yaml.tmp" 2>"$errf"); then
      echo "golden-kporacle.sh: $(basename "$dir"): svc2rules materialize failed: $(cat "$errf")" >&2
      rm -f "$out/materialized.yaml.tmp" "$errf"
      return 1
    fi
    mv "$out/materialized.yaml.tmp" "$out/materialized.yaml"
    echo "materialized.yaml: svc2rules materialize (allocation and EndpointSlices from workloads): $(quote "${mcmd[@]}")" >>"$out/PROVENANCE"
  fi
  for file in iptables.txt iptables-restore.txt nft.txt ipvs.txt; do
    view=()
    case "$file" in
      iptables.txt) mode=iptables ;;
      iptables-restore.txt) mode=iptables; view=(-iptables-view restore) ;;
      nft.txt) mode=nftables ;;
      ipvs.txt) mode=ipvs ;;
    esac
    local cmd=(kporacle -mode "$mode" "${kflags[@]}" "${view[@]}" -f "$input")
    rc=0
    if [[ "$input" == materialized.yaml ]]; then
      # kporacle reads the freshly materialized file (in CHECK mode, the temporary one).
      (cd "$out" && "$KPORACLE" "${cmd[@]:1}" >"$out/$file.tmp" 2>"$errf") || rc=$?
    else
      (cd "$dir" && "$KPORACLE" "${cmd[@]:1}" >"$out/$file.tmp" 2>"$errf") || rc=$?
    fi
    if [[ $rc -eq 0 ]]; then
      mv "$out/$file.tmp" "$out/$file"
      echo "$file: kube-proxy v1.37.2 rule generators via kporacle: $(quote "${cmd[@]}")" >>"$out/PROVENANCE"
    else
      rm -f "$out/$file.tmp" "$out/$file"
      echo "$file: omitted: kporacle exited $rc: $(quote "${cmd[@]}"): $(tr '\n' ' ' <"$errf" | sed 's/ *$//')" >>"$out/PROVENANCE"
      echo "golden-kporacle.sh: $(basename "$dir"): $mode failed (exit $rc): $(cat "$errf")" >&2
    fi
    # kporacle notes skipped objects on stderr; show them once, they are not errors.
    if [[ $rc -eq 0 && -s "$errf" && $file == iptables.txt ]]; then
      sed "s|^|$(basename "$dir")/$file: |" "$errf" >&2
    fi
  done
  rm -f "$errf"
}

scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
  for d in "$golden"/*/; do
    [[ -f "$d/input.yaml" ]] && scenarios+=("$(basename "$d")")
  done
fi

status=0
for s in "${scenarios[@]}"; do
  s=${s%/}
  s=${s#golden/}
  dir="$golden/$s"
  if [[ ! -f "$dir/input.yaml" ]]; then
    echo "golden-kporacle.sh: $dir/input.yaml not found" >&2
    exit 2
  fi
  if [[ -z "$CHECK" ]]; then
    generate "$dir" "$dir"
    echo "regenerated golden/$s"
  else
    tmp=$(mktemp -d)
    generate "$dir" "$tmp"
    for f in materialized.yaml iptables.txt iptables-restore.txt nft.txt ipvs.txt PROVENANCE; do
      if [[ -f "$tmp/$f" || -f "$dir/$f" ]]; then
        if ! cmp -s "$tmp/$f" "$dir/$f" 2>/dev/null; then
          echo "DIFFERS: golden/$s/$f"
          status=1
        fi
      fi
    done
    rm -rf "$tmp"
  fi
done
if [[ -n "$CHECK" && $status -eq 0 ]]; then
  echo "all ${#scenarios[@]} scenarios match kporacle"
fi
exit $status
