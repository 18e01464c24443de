//! End-to-end tests of the `kefu` command line against `shared/contracts/cli.md` and
//! `shared/contracts/kb-format.md`: they run the built binary from the repository root (so the
//! default `config/` and `config/kb` are found), like a user or a script would.
//!
//! Every run of `kefu` loads and trains a KB, so the tests that need the (large) default KB are
//! kept few; the others write a tiny KB into their own temporary directory.

// clippy.toml allows unwrap/expect inside #[test] functions only; the helpers here are test code too.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    /// Exit code (-1 if killed by a signal).
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `kefu ARGS…` from the repository root with `stdin` piped in (or no stdin at all), in a
/// clean environment as far as Kefu's own configuration variables go.
fn kefu<I, S>(args: I, stdin: Option<&str>) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kefu"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd.env_remove("KEFU_ENV").env_remove("KEFU_CONFIG_DIR");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEFU__") {
            cmd.env_remove(key);
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn the kefu binary");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("write stdin");
        // Dropping the pipe closes it: the binary sees EOF.
    }
    let out = child.wait_with_output().expect("wait for kefu");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Parses stdout as exactly one JSON object (on one line, nothing else printed).
fn one_json_object(run: &Run) -> serde_json::Map<String, Value> {
    assert_eq!(run.code, 0, "exit code; {run:#?}");
    assert_eq!(
        run.stdout.trim_end().lines().count(),
        1,
        "stdout must be one JSON line; {run:#?}"
    );
    match serde_json::from_str::<Value>(run.stdout.trim()) {
        Ok(Value::Object(map)) => map,
        other => panic!("stdout is not one JSON object ({other:?}); {run:#?}"),
    }
}

/// Asserts the run failed with exit code 2 and a stderr naming `file:line:` and a fix.
fn assert_bad_input_at(run: &Run, file: &Path, line: usize) {
    assert_eq!(run.code, 2, "exit code; {run:#?}");
    let at = format!("{}:{line}:", file.display());
    assert!(
        run.stderr.contains(&at),
        "stderr should name {at:?}; {run:#?}"
    );
    assert!(
        run.stderr.contains("fix:"),
        "stderr should say how to fix it; {run:#?}"
    );
    assert!(
        run.stdout.trim().is_empty(),
        "nothing on stdout on failure; {run:#?}"
    );
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

fn unit(v: &Value) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((0.0..=1.0).contains(&x), "{x} is not within 0..1");
    x
}

/// `kefu ask --json TEXT` on the default KB: the object, after checking the contract's fields.
fn ask_json(text: &str) -> serde_json::Map<String, Value> {
    let run = kefu(["ask", "--json", text], None);
    let out = one_json_object(&run);
    for key in [
        "decision",
        "intent",
        "confidence",
        "candidates",
        "language",
        "reply",
        "out_of_scope",
        "secrets",
    ] {
        assert!(out.contains_key(key), "ask --json lacks {key:?}: {out:?}");
    }
    let decision = out["decision"].as_str().expect("decision is a string");
    assert!(
        ["answer", "clarify", "escalate"].contains(&decision),
        "decision {decision:?}"
    );
    assert!(
        out["intent"].is_null() || out["intent"].is_string(),
        "intent: {}",
        out["intent"]
    );
    unit(&out["confidence"]);
    unit(&out["out_of_scope"]);
    assert!(out["language"].is_string(), "language: {}", out["language"]);
    assert!(
        out["reply"].as_str().is_some_and(|r| !r.trim().is_empty()),
        "empty reply: {out:?}"
    );
    let candidates = out["candidates"]
        .as_array()
        .expect("candidates is an array");
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| {
            assert!(
                c["intent"].as_str().is_some_and(|i| !i.is_empty()),
                "candidate intent: {c}"
            );
            unit(&c["score"])
        })
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "candidates not sorted by score: {scores:?}"
    );
    assert!(out["secrets"].is_array(), "secrets: {}", out["secrets"]);
    out
}

// ---------------------------------------------------------------------------------------------
// A tiny KB and cases, written into a temporary directory.

const SMALL_KB: &str = r#"[meta]
name = "Test Exchange"
default_language = "en"

[[intent]]
id = "withdrawal.failed"
title = { zh = "提币失败", en = "Withdrawal failed" }
examples.zh = ["提币失败了怎么办", "提币一直失败", "提现失败", "为什么不能提币", "提币被拒绝了"]
examples.en = ["my withdrawal failed", "withdrawal failed", "i cannot withdraw", "why did my withdrawal fail", "withdrawal rejected"]
answer = { zh = "请在提币记录中查看失败原因。", en = "Check the failure reason in your withdrawal history." }
related = ["deposit.missing"]

[[intent]]
id = "deposit.missing"
title = { zh = "充值未到账", en = "Deposit not credited" }
examples.zh = ["充值没到账", "充币一直不到账", "我的充值去哪了", "入金没有显示", "充值很久了还没到"]
examples.en = ["my deposit has not arrived", "deposit not credited", "where is my deposit", "deposit missing", "deposited but balance is zero"]
answer = { zh = "请提供交易哈希，我们会帮您查询。", en = "Send us the transaction hash and we will look into it." }
priority = "high"
collect = ["tx_id", "amount"]

[[intent]]
id = "account.password_reset"
title = { zh = "重置密码", en = "Reset password" }
examples.zh = ["忘记密码了", "怎么重置登录密码", "密码找回", "改密码", "登录密码忘了怎么办"]
examples.en = ["i forgot my password", "how do i reset my password", "password reset", "change my password", "cannot remember my login password"]
answer = { zh = "在登录页点击“忘记密码”。", en = "Tap \"Forgot password\" on the login page." }

[[intent]]
id = "support.contact"
title = { zh = "联系客服", en = "Contact support" }
examples.zh = ["怎么联系客服", "人工客服在哪", "我要找客服", "客服电话多少", "联系你们"]
examples.en = ["how do i contact support", "talk to a human", "customer service", "support email", "how can i reach you"]
answer = { zh = "在 App 中打开“帮助中心”。", en = "Open the Help Center in the app." }
handoff = true

[out_of_scope]
examples.zh = ["今天天气怎么样", "讲个笑话", "写一首诗", "比特币明天会涨吗"]
examples.en = ["what is the weather today", "tell me a joke", "write me a poem", "will bitcoin go up tomorrow"]
"#;

const SMALL_CASES: &str = r#"{"text": "提币失败了怎么办", "intent": "withdrawal.failed"}
{"text": "my withdrawal failed", "intent": "withdrawal.failed"}
{"text": "充值没到账", "intent": "deposit.missing"}
{"text": "where is my deposit", "intent": "deposit.missing", "note": "extra fields are ignored"}
{"text": "忘记密码了", "intent": "account.password_reset"}
{"text": "how do i reset my password", "intent": "account.password_reset"}
{"text": "how do i contact support", "intent": "support.contact"}
{"text": "今天天气怎么样", "intent": null}
{"text": "tell me a joke", "intent": null}
"#;

/// A temporary directory holding `files` (name, content); returned with its path.
fn dir_with(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write fixture");
    }
    let path = dir.path().to_owned();
    (dir, path)
}

/// Runs `kefu eval --kb KB --cases CASES` with `extra` arguments after them.
fn eval(kb: &Path, cases: &Path, extra: &[&OsStr]) -> Run {
    let mut args = vec![
        OsStr::new("eval"),
        OsStr::new("--kb"),
        kb.as_os_str(),
        OsStr::new("--cases"),
        cases.as_os_str(),
    ];
    args.extend_from_slice(extra);
    kefu(args, None)
}

/// Runs `kefu kb check FILE` on a one-file KB with `content`.
fn check_kb_file(content: &str) -> (tempfile::TempDir, PathBuf, Run) {
    let (dir, path) = dir_with(&[("kb.toml", content)]);
    let file = path.join("kb.toml");
    let run = kefu(
        [OsStr::new("kb"), OsStr::new("check"), file.as_os_str()],
        None,
    );
    (dir, file, run)
}

/// Two valid intents, 6 lines; broken KBs append to it so their problem sits at a known line.
const TWO_INTENTS: &str = r#"[[intent]]
id = "a"
title = { en = "A" }
examples = { en = ["how do I do a"] }
answer = { en = "Like this." }
"#;

// ---------------------------------------------------------------------------------------------
// ask

#[test]
fn a_chinese_withdrawal_question_is_answered_in_chinese_with_withdrawal_failed() {
    let out = ask_json("提币失败了怎么办");
    assert_eq!(out["decision"], "answer", "{out:?}");
    assert_eq!(out["intent"], "withdrawal.failed", "{out:?}");
    assert_eq!(out["language"], "zh", "{out:?}");
    assert!(
        has_cjk(out["reply"].as_str().unwrap_or_default()),
        "reply is not Chinese: {out:?}"
    );
    assert_eq!(
        out["candidates"][0]["intent"], "withdrawal.failed",
        "{out:?}"
    );
    assert_eq!(out["secrets"].as_array().map(Vec::len), Some(0), "{out:?}");
}

#[test]
fn an_english_withdrawal_question_is_answered_in_english() {
    let out = ask_json("my withdrawal failed");
    assert_eq!(out["decision"], "answer", "{out:?}");
    assert_eq!(out["intent"], "withdrawal.failed", "{out:?}");
    assert_eq!(out["language"], "en", "{out:?}");
    let reply = out["reply"].as_str().unwrap_or_default();
    assert!(!has_cjk(reply), "reply is not English: {reply}");
    assert!(reply.to_lowercase().contains("withdraw"), "reply: {reply}");
}

#[test]
fn out_of_scope_messages_are_not_answered_in_either_language() {
    for text in ["今天天气怎么样", "write me a poem about cats"] {
        let out = ask_json(text);
        assert_ne!(out["decision"], "answer", "{text:?} was answered: {out:?}");
    }
}

#[test]
fn a_seed_phrase_is_reported_as_a_secret_and_never_echoed() {
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let run = kefu(["ask", "--json", &format!("my seed is {phrase}")], None);
    let out = one_json_object(&run);
    let secrets = out["secrets"].as_array().expect("secrets is an array");
    assert!(
        secrets
            .iter()
            .any(|s| s["kind"] == "seed_phrase" && s["words"] == 12),
        "no 12-word seed_phrase in {secrets:?}"
    );
    let reply = out["reply"]
        .as_str()
        .expect("reply is a string")
        .to_lowercase();
    assert!(
        !reply.contains("abandon"),
        "the reply repeats the seed words: {reply}"
    );
    // Nothing the binary prints may carry the phrase ("about" alone is an ordinary English word).
    for stream in [&run.stdout, &run.stderr] {
        assert!(
            !stream.contains("abandon abandon"),
            "the seed phrase was echoed: {run:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// eval

#[test]
fn eval_json_prints_one_object_with_the_contract_metrics() {
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", SMALL_CASES)]);
    let run = eval(
        &path.join("kb.toml"),
        &path.join("cases.jsonl"),
        &[OsStr::new("--json")],
    );
    let r = one_json_object(&run);
    let lines = SMALL_CASES.lines().count();
    assert_eq!(r["cases"].as_u64(), Some(lines as u64), "{r:?}");
    let top1 = unit(&r["top1_accuracy"]);
    unit(&r["resolved_rate"]);
    unit(&r["wrong_answer_rate"]);
    unit(&r["oos_recall"]);
    // A KB with Chinese examples: both word-vector tables are among the features.
    assert_eq!(r["word_vectors"], true, "{r:?}");
    assert_eq!(r["chinese_word_vectors"], true, "{r:?}");
    // The cases are the KB's own examples: a working engine ranks most of them first.
    assert!(
        top1 >= 0.5,
        "top-1 accuracy {top1} on the training examples themselves"
    );
    let (p50, p99) = (
        r["p50_us"].as_f64().expect("p50_us"),
        r["p99_us"].as_f64().expect("p99_us"),
    );
    assert!(0.0 < p50 && p50 <= p99, "p50 {p50} µs, p99 {p99} µs");
}

#[test]
fn eval_passes_time_each_case_several_times_and_change_no_figure() {
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", SMALL_CASES)]);
    let (kb, cases) = (path.join("kb.toml"), path.join("cases.jsonl"));
    let once = one_json_object(&eval(&kb, &cases, &[OsStr::new("--json")]));
    let thrice = one_json_object(&eval(
        &kb,
        &cases,
        &[
            OsStr::new("--json"),
            OsStr::new("--passes"),
            OsStr::new("3"),
        ],
    ));
    assert_eq!(once["timing_passes"].as_u64(), Some(1), "{once:?}");
    assert_eq!(thrice["timing_passes"].as_u64(), Some(3), "{thrice:?}");
    for field in [
        "cases",
        "top1_accuracy",
        "resolved_rate",
        "wrong_answer_rate",
        "oos_recall",
        "answer_rate",
        "clarify_rate",
        "escalate_rate",
    ] {
        assert_eq!(once[field], thrice[field], "{field}");
    }
    let (p50, p99) = (
        thrice["p50_us"].as_f64().expect("p50_us"),
        thrice["p99_us"].as_f64().expect("p99_us"),
    );
    assert!(0.0 < p50 && p50 <= p99, "p50 {p50} µs, p99 {p99} µs");
    let table = eval(&kb, &cases, &[OsStr::new("--passes"), OsStr::new("2")]);
    assert_eq!(table.code, 0, "{table:#?}");
    assert!(
        table.stdout.contains("fastest of 2 passes"),
        "{}",
        table.stdout
    );
    let zero = eval(&kb, &cases, &[OsStr::new("--passes"), OsStr::new("0")]);
    assert_eq!(zero.code, 2, "{zero:#?}");
    assert!(zero.stderr.contains("--passes"), "{zero:#?}");
}

#[test]
fn eval_without_json_prints_a_readable_table_matching_the_json() {
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", SMALL_CASES)]);
    let (kb, cases) = (path.join("kb.toml"), path.join("cases.jsonl"));
    let r = one_json_object(&eval(&kb, &cases, &[OsStr::new("--json")]));
    let run = eval(&kb, &cases, &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let table = run.stdout.to_lowercase();
    assert!(table.contains("top-1"), "no top-1 row: {}", run.stdout);
    assert!(
        serde_json::from_str::<Value>(run.stdout.trim()).is_err(),
        "the table is not JSON"
    );
    let top1 = format!("{:.1}", r["top1_accuracy"].as_f64().unwrap_or(-1.0) * 100.0);
    assert!(
        run.stdout.contains(&top1),
        "the table should show top-1 {top1} %: {}",
        run.stdout
    );
    if r.get("confusions")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty())
    {
        assert!(
            table.contains("most confused"),
            "confusions but no \"most confused\": {}",
            run.stdout
        );
    }
}

#[test]
fn eval_details_writes_one_line_per_case_agreeing_with_the_summary() {
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", SMALL_CASES)]);
    let details = path.join("details.jsonl");
    let run = eval(
        &path.join("kb.toml"),
        &path.join("cases.jsonl"),
        &[
            OsStr::new("--json"),
            OsStr::new("--details"),
            details.as_os_str(),
        ],
    );
    let r = one_json_object(&run);
    let text = std::fs::read_to_string(&details).expect("details file written");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let cases: Vec<Value> = SMALL_CASES
        .lines()
        .map(|l| serde_json::from_str(l).expect("case"))
        .collect();
    assert_eq!(rows.len(), cases.len());
    for (row, case) in rows.iter().zip(&cases) {
        assert_eq!(row["text"], case["text"], "{row}");
        assert_eq!(row["intent"], case["intent"], "{row}");
        let decision = row["decision"].as_str().expect("decision");
        assert!(
            ["answer", "clarify", "escalate"].contains(&decision),
            "{row}"
        );
        assert!(
            row["ok"].is_boolean() && row["candidates"].is_array(),
            "{row}"
        );
    }
    // The in-scope rows whose first candidate is the gold intent give the summary's top-1.
    let in_scope: Vec<&Value> = rows.iter().filter(|r| !r["intent"].is_null()).collect();
    let top1 = in_scope
        .iter()
        .filter(|r| r["candidates"][0]["intent"] == r["intent"])
        .count() as f64
        / in_scope.len() as f64;
    let reported = r["top1_accuracy"].as_f64().expect("top1");
    assert!((top1 - reported).abs() < 1e-3, "{top1} vs {reported}");
}

#[test]
fn eval_rejects_a_case_with_an_unknown_intent_naming_the_file_and_line() {
    let cases = format!(
        "{}{}",
        "{\"text\": \"提币失败\", \"intent\": \"withdrawal.failed\"}\n",
        "{\"text\": \"hi\", \"intent\": \"no.such_intent\"}\n"
    );
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", &cases)]);
    let file = path.join("cases.jsonl");
    let run = eval(&path.join("kb.toml"), &file, &[OsStr::new("--json")]);
    assert_bad_input_at(&run, &file, 2);
    assert!(run.stderr.contains("no.such_intent"), "{run:#?}");
}

#[test]
fn eval_rejects_a_malformed_json_line_naming_the_line() {
    let cases = "{\"text\": \"提币失败\", \"intent\": \"withdrawal.failed\"}\n{\"text\": \"my deposit\", \"intent\": \"deposit.missing\"}\n{\"text\": \"oops\", \"intent\": \n";
    let (_dir, path) = dir_with(&[("kb.toml", SMALL_KB), ("cases.jsonl", cases)]);
    let file = path.join("cases.jsonl");
    // An earlier run's details file is left as it was.
    let details = path.join("details.jsonl");
    std::fs::write(&details, "earlier\n").expect("write details");
    let run = eval(
        &path.join("kb.toml"),
        &file,
        &[OsStr::new("--details"), details.as_os_str()],
    );
    assert_bad_input_at(&run, &file, 3);
    assert_eq!(
        std::fs::read_to_string(&details).expect("details"),
        "earlier\n"
    );
}

// ---------------------------------------------------------------------------------------------
// kb check

#[test]
fn kb_check_says_the_default_kb_is_valid_and_reports_per_intent_accuracy() {
    let run = kefu(["kb", "check"], None);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("valid"), "{run:#?}");
    // Per-intent held-out accuracy: lines with a percentage and an intent id such as `account.locked`.
    let per_intent = run.stdout.lines().filter(|l| {
        let id = l.split_whitespace().last().unwrap_or_default();
        l.contains('%')
            && id.contains('.')
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    });
    assert!(
        per_intent.count() >= 3,
        "no per-intent accuracy lines: {}",
        run.stdout
    );
}

#[test]
fn kb_check_json_on_the_default_kb_says_valid_true() {
    let run = kefu(["kb", "check", "config/kb", "--json"], None);
    let out = one_json_object(&run);
    assert_eq!(out["valid"], Value::Bool(true), "{out:?}");
}

#[test]
fn kb_check_accepts_the_small_test_kb() {
    let (_dir, file, run) = check_kb_file(SMALL_KB);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("valid"), "{run:#?}");
    assert!(
        run.stdout.contains(&file.display().to_string()),
        "names the KB: {run:#?}"
    );
}

#[test]
fn kb_check_reports_bad_toml_syntax_at_its_line() {
    let kb = format!("{TWO_INTENTS}\n[[intent]]\nid = \"b\n");
    let (_dir, file, run) = check_kb_file(&kb);
    assert_bad_input_at(&run, &file, 8);
}

#[test]
fn kb_check_reports_a_duplicate_id_at_the_second_definition() {
    let kb = format!("{TWO_INTENTS}\n{TWO_INTENTS}");
    let (_dir, file, run) = check_kb_file(&kb);
    assert_bad_input_at(&run, &file, 8);
    assert!(run.stderr.contains("duplicate"), "{run:#?}");
    assert!(
        run.stderr.contains(&format!("{}:2", file.display())),
        "should point at the first definition: {run:#?}"
    );
}

#[test]
fn kb_check_reports_a_duplicate_id_across_files_naming_both() {
    let second = format!("# more intents\n{TWO_INTENTS}");
    let (_dir, path) = dir_with(&[("10-first.toml", TWO_INTENTS), ("20-second.toml", &second)]);
    let run = kefu(
        [OsStr::new("kb"), OsStr::new("check"), path.as_os_str()],
        None,
    );
    assert_bad_input_at(&run, &path.join("20-second.toml"), 3);
    assert!(
        run.stderr.contains("10-first.toml:2"),
        "should mention the first definition: {run:#?}"
    );
}

#[test]
fn kb_check_reports_an_unknown_related_id_at_its_line() {
    let kb = format!("{TWO_INTENTS}related = [\"no.such_intent\"]\n");
    let (_dir, file, run) = check_kb_file(&kb);
    assert_bad_input_at(&run, &file, 6);
    assert!(run.stderr.contains("no.such_intent"), "{run:#?}");
}

#[test]
fn kb_check_reports_empty_examples_at_their_line() {
    let kb = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [] }\nanswer = { en = \"Like this.\" }\n";
    let (_dir, file, run) = check_kb_file(kb);
    assert_bad_input_at(&run, &file, 4);
}

#[test]
fn kb_check_reports_an_unknown_priority_at_its_line() {
    let kb = format!("{TWO_INTENTS}priority = \"asap\"\n");
    let (_dir, file, run) = check_kb_file(&kb);
    assert_bad_input_at(&run, &file, 6);
    assert!(run.stderr.contains("asap"), "{run:#?}");
}

#[test]
fn kb_check_reports_a_missing_answer() {
    let kb = format!(
        "{TWO_INTENTS}\n[[intent]]\nid = \"b\"\ntitle = {{ en = \"B\" }}\nexamples = {{ en = [\"how do I do b\"] }}\n"
    );
    let (_dir, file, run) = check_kb_file(&kb);
    // Reported at the `[[intent]]` header of the table that lacks it.
    assert_bad_input_at(&run, &file, 7);
    assert!(run.stderr.contains("answer"), "{run:#?}");
}

#[test]
fn kb_check_reports_an_unknown_key_by_name_at_its_line() {
    let kb = "[[intent]]\nid = \"a\"\ntitle = { en = \"A\" }\nexamples = { en = [\"how do I do a\"] }\nanswer = { en = \"Like this.\" }\nanwser = { en = \"typo\" }\n";
    let (_dir, file, run) = check_kb_file(kb);
    assert_bad_input_at(&run, &file, 6);
    assert!(run.stderr.contains("anwser"), "{run:#?}");
}

#[test]
fn kb_check_rejects_a_directory_without_toml_files() {
    let (_dir, path) = dir_with(&[("README.md", "not a KB\n"), ("eval.jsonl", SMALL_CASES)]);
    let run = kefu(
        [OsStr::new("kb"), OsStr::new("check"), path.as_os_str()],
        None,
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains(&path.display().to_string()), "{run:#?}");
    assert!(run.stderr.contains("fix:"), "{run:#?}");
}

#[test]
fn kb_check_rejects_a_nonexistent_path() {
    let (_dir, path) = dir_with(&[]);
    let missing = path.join("no-such-kb");
    let run = kefu(
        [OsStr::new("kb"), OsStr::new("check"), missing.as_os_str()],
        None,
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(&missing.display().to_string()),
        "{run:#?}"
    );
    assert!(run.stderr.contains("fix:"), "{run:#?}");
}

// ---------------------------------------------------------------------------------------------
// usage (the terminal chat is tested in tests/conversation.rs, each test with its own database)

#[test]
fn eval_without_cases_is_a_usage_error() {
    let run = kefu(["eval"], None);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--cases"), "{run:#?}");
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    let run = kefu(["frobnicate"], None);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stdout.trim().is_empty(), "{run:#?}");
}

/// Runs `kefu ask hello` with `nlu.encoder = "rust-bert"` and the given model directory.
fn ask_with_encoder(model_dir: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["ask", "hello"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KEFU_ENV")
        .env_remove("KEFU_CONFIG_DIR")
        .env("KEFU__NLU__ENCODER", "rust-bert")
        .env("KEFU__NLU__MODEL_DIR", model_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run kefu");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[cfg(not(feature = "rust-bert"))]
#[test]
fn the_rust_bert_encoder_in_a_build_without_it_says_how_to_rebuild() {
    let run = ask_with_encoder(Path::new("models/all-MiniLM-L6-v2"));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--features rust-bert"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[cfg(feature = "rust-bert")]
#[test]
fn a_missing_encoder_model_names_the_directory_and_the_fetch_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-model-here");
    let run = ask_with_encoder(&missing);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&missing.display().to_string()),
        "{run:?}"
    );
    assert!(run.stderr.contains("models/fetch-minilm.sh"), "{run:?}");
}
