#!/usr/bin/env bash
# Keeps docs/template.md true: in a scratch clone of HEAD, runs the commands of its steps 1–4
# literally (the first four ```sh blocks: copy app/stock to app/payment, rename, register, ports),
# then step 5's `cargo test -p payment`. Shares this checkout's target/ (or $CARGO_TARGET_DIR) so
# dependencies are reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

git clone -q "$root" "$scratch/repo"
python3 - "$root/docs/template.md" >"$scratch/steps.sh" <<'PY'
import re, sys
blocks = re.findall(r"```sh\n(.*?)```", open(sys.argv[1]).read(), re.S)
print("set -euxo pipefail")
print("\n".join(blocks[:4]))
PY
cd "$scratch/repo"
bash "$scratch/steps.sh"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" cargo test -q -p payment
echo "template-check.sh: docs/template.md steps 1–5 produce a payment service that passes its tests" >&2
