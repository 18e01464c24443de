//! The transformer encoder (feature `rust-bert`). Needs libtorch 1.13 and the model fetched by
//! `models/fetch-minilm.sh` (or KEFU_MODEL_DIR pointing at one).
#![cfg(feature = "rust-bert")]
// clippy.toml allows unwrap/expect inside #[test] functions only; the helpers here are test code too.
#![allow(
    clippy::expect_used,
    reason = "test helpers: a failed expectation is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kefu_nlu::encoder::{Encoder, RustBertEncoder};
use kefu_nlu::engine::{DecisionKind, Engine, EngineOptions};

fn model_dir() -> PathBuf {
    std::env::var_os("KEFU_MODEL_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
        PathBuf::from,
    )
}

fn encoder() -> RustBertEncoder {
    match RustBertEncoder::load(&model_dir()) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn the_model_loads_and_gives_unit_vectors() {
    let e = encoder();
    assert_eq!(e.dim(), 384);
    let v = e
        .encode(&["my card was stolen", "提币失败"])
        .expect("encodes");
    assert_eq!(v.len(), 2);
    for x in &v {
        let norm = cosine(x, x).sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }
}

#[test]
fn an_english_paraphrase_is_closer_than_an_unrelated_message() {
    let e = encoder();
    let v = e
        .encode(&[
            "I lost my card",
            "my card has gone missing",
            "what is the exchange rate for euros",
        ])
        .expect("encodes");
    let paraphrase = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(
        paraphrase > unrelated + 0.2,
        "paraphrase {paraphrase}, unrelated {unrelated}"
    );
}

fn default_kb() -> kefu_nlu::kb::KnowledgeBase {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
    kefu_nlu::kb::load(&dir).expect("the default KB loads")
}

#[test]
fn with_the_encoder_chinese_cases_stay_right_and_english_still_classifies() {
    let kb = default_kb();
    let lexical = Engine::train(kb.clone());
    let fused = Engine::train_with_encoder(kb, EngineOptions::default(), Arc::new(encoder()))
        .expect("the KB encodes");
    assert!(fused.encoder().is_some());
    // Chinese text gets no embedding: the fused engine must still get it right.
    let d = fused.decide("提币一直没到账怎么办");
    assert_eq!(
        d.intent,
        lexical.decide("提币一直没到账怎么办").intent,
        "{d:?}"
    );
    let d = fused.decide("我的账户被冻结了");
    assert_eq!(d.intent.as_deref(), Some("account.locked"), "{d:?}");
    assert_ne!(d.decision, DecisionKind::Escalate, "{d:?}");
    // English goes through the encoder too.
    let d = fused.decide("I can no longer remember my password");
    assert_eq!(
        d.candidates.first().map(|c| c.intent.as_str()),
        Some("account.password_reset"),
        "{d:?}"
    );
}

#[test]
fn a_missing_model_directory_names_itself_and_the_fetch_script() {
    let dir = std::env::temp_dir().join(format!("kefu-no-model-{}", std::process::id()));
    let err = RustBertEncoder::load(&dir).expect_err("no such directory");
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("models/fetch-minilm.sh"), "{msg}");
}

#[test]
fn a_broken_model_is_an_error_not_a_crash() {
    let src = model_dir();
    let dir = std::env::temp_dir().join(format!("kefu-broken-model-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("temp dir");
    for f in [
        "config.json",
        "modules.json",
        "vocab.txt",
        "tokenizer_config.json",
        "sentence_bert_config.json",
        "special_tokens_map.json",
        "1_Pooling/config.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).expect("copy model file");
    }
    let err = RustBertEncoder::load(&dir).expect_err("no weights");
    assert!(err.to_string().contains("missing rust_model.ot"), "{err}");
    std::fs::write(dir.join("rust_model.ot"), b"not a tensor file").expect("write");
    let err = RustBertEncoder::load(&dir).expect_err("garbage weights");
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("models/fetch-minilm.sh"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}
