#!/bin/bash
# Every option possyncd --help lists is documented in the README's configuration table, and the
# default config file parses back (possyncd --print-default-config | possyncd --config).
set -euo pipefail
readme=$2
# In a cross build possyncd is an ARM binary: run it behind Meson's exe wrapper (qemu-user).
read -ra wrapper <<< "${MESON_EXE_WRAPPER:-}"
possyncd_bin=$1
possyncd() { "${wrapper[@]}" "$possyncd_bin" "$@"; }
missing=0
for opt in $(possyncd --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^  //'); do
    case "$opt" in --help|--version|--print-default-config|--check-config) continue ;; esac
    if ! grep -q -- "\`$opt" "$readme"; then echo "README.md does not document $opt"; missing=1; fi
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
possyncd --print-default-config > "$tmp/default.toml"
# The default file with role/data/store filled in must be accepted as is.
printf 'role = "master"\ndata = "%s/data"\nstore = "42"\n' "$tmp" >> "$tmp/default.toml"
possyncd --config "$tmp/default.toml" --check-config | grep -q "configuration ok: master of store 42" ||
    { echo "the default config file does not parse back"; missing=1; }
printf 'role = "bogus"\n' > "$tmp/bad.toml"
if possyncd --config "$tmp/bad.toml" --data "$tmp/x" --store 1 2>"$tmp/err"; then
    echo "a bad config file was accepted"; missing=1
fi
grep -q "role must be master or slave" "$tmp/err" || { echo "bad config error unclear: $(cat "$tmp/err")"; missing=1; }
printf 'no_such_option = 1\n' > "$tmp/unknown.toml"
if possyncd --config "$tmp/unknown.toml" --role master --data "$tmp/x" --store 1 2>"$tmp/err"; then
    echo "an unknown config key was accepted"; missing=1
fi
grep -q "unknown option 'no_such_option'" "$tmp/err" || { echo "unknown key error unclear: $(cat "$tmp/err")"; missing=1; }
[ $missing = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $missing
