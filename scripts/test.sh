#!/usr/bin/env bash
# Runs every test file (x.test.ts beside the code it tests) with node's test runner.
# Node 20 does not expand quoted globs and finds no .ts tests by itself, so the file list is explicit,
# and a run that executed no test is a failure, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src apps test bench -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
node --import tsx --test --test-reporter=tap "${files[@]}" "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
if grep -qE '^# tests 0$' "$out"; then echo "the test run executed no test" >&2; exit 1; fi
pass=$(grep -E '^# pass ' "$out" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail ' "$out" | tail -1 | awk '{print $3}')
echo "${pass:-0} passed, ${fail:-0} failed"
exit "$status"
