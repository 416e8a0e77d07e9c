#!/usr/bin/env bash
# hubctl pseudonymise: the subject_key of a valid NHS number under the
# configured linkage secret (inline, file or environment); invalid numbers
# exit 1 without the number in the message; no secret exits 2.
set -euo pipefail
source "$(dirname "$0")/hubctl_lib.bash"

# Expected keys computed once with OpenSSL, independently of hubctl:
#   printf %s 9434765919 | openssl dgst -sha256 -hmac test-linkage-secret
key_943=c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111
key_401=cad662c879cd744dd25c7d4f9461ef506b169f7b3bd6d37d611f0797c2175c81
# The same, live, when openssl is at hand (it is in the bootstrap packages).
if command -v openssl >/dev/null; then
    live=$(printf %s 9434765919 | openssl dgst -sha256 -hmac test-linkage-secret | sed 's/.*= //')
    assert_eq "openssl agrees with the recorded key" "$key_943" "$live"
fi

printf 'linkage = { secret = "test-linkage-secret"; };\n' >"$dir/inline.conf"
printf 'test-linkage-secret\n' >"$dir/secret"
printf 'linkage = { secret_file = "%s"; };\n' "$dir/secret" >"$dir/file.conf"
printf 'linkage = { secret_env = "HUBCTL_TEST_SECRET"; };\n' >"$dir/env.conf"
printf 'log = { level = "warn"; };\n' >"$dir/nosecret.conf"

for conf in inline file env; do
    out=$(HUBCTL_TEST_SECRET=test-linkage-secret "$hubctl" --config "$dir/$conf.conf" \
        pseudonymise 9434765919)
    assert_eq "valid number, secret $conf" "$key_943" "$out"
done
out=$("$hubctl" --config "$dir/inline.conf" pseudonymise "401 023 2137")
assert_eq "spaces ignored" "$key_401" "$out"
out=$("$hubctl" --config "$dir/inline.conf" pseudonymise "401-023-2137")
assert_eq "hyphens ignored" "$key_401" "$out"

for bad in 9434765918 4010232138 943476591 94347659190 943476591X 1000000010; do
    check "invalid number rejected" 1 "hubctl pseudonymise:" -- \
        "$hubctl" --config "$dir/inline.conf" pseudonymise "$bad"
    if grep -qF "$bad" "$dir/out" "$dir/err"; then fail "the number was echoed: $(cat "$dir/err")"; fi
    assert_eq "nothing on stdout for an invalid number" "" "$(cat "$dir/out")"
done
check "check digit named" 1 "check digit" -- \
    "$hubctl" --config "$dir/inline.conf" pseudonymise 9434765918

check "no secret configured" 2 "no linkage secret is configured" -- \
    "$hubctl" --config "$dir/nosecret.conf" pseudonymise 9434765919
check "unset secret variable" 2 "HUBCTL_UNSET_SECRET" -- \
    env -u HUBCTL_UNSET_SECRET "$hubctl" --config <(printf \
        'linkage = { secret_env = "HUBCTL_UNSET_SECRET"; };\n') pseudonymise 9434765919

# Many numbers from stdin: keys in order, bad lines reported by line number only.
printf '9434765919\n\n401 023 2137\n9434765918\n' >"$dir/numbers"
status=0
"$hubctl" --config "$dir/inline.conf" pseudonymise - <"$dir/numbers" >"$dir/out" 2>"$dir/err" ||
    status=$?
assert_eq "stdin: exit 1 when a line is invalid" 1 "$status"
assert_eq "stdin: the keys of the valid lines" "$key_943 $key_401" "$(tr '\n' ' ' <"$dir/out" | sed 's/ $//')"
assert_eq "stdin: the bad line named" "<stdin>:4: not a valid NHS number (the check digit does not match)" \
    "$(cat "$dir/err")"

check "usage: no number" 2 "Usage: hubctl" -- "$hubctl" --config "$dir/inline.conf" pseudonymise
check "help" 0 "modulus-11" -- "$hubctl" pseudonymise --help

finish
