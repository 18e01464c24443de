//! `kefu kb check`: validate a KB and show how well the engine separates its intents, measured on
//! held-out folds of the KB's own examples.

use std::path::Path;

use super::report::{self, ReportCase, ReportInput};
use super::{Failure, emit, load_engine, outln};

pub fn check(kb: &Path, json: bool, html: Option<&Path>) -> Result<(), Failure> {
    let mut out = String::new();
    let loaded = load_engine(kb)?;
    let engine = &loaded.engine;
    let v = engine.validation();
    let policy = engine.policy();
    if let Some(path) = html {
        // Held-out examples of an intent the fold left out stand for messages the KB does not
        // cover: the right outcome for them is not to answer, as for out-of-scope examples.
        let cases: Vec<ReportCase> = v
            .held_out
            .iter()
            .map(|h| ReportCase {
                text: h.text.clone(),
                gold: h.intent.clone(),
                candidates: h.candidates.clone(),
                out_of_scope: h.out_of_scope,
                decision: policy.kind(
                    h.candidates.first().map(|c| c.score),
                    h.candidates.get(1).map(|c| c.score),
                    h.out_of_scope,
                ),
                language: engine.language_of(&h.text),
            })
            .collect();
        let folds = if v.folds == 1 {
            "one 80/20 split".to_owned()
        } else {
            format!("{} folds", v.folds)
        };
        report::write(
            path,
            &ReportInput {
                title: format!("kefu kb check — {}", kb.display()),
                subtitle: format!(
                    "{} held-out predictions of the KB's own examples ({folds}; examples of the intents a fold left out count as out of scope); {} intents, {} examples",
                    cases.len(),
                    engine.kb().intents.len(),
                    engine.kb().example_count()
                ),
                cases: &cases,
                policy,
                intents: engine.kb().intents.iter().map(|i| i.id.clone()).collect(),
            },
        )?;
    }
    if json {
        let report = serde_json::json!({
            "valid": true,
            "intents": engine.kb().intents.len(),
            "examples": engine.kb().example_count(),
            "validation": v,
            "policy": policy,
            "max_wrong_answer_rate": engine.kb().meta.max_wrong_answer_rate,
        });
        outln!(out, "{report}");
        return emit(&out);
    }
    let kbv = engine.kb();
    outln!(
        out,
        "{}: valid — {} intents, {} examples",
        kb.display(),
        kbv.intents.len(),
        kbv.example_count()
    );
    let folds = if v.folds == 1 {
        "one 80/20 split".to_owned()
    } else {
        format!("{}-fold", v.folds)
    };
    outln!(out, "held-out ({folds}, {} examples):", v.examples);
    outln!(out, "  top-1 accuracy  {:.1} %", v.top1_accuracy * 100.0);
    outln!(out, "  resolved        {:.1} %", v.resolved_rate * 100.0);
    match kbv.meta.max_wrong_answer_rate {
        Some(budget) => outln!(
            out,
            "  wrong answers   {:.1} % (budget {:.1} %: [meta] max_wrong_answer_rate{})",
            v.wrong_answer_rate * 100.0,
            budget * 100.0,
            if v.wrong_answer_rate > budget + 1e-6 {
                "; not kept even at the strictest threshold"
            } else {
                ""
            }
        ),
        None => outln!(
            out,
            "  wrong answers   {:.1} %",
            v.wrong_answer_rate * 100.0
        ),
    }
    if let Some(r) = v.oos_recall {
        outln!(out, "  out-of-scope kept {:.1} %", r * 100.0);
    }
    if let Some(r) = v.unseen_topic_recall {
        outln!(
            out,
            "  unseen topics kept {:.1} % (intents left out of a fold)",
            r * 100.0
        );
    }
    let ratio = if policy.clarify_ratio > 0.0 {
        format!(
            ", the second is ≥ {:.0} % of the first",
            policy.clarify_ratio * 100.0
        )
    } else {
        String::new()
    };
    outln!(
        out,
        "policy: answer ≥ {:.3}; else ask \"A or B?\" when the two best reach {:.3}{ratio} and out-of-scope is less likely than both; else hand over; temperature {}",
        policy.answer_threshold,
        policy.clarify_threshold,
        policy.temperature
    );
    let mut weakest: Vec<&(String, usize, usize)> =
        v.per_intent.iter().filter(|(_, n, _)| *n > 0).collect();
    weakest.sort_by(|a, b| {
        (a.2 as f32 / a.1 as f32)
            .total_cmp(&(b.2 as f32 / b.1 as f32))
            .then_with(|| a.0.cmp(&b.0))
    });
    outln!(out, "\nper intent, weakest first (held-out top-1):");
    for (id, n, ok) in weakest.iter().take(15) {
        outln!(
            out,
            "  {:>5.1} %  {ok:>3}/{n:<3} {id}",
            *ok as f32 * 100.0 / *n as f32
        );
    }
    if weakest.len() > 15 {
        outln!(out, "  … {} more", weakest.len() - 15);
    }
    if !v.confusions.is_empty() {
        outln!(out, "\nmost confusable pairs (example of → taken for):");
        for (g, b, n) in v.confusions.iter().take(10) {
            outln!(out, "  {n:>4}  {g} → {b}");
        }
    }
    emit(&out)
}

/// `kefu kb misses`: read straight from the database, no KB or model needed.
pub fn misses(settings: &crate::settings::Settings, limit: i64, json: bool) -> Result<(), Failure> {
    use anyhow::Context as _;
    super::runtime()?.block_on(async {
        let store = kefu_store::Store::connect(&settings.database.url)
            .await
            .context("opening the database (database.url)")
            .map_err(Failure::Other)?;
        let misses = store
            .misses(limit)
            .await
            .map_err(|e| Failure::Other(e.into()))?;
        let mut out = String::new();
        if json {
            let rows: Vec<_> = misses
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "text": m.text,
                        "count": m.count,
                        "last_at": m.last_at.to_rfc3339(),
                        "language": m.language,
                        "intent_guess": m.intent_guess,
                    })
                })
                .collect();
            outln!(out, "{}", serde_json::json!(rows));
        } else if misses.is_empty() {
            outln!(out, "no unanswered questions recorded");
        } else {
            outln!(
                out,
                "{:>5}  {:<19}  {:<28}  text",
                "count",
                "last seen",
                "closest intent"
            );
            for m in &misses {
                outln!(
                    out,
                    "{:>5}  {:<19}  {:<28}  {}",
                    m.count,
                    m.last_at.format("%Y-%m-%d %H:%M"),
                    m.intent_guess.as_deref().unwrap_or("-"),
                    m.text
                );
            }
        }
        emit(&out)
    })
}
