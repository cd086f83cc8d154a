#!/usr/bin/env bash
# Keeps docs/template.md true: in a scratch clone of HEAD, runs every ```sh block of it in order
# (generate `payment`, test it, add it to PlaceOrder, its e2e scenario, `make demo` with it), then
# fmt and clippy, and checks what changed. Its build directory is its own, target/template-check
# (kept between runs): cargo names a workspace's artifacts by paths relative to the workspace, so
# a clone sharing this checkout's target/ would overwrite its crates (api with payment's proto,
# order with payment's step) with the clone's.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export CARGO_TARGET_DIR="$root/target/template-check"

git clone -q "$root" "$scratch/repo"
python3 - "$root/docs/template.md" >"$scratch/steps.sh" <<'PY'
import re, sys
blocks = re.findall(r"^```sh\n(.*?)^```", open(sys.argv[1]).read(), re.S | re.M)
print("set -euxo pipefail")
print("\n".join(blocks))
PY
cd "$scratch/repo"
bash "$scratch/steps.sh"
cargo fmt --all --check
cargo clippy -q -p payment -p order --all-targets -- -D warnings
# Payment's OpenAPI document came with it, current (what the build generates) and valid.
cargo test -q -p api --test openapi
python3 -m openapi_spec_validator api/payment/v1/openapi.yaml >&2
echo "template-check.sh: what docs/template.md changed (git status):" >&2
git status --porcelain --untracked-files=normal | tee "$scratch/status" >&2
# Exactly what docs/template.md's "Checked" says: the new folders, the list, order's step and
# config (in its three forms), Kubernetes' new manifest and kustomization, Cargo.lock.
expected=" M Cargo.lock
 M app/order/configs/config.yaml
 M app/order/internal/data/steps.rs
 M deploy/apps.txt
 M deploy/docker-compose/docker-compose.yaml
 M deploy/kubernetes/kustomization.yaml
 M deploy/kubernetes/order.yaml
?? api/payment/
?? app/payment/
?? deploy/kubernetes/payment.yaml"
if [ "$(cat "$scratch/status")" != "$expected" ]; then
  echo "template-check.sh: the steps changed other paths than docs/template.md says" >&2
  diff <(echo "$expected") "$scratch/status" >&2 || true
  exit 1
fi
echo "template-check.sh: $(wc -l <"$scratch/status") paths, as docs/template.md says" >&2
echo "template-check.sh: docs/template.md steps 1–5 pass: payment generated, tested, in PlaceOrder, demo green" >&2
