#!/usr/bin/env bash
# Malformed configs, flags and files: every command exits non-zero with a message that says what is wrong,
# and writes nothing.   bad_input.sh NSAMP   (run from a scratch directory)
set -u
NSAMP=$1
fail() { echo "FAIL: $*"; exit 1; }
n=0
expect_fail() {  # regex command...
  local re=$1; shift
  "$@" > out.txt 2>&1; local rc=$?
  [ $rc -ne 0 ] || { cat out.txt; fail "exit 0: $*"; }
  grep -Eq -e "$re" out.txt || { cat out.txt; fail "no message /$re/: $*"; }
  n=$((n + 1))
}
rm -rf bad_run && mkdir -p files
printf '{"lr": 0.001,' > files/truncated.json
printf '[1, 2]' > files/array.json
printf '{"lr": "fast"}' > files/wrong_type.json
printf 'not a numpy file at all' > files/garbage.npy
head -c 70 "$($NSAMP sample-target --target gmm40 -n 100 --out files/good.npy > /dev/null && echo files/good.npy)" \
  > files/truncated.npy
: > files/empty.npy

# configs
expect_fail "truncated.json is not valid JSON" $NSAMP train --method pis --target gmm9 --config files/truncated.json --out bad_run
expect_fail "array.json must hold a JSON object" $NSAMP train --method pis --target gmm9 --config files/array.json --out bad_run
expect_fail "key 'lr' in .*wrong_type.json must be a number" $NSAMP train --method pis --target gmm9 --config files/wrong_type.json --out bad_run
expect_fail "cannot read files/missing.json" $NSAMP train --method pis --target gmm9 --config files/missing.json --out bad_run
expect_fail "key 'lr' wants a number, got 'fast'" $NSAMP train --method pis --target gmm9 --set lr=fast --out bad_run
expect_fail "--set wants key=value, got 'lr'" $NSAMP train --method pis --target gmm9 --set lr --out bad_run
expect_fail "key 'clip_schedule' wants true or false, got 'yes'" $NSAMP train --method pis --target gmm9 --set clip_schedule=yes --out bad_run
expect_fail "'eval_protocol' = .*paper.* is out of range" $NSAMP train --method dikl --target gmm40 --set eval_protocol=paper --out bad_run
expect_fail "IW-SM train: iw_time_groups 300 must be in \[0, batch 256\]" $NSAMP train --method iwsm --target gmm40 --preset quick --set iw_time_groups=300 --out bad_run
expect_fail "buffer 2000 \.\. 1000" $NSAMP train --method idem --target gmm40 --preset quick --set buffer_min=2000 --set buffer_capacity=1000 --out bad_run
expect_fail "'iw_uniform_mix' = 1.5 in --set is out of range; valid: a number in \[0, 1\]" $NSAMP train --method iwsm --target gmm40 --set iw_uniform_mix=1.5 --out bad_run
# --print-config makes every check training makes before it writes anything: across keys and the sampler's
expect_fail "lv_traj needs traj_per_sample \(7\) >= 2 dividing the batch \(256\)" $NSAMP train --method pis --target gmm40 --preset quick --loss lv_traj --set traj_per_sample=7 --print-config
expect_fail "lv_traj needs traj_per_sample \(1\) >= 2" $NSAMP train --method pis --target gmm40 --preset quick --loss lv_traj --set traj_per_sample=1 --out bad_run
expect_fail "--print-config cannot be given with it" $NSAMP train --resume bad_run --print-config
expect_fail "iw_time_groups 300 must be in \[0, batch 256\]" $NSAMP train --method iwsm --target gmm40 --preset quick --set iw_time_groups=300 --print-config
expect_fail "need 1 <= averaged \(9\) <= mala_steps \(5\)" $NSAMP train --method dikl --target gmm40 --preset quick --set averaged=9 --print-config
expect_fail "buffer 2000 \.\. 1000" $NSAMP train --method idem --target gmm40 --preset quick --set buffer_min=2000 --set buffer_capacity=1000 --print-config
expect_fail "--split: .*(not in|test, val)" $NSAMP eval --target dw4 --samples files/good.npy --split train
# flags (CLI11 names the flag)
for cmd in info energy sample-target reference eval train sample; do
  expect_fail "not expected: --frobnicate|is required" $NSAMP $cmd --frobnicate
done
expect_fail "--target is required" $NSAMP sample-target -n 3 --out x.npy
expect_fail "-n: 0 is not a whole number >= 1" $NSAMP sample --run bad_run -n 0 --out x.npy
expect_fail "unknown name 'gmm41'" $NSAMP train --method pis --target gmm41 --out bad_run
expect_fail "--seed: -3 is not a whole number >= 0" $NSAMP train --method pis --target gmm9 --seed -3 --out bad_run
# files
expect_fail "garbage.npy.*(magic|not a .npy)" $NSAMP eval --target gmm40 --samples files/garbage.npy
expect_fail "truncated.npy" $NSAMP eval --target gmm40 --samples files/truncated.npy
expect_fail "empty.npy" $NSAMP energy --target gmm40 --in files/empty.npy --out e.npy
expect_fail "cannot (open|read).*files/none.npy|files/none.npy" $NSAMP energy --target gmm40 --in files/none.npy --out e.npy
expect_fail "cannot read files/config.json \\(is files a run directory of nsamp train\\?\\)" $NSAMP sample --run files -n 3 --out x.npy
[ ! -e bad_run ] || fail "a rejected train wrote bad_run"
[ ! -e e.npy ] && [ ! -e x.npy ] || fail "a rejected command wrote its output"
echo "ok: $n bad inputs rejected"
