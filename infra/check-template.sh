#!/usr/bin/env bash
# Checks template.yaml with cfn-lint, which runs the SAM transform and then CloudFormation's
# schema and rules. Pinned below 1.54: from 1.54 on cfn-lint no longer runs the SAM transform and
# passes broken SAM templates silently; 1.53.x still catches them.
#
#   infra/check-template.sh          # installs cfn-lint<1.54 with pip when missing or too new
set -euo pipefail
cd "$(dirname "$0")/.."

wanted='cfn-lint>=1.20,<1.54'
# The installed version (empty when none), read through python so no console-script shim is needed.
installed() {
    python3 -c "from importlib.metadata import version; print(version('cfn-lint'))" 2>/dev/null || true
}
usable() {
    python3 - "$1" <<'PY'
import sys
parts = sys.argv[1].split(".")
sys.exit(0 if len(parts) >= 2 and (int(parts[0]), int(parts[1])) < (1, 54) and int(parts[0]) >= 1 else 1)
PY
}
current="$(installed)"
if [ -z "$current" ] || ! usable "$current"; then
    echo "check-template: installing ${wanted} (found: ${current:-none})"
    python3 -m pip install --quiet --disable-pip-version-check "$wanted"
    current="$(installed)"
fi
echo "check-template: cfn-lint ${current}, template.yaml"
# The entry point's module, so a freshly installed cfn-lint needs no shim on the PATH.
python3 -c "import sys; from cfnlint.runner import main; sys.argv = ['cfn-lint', 'template.yaml']; sys.exit(main())"
echo "check-template: clean"
