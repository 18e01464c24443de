//! `kefu eval`: score the NLU on labelled cases with the metrics of `shared/contracts/kb-format.md`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use kefu_nlu::engine::DecisionKind;
use serde::{Deserialize, Serialize};

use super::report::{self, ReportCase, ReportInput, Slice};
use super::{Failure, emit, load_engine, outln, peak_rss_mib};

#[derive(Deserialize)]
struct Case {
    text: String,
    intent: Option<String>,
}

/// The figures `kefu eval --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub cases: usize,
    pub top1_accuracy: f64,
    pub resolved_rate: f64,
    pub wrong_answer_rate: f64,
    pub oos_recall: Option<f64>,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Passes over the cases that timed each decision (`--passes`); a case's time is its fastest.
    pub timing_passes: usize,
    /// In-scope cases.
    pub in_scope: usize,
    /// Out-of-scope cases.
    pub out_of_scope: usize,
    /// All cases answered with some intent.
    pub answer_rate: f64,
    /// All cases where the bot asked "did you mean A or B?".
    pub clarify_rate: f64,
    /// All cases handed to a human.
    pub escalate_rate: f64,
    /// Out-of-scope cases that were clarified rather than escalated (they count as not answered).
    pub oos_clarified: Option<f64>,
    pub intents: usize,
    pub kb_examples: usize,
    pub kb_load_ms: f64,
    pub train_ms: f64,
    pub peak_rss_mib: Option<f64>,
    /// The sentence encoder in use (`nlu.encoder`): "none" or "rust-bert".
    pub encoder: &'static str,
    /// Whether static word vectors were among the features (`nlu.word_vectors`).
    pub word_vectors: bool,
    /// Whether the Chinese word-vector table was among them (`nlu.chinese_word_vectors`, and a
    /// KB with Chinese text).
    pub chinese_word_vectors: bool,
    /// Whether the built-in support lexicon's concepts were among the features (`nlu.lexicon`).
    pub lexicon: bool,
    /// Whether a Chinese thesaurus's classes were among the features (`nlu.thesaurus`).
    pub thesaurus: bool,
    pub answer_threshold: f32,
    pub clarify_threshold: f32,
    pub temperature: f32,
    /// Most confused (gold, best-ranked) pairs, most frequent first.
    pub confusions: Vec<(String, String, usize)>,
    /// Figures by message length in characters.
    pub by_length: Vec<Slice>,
    /// Figures by detected language.
    pub by_language: Vec<Slice>,
}

fn read_cases(path: &Path, known: &dyn Fn(&str) -> bool) -> Result<Vec<Case>, Failure> {
    let file = std::fs::File::open(path)
        .with_context(|| {
            format!(
                "cannot open cases file {}; fix: check the path",
                path.display()
            )
        })
        .map_err(Failure::BadInput)?;
    let mut cases = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line
            .with_context(|| format!("reading {}", path.display()))
            .map_err(Failure::BadInput)?;
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(&line).map_err(|e| {
            Failure::BadInput(anyhow!(
                "{}:{}: {e}; fix: each line must be a JSON object like {{\"text\": \"…\", \"intent\": \"id\" or null}}",
                path.display(),
                n + 1
            ))
        })?;
        if let Some(id) = &case.intent
            && !known(id)
        {
            return Err(Failure::BadInput(anyhow!(
                "{}:{}: intent {id:?} is not in the knowledge base; fix: use an intent id from the KB, or null for out-of-scope",
                path.display(),
                n + 1
            )));
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(Failure::BadInput(anyhow!(
            "{}: no cases; fix: add JSON Lines cases",
            path.display()
        )));
    }
    Ok(cases)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One case's outcome, as `kefu eval --details FILE` writes it (one JSON object a line).
#[derive(Serialize)]
struct Detail<'a> {
    text: &'a str,
    /// The gold intent (null: out of scope).
    intent: Option<&'a str>,
    /// answer | clarify | escalate
    decision: DecisionKind,
    /// The intent answered with (answer), the first option (clarify), the best guess (escalate).
    predicted: Option<&'a str>,
    confidence: f32,
    /// The best-ranked intents with their calibrated scores, best first.
    candidates: &'a [kefu_nlu::engine::Candidate],
    out_of_scope: f32,
    /// The decision's time in microseconds.
    us: f64,
    /// Whether the decision was right: in scope → answered or clarified with the gold intent;
    /// out of scope → not answered.
    ok: bool,
}

/// Scores the engine on the cases; with `details`, also writes each case's outcome there; with
/// `html`, the HTML report.
pub fn evaluate(
    kb: &Path,
    cases_path: &Path,
    details: Option<&Path>,
    html: Option<&Path>,
    passes: usize,
) -> Result<Report, Failure> {
    let passes = passes.max(1);
    let loaded = load_engine(kb)?;
    let engine = &loaded.engine;
    let cases = read_cases(cases_path, &|id| engine.kb().intent(id).is_some())?;
    // Created only once the KB and the cases are known good, so a bad run leaves an earlier
    // details file as it was.
    let mut details_out = match details {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the details file {}", path.display()))
                .map_err(Failure::Other)?,
        )),
        None => None,
    };
    let bar = if cases.len() >= 1000 {
        ProgressBar::new((cases.len() * passes) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cases {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut micros = Vec::with_capacity(cases.len());
    let (mut in_scope, mut top1, mut resolved, mut wrong, mut oos, mut oos_kept, mut oos_clarified) =
        (0, 0, 0, 0, 0, 0, 0);
    let (mut answered, mut clarified, mut escalated) = (0, 0, 0);
    let mut confusions: HashMap<(String, String), usize> = HashMap::new();
    let mut judged = Vec::with_capacity(cases.len());
    // Extra timing passes first: a case's time is its fastest pass, which leaves out what the
    // machine adds at random (an interrupt, the other core's work) and a first call's warm-up.
    // Each pass runs through every case in order, so the caches hold what the other cases left
    // there, as they do under real traffic, not the same message's rows again.
    let mut fastest = vec![f64::INFINITY; cases.len()];
    for _ in 1..passes {
        for (case, best) in cases.iter().zip(&mut fastest) {
            let t = Instant::now();
            let d = engine.decide(&case.text);
            *best = best.min(t.elapsed().as_secs_f64() * 1e6);
            drop(d);
            bar.inc(1);
        }
    }
    for (case, earlier) in cases.iter().zip(&fastest) {
        let t = Instant::now();
        let d = engine.decide(&case.text);
        micros.push(earlier.min(t.elapsed().as_secs_f64() * 1e6));
        bar.inc(1);
        let best = d.candidates.first().map(|c| c.intent.as_str());
        match d.decision {
            DecisionKind::Answer => answered += 1,
            DecisionKind::Clarify => clarified += 1,
            DecisionKind::Escalate => escalated += 1,
        }
        let ok = match &case.intent {
            Some(gold) => match d.decision {
                DecisionKind::Answer => d.intent.as_deref() == Some(gold.as_str()),
                DecisionKind::Clarify => d.candidates.iter().take(2).any(|c| &c.intent == gold),
                DecisionKind::Escalate => false,
            },
            None => d.decision != DecisionKind::Answer,
        };
        if let Some(out) = details_out.as_mut() {
            let line = serde_json::to_string(&Detail {
                text: &case.text,
                intent: case.intent.as_deref(),
                decision: d.decision,
                predicted: d.intent.as_deref(),
                confidence: d.confidence,
                candidates: &d.candidates,
                out_of_scope: d.out_of_scope,
                us: micros.last().copied().unwrap_or_default(),
                ok,
            })
            .map_err(|e| Failure::Other(e.into()))?;
            writeln!(out, "{line}")
                .context("cannot write the details file")
                .map_err(Failure::Other)?;
        }
        judged.push(ReportCase {
            text: case.text.clone(),
            gold: case.intent.clone(),
            candidates: d.candidates.clone(),
            out_of_scope: d.out_of_scope,
            decision: d.decision,
            language: d.language.clone(),
        });
        match &case.intent {
            Some(gold) => {
                in_scope += 1;
                if best == Some(gold.as_str()) {
                    top1 += 1;
                } else if let Some(b) = best {
                    *confusions.entry((gold.clone(), b.to_owned())).or_default() += 1;
                }
                resolved += usize::from(ok);
                wrong += usize::from(
                    d.decision == DecisionKind::Answer
                        && d.intent.as_deref() != Some(gold.as_str()),
                );
            }
            None => {
                oos += 1;
                match d.decision {
                    DecisionKind::Answer => wrong += 1,
                    DecisionKind::Clarify => {
                        oos_kept += 1;
                        oos_clarified += 1;
                    }
                    DecisionKind::Escalate => oos_kept += 1,
                }
            }
        }
    }
    bar.finish_and_clear();
    if let Some(mut out) = details_out {
        out.flush()
            .context("cannot write the details file")
            .map_err(Failure::Other)?;
    }
    micros.sort_by(f64::total_cmp);
    let mut confusions: Vec<(String, String, usize)> = confusions
        .into_iter()
        .map(|((g, b), n)| (g, b, n))
        .collect();
    confusions.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then_with(|| a.0.cmp(&b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    confusions.truncate(10);
    let n = cases.len() as f64;
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let policy = engine.policy();
    if let Some(path) = html {
        report::write(
            path,
            &ReportInput {
                title: format!("kefu eval — {}", kb.display()),
                subtitle: format!(
                    "{} cases from {}; KB: {} intents, {} examples",
                    cases.len(),
                    cases_path.display(),
                    engine.kb().intents.len(),
                    engine.kb().example_count()
                ),
                cases: &judged,
                policy,
                intents: engine.kb().intents.iter().map(|i| i.id.clone()).collect(),
            },
        )?;
    }
    Ok(Report {
        cases: cases.len(),
        top1_accuracy: round(top1 as f64 / in_scope.max(1) as f64),
        resolved_rate: round(resolved as f64 / in_scope.max(1) as f64),
        wrong_answer_rate: round(wrong as f64 / n),
        oos_recall: (oos > 0).then(|| round(oos_kept as f64 / oos as f64)),
        p50_us: (percentile(&micros, 0.50) * 10.0).round() / 10.0,
        p99_us: (percentile(&micros, 0.99) * 10.0).round() / 10.0,
        timing_passes: passes,
        in_scope,
        out_of_scope: oos,
        answer_rate: round(answered as f64 / n),
        clarify_rate: round(clarified as f64 / n),
        escalate_rate: round(escalated as f64 / n),
        oos_clarified: (oos > 0).then(|| round(oos_clarified as f64 / oos as f64)),
        intents: engine.kb().intents.len(),
        kb_examples: engine.kb().example_count(),
        kb_load_ms: (loaded.load.as_secs_f64() * 1e4).round() / 10.0,
        train_ms: (loaded.train.as_secs_f64() * 1e4).round() / 10.0,
        peak_rss_mib: peak_rss_mib().map(|m| (m * 10.0).round() / 10.0),
        encoder: if engine.encoder().is_some() {
            "rust-bert"
        } else {
            "none"
        },
        word_vectors: engine.uses_word_vectors(),
        chinese_word_vectors: engine.uses_chinese_word_vectors(),
        lexicon: engine.uses_lexicon(),
        thesaurus: engine.uses_thesaurus(),
        answer_threshold: policy.answer_threshold,
        clarify_threshold: policy.clarify_threshold,
        temperature: policy.temperature,
        confusions,
        by_length: report::by_length(&judged),
        by_language: report::by_language(&judged),
    })
}

pub fn run(
    kb: &Path,
    cases: &Path,
    json: bool,
    details: Option<&Path>,
    html: Option<&Path>,
    passes: usize,
) -> Result<(), Failure> {
    let mut out = String::new();
    let r = evaluate(kb, cases, details, html, passes)?;
    if json {
        outln!(
            out,
            "{}",
            serde_json::to_string(&r).map_err(|e| Failure::Other(e.into()))?
        );
        return emit(&out);
    }
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    outln!(
        out,
        "cases              {} ({} in scope, {} out of scope)",
        r.cases,
        r.in_scope,
        r.out_of_scope
    );
    outln!(out, "top-1 accuracy     {}", pct(r.top1_accuracy));
    outln!(out, "resolved           {}", pct(r.resolved_rate));
    outln!(out, "wrong answers      {}", pct(r.wrong_answer_rate));
    match r.oos_recall {
        Some(x) => outln!(out, "out-of-scope kept  {}", pct(x)),
        None => outln!(out, "out-of-scope kept  – (no out-of-scope cases)"),
    }
    outln!(
        out,
        "answered / clarified / escalated   {} / {} / {}",
        pct(r.answer_rate),
        pct(r.clarify_rate),
        pct(r.escalate_rate)
    );
    outln!(
        out,
        "latency            p50 {:.1} µs, p99 {:.1} µs{}",
        r.p50_us,
        r.p99_us,
        if r.timing_passes > 1 {
            format!(" (each case's fastest of {} passes)", r.timing_passes)
        } else {
            String::new()
        }
    );
    outln!(
        out,
        "KB                 {} intents, {} examples; load {:.0} ms, train {:.0} ms",
        r.intents,
        r.kb_examples,
        r.kb_load_ms,
        r.train_ms
    );
    if !r.word_vectors {
        outln!(out, "word vectors       off");
    }
    if !r.lexicon {
        outln!(out, "lexicon            off");
    }
    if !r.thesaurus {
        outln!(out, "thesaurus          off");
    }
    if r.encoder != "none" {
        outln!(out, "encoder            {}", r.encoder);
    }
    if let Some(m) = r.peak_rss_mib {
        outln!(out, "peak memory        {m:.0} MiB");
    }
    outln!(
        out,
        "policy             answer ≥ {:.3}, clarify ≥ {:.3}, temperature {}",
        r.answer_threshold,
        r.clarify_threshold,
        r.temperature
    );
    let slice_line = |s: &Slice| {
        let rate = |x: Option<f64>| x.map_or("–".to_owned(), |x| format!("{:.1} %", x * 100.0));
        format!(
            "  {:<12} {:>5} cases  top-1 {:>7}  resolved {:>7}  wrong answers {:.1} %",
            s.slice,
            s.cases,
            rate(s.top1_accuracy),
            rate(s.resolved_rate),
            s.wrong_answer_rate * 100.0
        )
    };
    outln!(out, "\nby length");
    for s in &r.by_length {
        outln!(out, "{}", slice_line(s));
    }
    outln!(out, "by language");
    for s in &r.by_language {
        outln!(out, "{}", slice_line(s));
    }
    if !r.confusions.is_empty() {
        outln!(out, "\nmost confused (gold → ranked first)");
        for (g, b, n) in &r.confusions {
            outln!(out, "  {n:>4}  {g} → {b}");
        }
    }
    emit(&out)
}
