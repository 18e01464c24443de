#!/usr/bin/env python3
"""Writes zh-word-pairs.bin: the two-character Chinese words whose characters are both in the BIP39
Simplified Chinese wordlist, taken from jieba's dictionary (MIT licence, shipped in the jieba-rs
crate). Secret detection uses it to tell a run of random wordlist characters (a mnemonic) from a
Chinese sentence: a sentence is full of such words, a mnemonic has almost none.

    python3 make-zh-word-pairs.py JIEBA_DICT BIP39_SIMPLIFIED > zh-word-pairs.bin

JIEBA_DICT: jieba-rs's src/data/dict.txt (`word freq tag` a line), e.g.
    ~/.cargo/registry/src/*/jieba-rs-0.11.0/src/data/dict.txt
BIP39_SIMPLIFIED: the Simplified Chinese wordlist, one character a line, or the bip39 crate's
    src/language/chinese_simplified.rs (its quoted characters are read in order).

Format: b"KZWP", the number of pairs (u32, little-endian), then the sorted pair codes
(first index * 2048 + second index) as LEB128 deltas from the previous code. Standard library only.
"""
import re
import struct
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dict_path, list_path = sys.argv[1:]
    with open(list_path, encoding="utf-8") as f:
        text = f.read()
    words = re.findall(r'"(.)"', text) or [w.strip() for w in text.splitlines() if w.strip()]
    if len(words) != 2048 or any(len(w) != 1 for w in words):
        sys.exit(f"{list_path}: expected 2048 one-character words, found {len(words)}")
    index = {w: i for i, w in enumerate(words)}
    codes = set()
    with open(dict_path, encoding="utf-8") as f:
        for line in f:
            word = line.split(" ", 1)[0]
            if len(word) == 2 and word[0] in index and word[1] in index:
                codes.add(index[word[0]] * 2048 + index[word[1]])
    out = bytearray(b"KZWP")
    out += struct.pack("<I", len(codes))
    previous = 0
    for code in sorted(codes):
        delta = code - previous
        previous = code
        while True:
            byte = delta & 0x7F
            delta >>= 7
            if delta:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                break
    sys.stdout.buffer.write(bytes(out))
    print(f"{len(codes)} pairs, {len(out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
