//! Per-message decision time and KB training time.
//!
//! `cargo bench -p kefu-nlu` measures the default KB (config/kb). When `KEFU_BENCH_KB` names a
//! larger KB (for example the CLINC150 KB made by `shared/bench/make_cases.py`), it is measured
//! too, with `KEFU_BENCH_CASES` (a cases file) supplying the messages.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use kefu_nlu::concepts::Concepts;
use kefu_nlu::engine::Engine;
use kefu_nlu::kb::Vocabulary;
use kefu_nlu::normalize::normalize;
use kefu_nlu::segment::Tokenizer;

fn messages(cases: Option<&Path>) -> Vec<String> {
    let fallback = [
        "USDT提不出来",
        "2FA丢了怎么办",
        "withdrawal pending 3h??",
        "帳號被凍結了",
        "今天天气怎么样",
        "how do I contact support",
    ];
    cases
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["text"].as_str().map(str::to_owned))
                .take(500)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| fallback.iter().map(|s| (*s).to_owned()).collect())
}

fn bench_kb(c: &mut Criterion, name: &str, kb_path: &Path, cases: Option<&Path>) {
    let Ok(kb) = kefu_nlu::kb::load(kb_path) else {
        eprintln!("skipping {name}: cannot load {}", kb_path.display());
        return;
    };
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.bench_function("train", |b| b.iter(|| Engine::train(black_box(kb.clone()))));
    group.finish();
    let engine = Engine::train(kb);
    let msgs = messages(cases);
    // The support lexicon's share of a decision: finding the concepts a message mentions.
    let lexicon = Concepts::builtin();
    let tokenizer = Tokenizer::new(&Vocabulary::default());
    let prepared: Vec<(String, Vec<String>)> = msgs
        .iter()
        .map(|m| {
            let n = normalize(m);
            let t = tokenizer.tokens(&n);
            (n, t)
        })
        .collect();
    if let Some(lexicon) = lexicon {
        let mut k = 0;
        c.bench_function(&format!("{name}/lexicon"), |b| {
            b.iter(|| {
                k = (k + 1) % prepared.len();
                let (n, t) = &prepared[k];
                black_box(lexicon.find(black_box(n), black_box(t)))
            })
        });
    }
    let mut i = 0;
    c.bench_function(&format!("{name}/decide"), |b| {
        b.iter(|| {
            i = (i + 1) % msgs.len();
            black_box(engine.decide(black_box(&msgs[i])))
        })
    });
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let default_kb = root.join("config/kb");
    let default_cases = root.join("config/kb/eval.jsonl");
    bench_kb(c, "default_kb", &default_kb, Some(&default_cases));
    if let Some(kb) = std::env::var_os("KEFU_BENCH_KB").map(PathBuf::from) {
        let cases = std::env::var_os("KEFU_BENCH_CASES").map(PathBuf::from);
        bench_kb(c, "custom_kb", &kb, cases.as_deref());
    }
}

criterion_group!(classify, benches);
criterion_main!(classify);
