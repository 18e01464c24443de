#!/usr/bin/env python3
"""Does the policy's "A or B?" rule for hand-overs help? Measured on labelled cases.

The rule (kefu-core's policy, `sibling_options`): when the engine hands a message over
(`escalate`) although its best intent alone reaches the engine's own clarify threshold and beats
the out-of-scope score, the bot asks "A or B?" with the two best intents instead of offering a
human. This script replays it on `kefu eval --details` output and reports `resolved_rate` (an
answer with the right intent, or "A or B?" with the right intent among the two — `kefu eval`'s
definition) with and without the rule, how many hand-overs it turns into questions, how many of
those hold the right option, and how many out-of-scope messages it turns into a question.

    python3 bench/sibling_rule.py --kb DIR/kb.toml --cases DIR/cases.jsonl [--kefu target/release/kefu]

Use development splits (bench/make_dev.py), never test cases, to decide on the rule.
Standard library only.
"""
import argparse, json, os, subprocess, sys, tempfile

HUMAN_INTENT = "human"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--kefu", default="target/release/kefu")
    args = ap.parse_args()

    check = subprocess.run([args.kefu, "kb", "check", "--json", args.kb],
                           capture_output=True, text=True, check=True)
    policy = json.loads(check.stdout)["policy"]
    clarify = policy["clarify_threshold"]
    with tempfile.TemporaryDirectory() as tmp:
        details = os.path.join(tmp, "details.jsonl")
        subprocess.run([args.kefu, "eval", "--kb", args.kb, "--cases", args.cases, "--json",
                        "--details", details], capture_output=True, text=True, check=True)
        rows = [json.loads(line) for line in open(details, encoding="utf-8")]

    in_scope = [r for r in rows if r["intent"] is not None]
    oos = [r for r in rows if r["intent"] is None]

    def asks(r):
        c = r["candidates"]
        if r["decision"] != "escalate" or len(c) < 2:
            return False
        a, b = c[0], c[1]
        return (a["score"] >= clarify and a["score"] > r["out_of_scope"]
                and a["intent"] != b["intent"]
                and HUMAN_INTENT not in (a["intent"], b["intent"]))

    def resolved(r, rule):
        gold = r["intent"]
        top2 = [c["intent"] for c in r["candidates"][:2]]
        if r["decision"] == "answer":
            return r["predicted"] == gold
        if r["decision"] == "clarify" or (rule and asks(r)):
            return gold in top2
        return False

    before = sum(resolved(r, False) for r in in_scope)
    after = sum(resolved(r, True) for r in in_scope)
    turned = [r for r in in_scope if asks(r)]
    right = [r for r in turned if r["intent"] in [c["intent"] for c in r["candidates"][:2]]]
    oos_turned = [r for r in oos if asks(r)]
    n = max(len(in_scope), 1)
    print(json.dumps({
        "cases": len(rows),
        "in_scope": len(in_scope),
        "clarify_threshold": round(clarify, 3),
        "resolved_rate_without_rule": round(before / n, 4),
        "resolved_rate_with_rule": round(after / n, 4),
        "handovers_turned_into_questions": len(turned),
        "of_which_right_option_offered": len(right),
        "out_of_scope_turned_into_questions": len(oos_turned),
        "out_of_scope": len(oos),
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
