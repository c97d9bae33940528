#!/usr/bin/env bash
# Install the system packages the test suite needs, from Debian's archive, if missing:
#   chromium (+ a font) for the browser test, PostgreSQL server binaries for the store tests,
#   ab (apache2-utils) and hey, the native load generators of `make bench` (and their test),
#   Node.js + npm for the interop suite's fhir-kit-client (tests/interop).
# Java 17 and Maven (the HAPI sandbox, the HAPI client driver) are expected on the machine already.
set -euo pipefail

need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium fonts-dejavu-core)
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || need+=(postgresql)
command -v ab > /dev/null || need+=(apache2-utils)
command -v hey > /dev/null || need+=(hey)
command -v java > /dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn > /dev/null || need+=(maven)
command -v node > /dev/null || need+=(nodejs)
command -v npm > /dev/null || need+=(npm)

if [[ ${#need[@]} -eq 0 ]]; then
  exit 0
fi
echo "==> installing system packages: ${need[*]}"
if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
echo "==> system packages ready"
