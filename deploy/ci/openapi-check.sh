#!/usr/bin/env bash
# Validates every committed OpenAPI document against the OpenAPI 3 schema
# (openapi-spec-validator from PyPI). That they are current is api/tests/openapi.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import openapi_spec_validator' 2>/dev/null \
  || python3 -m pip install -q 'openapi-spec-validator==0.9.0' >&2
docs=$(git ls-files --cached --others --exclude-standard '*openapi.yaml')
python3 -m openapi_spec_validator $docs >&2
echo "openapi-check.sh: $(echo $docs | wc -w) documents valid" >&2
