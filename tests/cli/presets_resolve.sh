#!/usr/bin/env bash
# Every method's quick and paper presets resolve on every benchmark target within the keys' valid ranges
# (nsamp train --print-config validates without training), --print-config's standard output alone is a config
# that resolves to itself, and nothing is written.   presets_resolve.sh NSAMP
set -u
NSAMP=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1
n=0
for m in pis dis dds euler-dds dikl idem iwsm; do
  for t in gmm9 gmm40 gmm120 mog40-50d manywell32 multiwell5 funnel10 dw4 lj13 lj55; do
    for p in quick paper; do
      if ! out=$($NSAMP train --method $m --target $t --preset $p --print-config 2>&1); then
        echo "FAIL: $m / $t / $p: $out"; exit 1
      fi
      n=$((n + 1))
    done
  done
  # Round trip on one target per method: stdout only, parsed back as --config, prints the same bytes.
  $NSAMP train --method $m --target dw4 --preset quick --print-config > printed.json 2> /dev/null || exit 1
  again=$($NSAMP train --method $m --target dw4 --config printed.json --print-config 2>&1) || {
    echo "FAIL: $m: the printed config does not resolve: $again"; exit 1; }
  [ "$again" = "$(cat printed.json)" ] || { echo "FAIL: $m: the printed config resolves to another"; exit 1; }
  rm printed.json
done
left=$(ls -A)
[ -z "$left" ] || { echo "FAIL: --print-config wrote $left"; exit 1; }
echo "ok: $n presets resolve"
