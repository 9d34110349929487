#!/usr/bin/env bash
# Rebuilds the committed XDP object from its source (needs clang and libbpf's headers:
# `apt-get install clang libbpf-dev`). Users never need this: the build embeds the committed
# object. `xdp-prog/build.sh --check` rebuilds into a temporary file and fails when the result
# differs from the committed object or when the recorded source hash is stale.
set -euo pipefail
cd "$(dirname "$0")"

out=fastpath.bpf.o
lab=lab_vlan.bpf.o
gen=gen.bpf.o
count=lab_count.bpf.o
sources=(bpf/fastpath.bpf.c include/fastpath_abi.h include/maps.h bpf/lab_vlan.bpf.c bpf/gen.bpf.c bpf/lab_count.bpf.c)

compile() {
    clang -g -O2 -target bpf -ffile-prefix-map="$PWD"=. -Wall -Werror -D__TARGET_ARCH_x86 -I include \
        -I "/usr/include/$(uname -m)-linux-gnu" \
        -c "$1" -o "$2"
    # The file prefix map keeps the build directory out of BTF line info; DWARF is stripped,
    # BTF (.BTF, .BTF.ext) kept, so the object is the same wherever it is built.
    llvm-strip -g "$2"
}

# build DIR: every object into DIR.
build() {
    compile bpf/fastpath.bpf.c "$1/$out"
    compile bpf/lab_vlan.bpf.c "$1/$lab"
    compile bpf/gen.bpf.c "$1/$gen"
    compile bpf/lab_count.bpf.c "$1/$count"
}

source_hash() {
    cat "${sources[@]}" | sha256sum | cut -d' ' -f1
}

if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    build "$tmp"
    for o in "$out" "$lab" "$gen" "$count"; do
        if ! cmp -s "$tmp/$o" "$o"; then
            echo "xdp-prog/$o differs from a rebuild of its source: run xdp-prog/build.sh and commit the object" >&2
            exit 1
        fi
    done
    if [ "$(source_hash)" != "$(cat "$out.source-sha256")" ]; then
        echo "xdp-prog/$out.source-sha256 is stale: run xdp-prog/build.sh" >&2
        exit 1
    fi
    echo "xdp-prog/$out, $lab, $gen and $count match their source"
    exit 0
fi

build .
source_hash > "$out.source-sha256"
echo "built xdp-prog/$out ($(stat -c %s "$out") bytes) from $(source_hash)"
