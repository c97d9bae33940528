#!/usr/bin/env bash
# Build the interop suite's third-party clients (idempotent: skips what is up to date).
#   build.sh hapi-client   Maven: compile the HAPI FHIR generic client driver, write its classpath
#   build.sh node          npm ci: fhir-kit-client at the versions package-lock.json pins
#   build.sh               both
# `make test` runs it before pytest; the interop tests run it too, so a targeted pytest run
# on a clean clone works. Needs Java 17 + Maven, Node.js + npm (scripts/system-deps.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

stamp_ok() {  # $1 = stamp file, $2.. = inputs; true when the stamp matches their hash
    local stamp="$1"; shift
    [[ -f "$stamp" && "$(cat "$stamp")" == "$(cat "$@" | sha256sum)" ]]
}

build_hapi_client() {
    local dir="$HERE/hapi-client" stamp="$HERE/hapi-client/target/.build-stamp"
    local inputs=("$dir/pom.xml" $(find "$dir/src" -type f | LC_ALL=C sort))
    if stamp_ok "$stamp" "${inputs[@]}" && [[ -s "$dir/target/classpath.txt" ]]; then
        return 0
    fi
    echo "==> interop: building the HAPI FHIR client driver (Maven)" >&2
    (cd "$dir" && mvn -B -q ${MAVEN_ARGS:-} compile) >&2
    cat "${inputs[@]}" | sha256sum > "$stamp"
}

build_node() {
    local dir="$HERE/node" stamp="$HERE/node/node_modules/.build-stamp"
    if stamp_ok "$stamp" "$dir/package.json" "$dir/package-lock.json"; then
        return 0
    fi
    echo "==> interop: npm ci (fhir-kit-client)" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    cat "$dir/package.json" "$dir/package-lock.json" | sha256sum > "$stamp"
}

case "${1:-all}" in
    hapi-client) build_hapi_client ;;
    node) build_node ;;
    all) build_hapi_client; build_node ;;
    *) echo "usage: $0 [hapi-client|node]" >&2; exit 2 ;;
esac
