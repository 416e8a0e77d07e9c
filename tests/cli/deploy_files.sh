#!/usr/bin/env bash
# The deployment files (docker/, config/systemd/), checked without a container
# engine or a running systemd, neither of which these machines have:
#
#  1. The Dockerfile's build stage is replayed: exactly the files it COPYs, its
#     cmake configure/build/install command, into a scratch staging directory.
#  2. deploy_files.py checks compose.yaml (YAML, images or builds, depends_on,
#     health checks, ports, mounted files, the Kafka settings against the
#     server.properties scripts/infra.sh writes, images at the tests' versions),
#     the Dockerfile (stages, COPY sources, packages against what CMake and the
#     programs need), and the settings every systemd unit must carry.
#  3. Every program, as built for the image, accepts config/hub.conf as it is
#     and in the environment compose gives it (--check-config), and the systemd
#     configuration of the runbook (with credentials), and exits 2 on a bad file.
#  4. systemd-analyze verify passes the units, and their exposure is low.
set -euo pipefail
: "${HUB_SOURCE_DIR:?run through ctest}"
root=$HUB_SOURCE_DIR
python=${HUB_PYTHON:-/usr/bin/python3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

"$python" -c 'import yaml' 2>/dev/null || {
    echo "FAIL: python3-yaml is not installed (scripts/bootstrap installs it)" >&2
    exit 1
}

# --- 1. the Dockerfile's build stage, replayed -------------------------------
mkdir -p "$dir/src"
# COPY <src>... <dest> lines of the build stage (before the second FROM), without --from.
mapfile -t copies < <(awk '/^FROM /{n++} n==1 && /^COPY / && !/--from=/{print}' "$root/docker/Dockerfile")
((${#copies[@]} > 0)) || fail "no COPY in the Dockerfile's build stage"
for line in "${copies[@]}"; do
    read -r -a words <<<"$line"
    dest=${words[-1]}
    for src in "${words[@]:1:${#words[@]}-2}"; do
        # As COPY does: a directory's contents go into the destination directory.
        mkdir -p "$dir/src/$dest"
        if [[ -d "$root/$src" ]]; then
            cp -r "$root/$src/." "$dir/src/$dest/" || fail "COPY $src: cannot copy"
        else
            cp "$root/$src" "$dir/src/$dest/" || fail "COPY $src: cannot copy"
        fi
    done
done
# The RUN that builds: from "cmake -S" to the end of the instruction, /build and
# /staging moved into the scratch directory.
build_cmd=$(awk '/^FROM /{n++} n==1' "$root/docker/Dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
    sed -n 's/^RUN \(cmake -S .*\)$/\1/p')
[[ -n "$build_cmd" ]] || fail "no 'RUN cmake -S ...' in the Dockerfile's build stage"
build_cmd=${build_cmd//\/staging/$dir/staging}
build_cmd=${build_cmd//\/build/$dir/build}
if (cd "$dir/src" && sh -c "$build_cmd") >"$dir/build.log" 2>&1; then
    ok "the Dockerfile's build stage builds and installs from the files it copies"
else
    tail -n 30 "$dir/build.log" >&2
    fail "the Dockerfile's build stage failed (replayed as: $build_cmd)"
    exit 1
fi
staging=$dir/staging
bin=$staging/usr/local/bin
export LD_LIBRARY_PATH=$staging/usr/local/lib

# --- 2. the files themselves ---------------------------------------------------
# The broker settings exactly as scripts/infra.sh writes them (ports as in compose).
mkdir -p "$dir/kafka"
(
    # shellcheck source=/dev/null
    source "$root/scripts/infra.sh"
    # compose runs the plain broker, whichever mode the tests run in.
    HUB_KAFKA_SECURITY=plaintext HUB_KAFKA_PORT=9092 HUB_KAFKA_CONTROLLER_PORT=9093 \
        _hub_kafka_write_config "$dir/kafka"
) || fail "cannot write scripts/infra.sh's server.properties"
"$python" "$root/tests/cli/deploy_files.py" "$root" "$dir" "$dir/kafka/server.properties" "$staging" ||
    failures=$((failures + 1))

# --- 3. the configuration files, as every program reads them -------------------
# check_config <what> <file> [VAR=value...]: every program built for the image must accept it.
check_config() {
    local what=$1 file=$2 prog out
    shift 2
    for prog in "$bin"/*; do
        if out=$(env -u HUB_CONFIG "$@" "$prog" --config "$file" --check-config 2>&1); then
            ok "$(basename "$prog") accepts $what"
        else
            fail "$(basename "$prog") rejects $what: $out"
        fi
    done
}
check_config "config/hub.conf" "$root/config/hub.conf"
# ... and in compose's environment, each program with its own.
for prog in "$bin"/*; do
    name=$(basename "$prog")
    if [[ ! -f "$dir/$name.env" ]]; then
        fail "compose.yaml does not run $name"
        continue
    fi
    mapfile -t env_lines <"$dir/$name.env"
    if out=$(env -u HUB_CONFIG "${env_lines[@]}" "$prog" --config "$root/config/hub.conf" --check-config 2>&1); then
        ok "$name accepts config/hub.conf in compose's environment"
    else
        fail "$name rejects config/hub.conf in compose's environment: $out"
    fi
done

# The hub.conf the runbook gives for systemd, with the credentials a unit would load.
# The fenced block after the marker, its indentation (inside a list item) removed.
awk '/<!-- runbook-test: systemd-hub-conf -->/{f=1; next} f && /^ *```/{if (++n == 2) exit; next} f && n == 1 {sub(/^   /, ""); print}' \
    "$root/docs/operations.md" >"$dir/systemd-hub.conf"
if [[ -s "$dir/systemd-hub.conf" ]]; then
    mkdir -p "$dir/credentials"
    for c in kafka_password pg_password pg_migrate_password; do echo "not-a-real-$c" >"$dir/credentials/$c"; done
    check_config "the runbook's systemd hub.conf" "$dir/systemd-hub.conf" \
        CREDENTIALS_DIRECTORY="$dir/credentials" HUB_KAFKA_USER=hub-projector HUB_PG_USER=hub_projector
    if out=$(env -u HUB_CONFIG -u CREDENTIALS_DIRECTORY "$bin/hub-planner" --config "$dir/systemd-hub.conf" \
        --check-config 2>&1); then
        fail "the runbook's systemd hub.conf loads without its credentials: $out"
    else
        ok "without the unit's credentials it is refused: $out"
    fi
else
    fail "docs/operations.md has no '<!-- runbook-test: systemd-hub-conf -->' block"
fi

# --check-config's own contract: exit 2 and file:line on a bad file.
printf 'planner = {\n  batch_max = 0;\n};\n' >"$dir/bad.conf"
status=0
out=$(env -u HUB_CONFIG "$bin/hub-planner" --config "$dir/bad.conf" --check-config 2>&1) || status=$?
if [[ $status -eq 2 && "$out" == *"$dir/bad.conf:2:"* ]]; then
    ok "--check-config exits 2 and names file:line on a bad file"
else
    fail "--check-config on a bad file: status $status, output: $out"
fi
# The image's programs look for their data where the image puts it. (The output is read
# whole first: `| grep -q` stops reading at the match, and under pipefail the writer's
# SIGPIPE on a longer help text would count as a failure.)
help_config=$("$bin/hub-projector" --help-config)
if [[ "$help_config" == *'/usr/local/share/llr-hub}/schemas'* ]]; then
    ok "the image's programs default to /usr/local/share/llr-hub for schemas/"
else
    fail "the image's programs do not default to /usr/local/share/llr-hub: $(grep schemas_dir <<<"$help_config")"
fi

# --- 4. systemd ------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    # The units name /usr/local/bin; verify copies that name the programs just built
    # (and a stand-in for a program not in the tree yet).
    mkdir -p "$dir/units"
    for unit in "$root"/config/systemd/*.service "$root"/config/systemd/*.target; do
        sed -e "s|/usr/local/bin/\\(hub-[a-z]*\\)|$dir/prog/\\1|g" "$unit" >"$dir/units/$(basename "$unit")"
    done
    mkdir -p "$dir/prog"
    for unit in "$root"/config/systemd/llr-hub-*.service; do
        prog=$(sed -n 's|^ExecStart=/usr/local/bin/\(hub-[a-z]*\) .*|\1|p' "$unit")
        if [[ -x "$bin/$prog" ]]; then
            ln -sf "$bin/$prog" "$dir/prog/$prog"
        else
            printf '#!/bin/sh\nexit 0\n' >"$dir/prog/$prog" && chmod +x "$dir/prog/$prog"
            echo "NOTE: $prog is not built (not in the tree yet): its unit is verified with a stand-in"
        fi
    done
    if out=$(cd "$dir/units" && systemd-analyze verify --man=no ./*.service ./*.target 2>&1) && [[ -z "$out" ]]; then
        ok "systemd-analyze verify: the units and the target are clean"
    else
        fail "systemd-analyze verify: $out"
    fi
    for unit in "$dir"/units/llr-hub-*.service; do
        level=$(cd "$dir/units" && systemd-analyze security --offline=yes "./$(basename "$unit")" 2>/dev/null |
            sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
        if [[ -n "$level" ]] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
            ok "$(basename "$unit"): exposure level $level (at most 2.0)"
        else
            fail "$(basename "$unit"): exposure level '${level:-unknown}', want at most 2.0"
        fi
    done
    # sysusers and tmpfiles, applied to a scratch root as on a fresh server.
    mkdir -p "$dir/root/etc"
    if out=$(systemd-sysusers --root="$dir/root" "$root/config/systemd/llr-hub.sysusers.conf" 2>&1) &&
        gid=$(awk -F: '$1 == "llr-hub" {print $3}' "$dir/root/etc/group") && [[ -n "$gid" ]] &&
        grep -q '^llr-hub:.*:/usr/sbin/nologin$' "$dir/root/etc/passwd"; then
        ok "sysusers.d creates the system user llr-hub (no login shell)"
    else
        fail "systemd-sysusers: $out"
    fi
    if ((EUID != 0)); then
        # Only root can give the directories their owners; check the modes alone.
        if awk '!/^#/ && NF { if ($1 !~ /^[dzZ]$/ || $3 !~ /^~?0[0-7][0-7][0-7]$/ || NF != 6) bad = 1 }
                END { exit bad }' "$root/config/systemd/llr-hub.tmpfiles.conf"; then
            ok "tmpfiles.d lines are well formed (not root: not applied)"
        else
            fail "config/systemd/llr-hub.tmpfiles.conf has a malformed line"
        fi
    elif out=$(systemd-tmpfiles --root="$dir/root" --create "$root/config/systemd/llr-hub.tmpfiles.conf" 2>&1) &&
        [[ "$(stat -c '%a %g' "$dir/root/etc/llr-hub")" == "750 ${gid:-x}" ]] &&
        [[ "$(stat -c '%a %u' "$dir/root/etc/llr-hub/credentials/hub-projector")" == "700 0" ]]; then
        ok "tmpfiles.d makes /etc/llr-hub (0750, group llr-hub) and root-only credential directories"
    else
        fail "systemd-tmpfiles: $out; $(find "$dir/root/etc/llr-hub" -printf '%m %u:%g %p\n' 2>&1)"
    fi
else
    fail "systemd-analyze is not installed (Debian package systemd)"
fi

if ((failures)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all checks passed"
