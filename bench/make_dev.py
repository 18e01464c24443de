#!/usr/bin/env python3
"""Development splits of the public benchmarks: tune the engine here, never on the test cases.

    python3 bench/make_dev.py banking77 --seed 11 --out DIR   # KB: 10 train examples per intent;
                                                              # cases: 20 OTHER train examples per intent
    python3 bench/make_dev.py clinc150 --out DIR              # KB: train + oos_train; cases: val + oos_val

Same file formats as ../shared/bench/make_cases.py (DIR/kb.toml, DIR/cases.jsonl); no test example is
read. Standard library only. `--bench` points at the shared benchmark folder (default ../shared/bench).
"""
import argparse, csv, json, os, random, sys
from collections import defaultdict


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)


def write(out, name, kb, oos, cases, note):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "kb.toml"), "w") as f:
        f.write(f"# {name} development split: {note}\n")
        f.write(f"[meta]\nname = {toml_str(name + '-dev')}\ndefault_language = \"en\"\n")
        for intent in sorted(kb):
            label = intent.replace("_", " ")
            f.write(f"\n[[intent]]\nid = {toml_str(intent)}\n")
            f.write(f"title = {{ en = {toml_str(label)} }}\n")
            f.write(f"examples = {{ en = [{', '.join(toml_str(e) for e in kb[intent])}] }}\n")
            f.write(f"answer = {{ en = {toml_str('Answer about ' + label + '.')} }}\n")
        if oos:
            f.write(f"\n[out_of_scope]\nexamples = {{ en = [{', '.join(toml_str(e) for e in oos)}] }}\n")
    with open(os.path.join(out, "cases.jsonl"), "w") as f:
        for text, intent in cases:
            f.write(json.dumps({"text": text, "intent": intent}, ensure_ascii=False) + "\n")
    print(f"{out}: {len(kb)} intents, {len(cases)} cases", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["banking77", "clinc150"])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument("--cases-per-intent", type=int, default=20)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/bench"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    data = os.path.join(a.bench, "data")
    if a.dataset == "banking77":
        train = defaultdict(list)
        with open(os.path.join(data, "banking77/train.csv"), newline="") as f:
            for r in csv.DictReader(f):
                train[r["category"]].append(r["text"])
        rng = random.Random(a.seed)
        kb, cases = {}, []
        for intent in sorted(train):
            ex = list(train[intent])
            rng.shuffle(ex)
            kb[intent] = ex[: a.shots]
            cases += [(t, intent) for t in ex[a.shots : a.shots + a.cases_per_intent]]
        write(a.out, "banking77", kb, [], cases,
              f"{a.shots} train examples per intent, cases from the rest of train, seed {a.seed}")
    else:
        with open(os.path.join(data, "clinc150/data_full.json")) as f:
            d = json.load(f)
        kb = defaultdict(list)
        for text, intent in d["train"]:
            kb[intent].append(text)
        cases = [(t, i) for t, i in d["val"]] + [(t, None) for t, _ in d["oos_val"]]
        write(a.out, "clinc150", kb, [t for t, _ in d["oos_train"]], cases, "train; cases from val")


if __name__ == "__main__":
    main()
