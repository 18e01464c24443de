//! The learning loop, simulated without a database: how much a KB learns from staff's labels and
//! the unanswered questions when every suggestion with a positive expected effect is accepted.
//!
//! A crypto set from `bench/crypto/NAME/` (`kb.toml`, `cases.jsonl`) is cut down to its first
//! `--start` examples per intent (titles, answers and `[out_of_scope]` kept). Its cases are split
//! in two halves, alternately within each gold intent (out of scope as one more group): one half
//! is the traffic, the other is held out and only ever scored. The traffic is replayed in rounds
//! of `--round` messages. In each round the engine decides each message; a message it hands over
//! (or asks "A or B?" about without the right option) reaches staff, who label an in-scope one
//! with its gold intent, and every handed-over message is an unanswered question. Then
//! `kefu_nlu::learn` suggests, every suggestion's expected effect is estimated, and each one with
//! a positive effect (more resolved, no more wrong answers) is applied to the KB, which is
//! retrained. Figures after each round are on the held-out half: top-1, resolved rate, wrong-answer
//! rate. Suggestion precision: the share of accepted suggestions whose effect on the held-out half
//! (the round's engine against the same engine with only that suggestion) is a resolved rate at
//! least as high.
//!
//! With `--complaints`, a user the bot answered wrongly also reaches staff (they press "No" at
//! "did this help?" and take the offered human) and is labelled.
//!
//! With `--budget RATE`, the KB carries a wrong-answer budget (`[meta] max_wrong_answer_rate`)
//! from the start, so the policy each retraining derives answers wrongly on the KB's held-out check
//! at most that often. `--seed N` shuffles the traffic another way. `--oracle` prints what labelling
//! every handed-over traffic message at once, then every traffic message, would give, and the set's
//! whole KB, instead of the rounds.
//!
//! `cargo bench --bench learning -- [--set platform] [--round 100] [--start 3]
//! [--min-cluster 3] [--complaints] [--budget 0.02] [--seed 0] [--oracle] [--svg docs/learning.svg]
//! [--md FILE]`;
//! `LEARNING_VERBOSE=1` also prints every estimate and how its sign agrees with the suggestion's
//! real effect on the held-out half, every held-out message answered wrongly after a round (with
//! its confidence), and how many held-out answers went to intents the KB's own held-out check had
//! answered wrongly.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark: a failed expectation is a failed run"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kefu_nlu::engine::{DecisionKind, Engine, EngineOptions};
use kefu_nlu::kb::KnowledgeBase;
use kefu_nlu::learn::{self, LabelKind, Labelled, LearnOptions, Score, SuggestionKind, Unanswered};
use plotters::prelude::*;

struct Args {
    set: PathBuf,
    round: usize,
    start: usize,
    min_cluster: usize,
    svg: Option<PathBuf>,
    md: Option<PathBuf>,
    complaints: bool,
    budget: Option<f32>,
    seed: u64,
    oracle: bool,
}

fn args() -> Args {
    let mut a = Args {
        set: PathBuf::from("bench/crypto/platform"),
        round: 100,
        start: 3,
        min_cluster: learn::DEFAULT_MIN_CLUSTER,
        svg: None,
        md: None,
        complaints: false,
        budget: None,
        seed: 0,
        oracle: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--set" => {
                let v = value();
                a.set = if v.contains('/') {
                    PathBuf::from(v)
                } else {
                    Path::new("bench/crypto").join(v)
                };
            }
            "--round" => a.round = value().parse().expect("--round N"),
            "--start" => a.start = value().parse().expect("--start N"),
            "--min-cluster" => a.min_cluster = value().parse().expect("--min-cluster N"),
            "--svg" => a.svg = Some(PathBuf::from(value())),
            "--md" => a.md = Some(PathBuf::from(value())),
            "--complaints" => a.complaints = true,
            "--budget" => a.budget = Some(value().parse().expect("--budget RATE (0 to 1)")),
            "--seed" => a.seed = value().parse().expect("--seed N"),
            "--oracle" => a.oracle = true,
            // `cargo bench` passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.round > 0 && a.start > 0,
        "--round and --start must be at least 1"
    );
    a
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    intent: Option<String>,
}

/// The KB with each intent's first `k` examples (in file order, across languages).
fn cut(kb: &KnowledgeBase, k: usize) -> KnowledgeBase {
    let mut kb = kb.clone();
    for intent in &mut kb.intents {
        let mut left = k;
        for (_, v) in &mut intent.examples {
            v.truncate(left);
            left -= v.len();
        }
        intent.examples.retain(|(_, v)| !v.is_empty());
    }
    kb
}

fn train(kb: KnowledgeBase) -> Engine {
    Engine::train_with(kb, EngineOptions::default())
}

fn examples(kb: &KnowledgeBase) -> usize {
    kb.intents.iter().map(|i| i.all_examples().count()).sum()
}

struct Round {
    round: usize,
    traffic: usize,
    handed_over: usize,
    labels: usize,
    misses: usize,
    suggested: BTreeMap<SuggestionKind, usize>,
    accepted: BTreeMap<SuggestionKind, usize>,
    examples: usize,
    intents: usize,
    similarity: Option<f32>,
    score: Score,
    seconds: f64,
}

#[derive(Default)]
struct Precision {
    accepted: usize,
    confirmed: usize,
    confirmed_strict: usize,
}

fn main() {
    let a = args();
    let verbose = std::env::var_os("LEARNING_VERBOSE").is_some();
    let full = kefu_nlu::kb::load(&a.set.join("kb.toml")).expect("the set's kb.toml");
    let cases: Vec<Case> = std::fs::read_to_string(a.set.join("cases.jsonl"))
        .expect("the set's cases.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a case"))
        .collect();
    // Alternately within each gold intent: traffic, held out, traffic, …
    let mut seen: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let (mut traffic, mut held_out) = (Vec::new(), Vec::new());
    for c in cases {
        let k = seen.entry(c.intent.clone()).or_default();
        if k.is_multiple_of(2) {
            traffic.push(c);
        } else {
            held_out.push((c.text, c.intent));
        }
        *k += 1;
    }
    // Real traffic does not arrive sorted by topic as the file is: a fixed shuffle per --seed.
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for i in (1..traffic.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        traffic.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    let opts = LearnOptions {
        min_cluster: a.min_cluster,
        ..LearnOptions::default()
    };
    eprintln!(
        "{}: {} intents, {} examples cut to {} per intent; {} traffic cases in rounds of {}, {} held out",
        a.set.display(),
        full.intents.len(),
        examples(&full),
        a.start,
        traffic.len(),
        a.round,
        held_out.len()
    );

    let mut kb = cut(&full, a.start);
    let t0 = Instant::now();
    kb.meta.max_wrong_answer_rate = a.budget;
    let mut engine = train(kb.clone());
    if a.oracle {
        // What the best labelling could teach at once: every handed-over traffic message labelled
        // with its gold intent, then every traffic message, against the set's whole KB.
        for every in [false, true] {
            let mut o = kb.clone();
            for c in &traffic {
                let Some(g) = &c.intent else { continue };
                if !every && engine.decide(&c.text).decision == DecisionKind::Answer {
                    continue;
                }
                let i = o.intents.iter_mut().find(|i| &i.id == g).expect("intent");
                i.examples[0].1.push(c.text.clone());
            }
            let sc = learn::score_cases(&train(o.clone()), &held_out);
            eprintln!(
                "{}: {} examples, top-1 {:.3}, resolved {:.3}, wrong answers {:.3}",
                if every {
                    "every traffic message as an example"
                } else {
                    "every handed-over one as an example"
                },
                examples(&o),
                sc.top1_accuracy,
                sc.resolved_rate,
                sc.wrong_answer_rate
            );
        }
        let mut whole = full.clone();
        whole.meta.max_wrong_answer_rate = a.budget;
        let sc = learn::score_cases(&train(whole), &held_out);
        eprintln!(
            "the set's whole KB: {} examples, top-1 {:.3}, resolved {:.3}, wrong answers {:.3}",
            examples(&full),
            sc.top1_accuracy,
            sc.resolved_rate,
            sc.wrong_answer_rate
        );
        return;
    }
    let mut rounds = vec![Round {
        round: 0,
        traffic: 0,
        handed_over: 0,
        labels: 0,
        misses: 0,
        suggested: BTreeMap::new(),
        accepted: BTreeMap::new(),
        examples: examples(&kb),
        intents: kb.intents.len(),
        similarity: None,
        score: learn::score_cases(&engine, &held_out),
        seconds: t0.elapsed().as_secs_f64(),
    }];
    let mut labels: Vec<Labelled> = Vec::new();
    let mut misses: Vec<Unanswered> = Vec::new();
    let mut precision = Precision::default();
    let mut diagnostics: Vec<[f32; 9]> = Vec::new();
    let mut answers = Answers::default();
    for (r, batch) in traffic.chunks(a.round).enumerate() {
        let t = Instant::now();
        let mut handed_over = 0;
        for c in batch {
            let d = engine.decide(&c.text);
            let offered = |k: usize| d.candidates.get(k).map(|x| Some(x.intent.as_str()));
            let gold = Some(c.intent.as_deref());
            let reached_staff = match d.decision {
                DecisionKind::Answer => a.complaints && offered(0) != gold,
                DecisionKind::Clarify => offered(0) != gold && offered(1) != gold,
                DecisionKind::Escalate => true,
            };
            if !reached_staff {
                continue;
            }
            handed_over += 1;
            misses.push(Unanswered {
                text: c.text.clone(),
                count: 1,
            });
            if let Some(intent) = &c.intent {
                labels.push(Labelled {
                    text: c.text.clone(),
                    kind: LabelKind::Intent,
                    name: Some(intent.clone()),
                });
            }
        }
        let found = learn::suggest(&engine, &labels, &misses, &opts);
        let mut suggested = BTreeMap::new();
        let mut accepted = BTreeMap::new();
        let base = learn::score_cases(&engine, &held_out);
        let mut next = kb.clone();
        for s in &found.suggestions {
            *suggested.entry(s.kind).or_default() += 1;
            if s.kind == SuggestionKind::Overlap {
                continue;
            }
            let after = train(learn::apply(&kb, s));
            let Some(effect) = learn::effect_with(&engine, s, &found.labelled, &after) else {
                continue;
            };
            if verbose {
                let truth = learn::score_cases(&after, &held_out);
                let lab = effect.traffic.as_deref();
                diagnostics.push([
                    effect.utility_change,
                    effect.resolved_change,
                    effect.top1_change,
                    lab.map_or(0.0, |l| l.utility_change),
                    lab.map_or(0.0, |l| l.resolved_change),
                    lab.map_or(0.0, |l| l.wrong_answer_change),
                    truth.utility - base.utility,
                    truth.resolved_rate - base.resolved_rate,
                    truth.wrong_answer_rate - base.wrong_answer_rate,
                ]);
            }
            if verbose {
                eprintln!(
                    "  {} {} {:>2} members: resolved {:+.4} top-1 {:+.4} wrong {:+.4}",
                    s.kind.as_str(),
                    s.intent,
                    s.members.len(),
                    effect.resolved_change,
                    effect.top1_change,
                    effect.wrong_answer_change
                );
            }
            if !effect.is_positive() {
                continue;
            }
            *accepted.entry(s.kind).or_default() += 1;
            next = learn::apply(&next, s);
            let confirm = learn::score_cases(&after, &held_out);
            precision.accepted += 1;
            let resolved_ok = confirm.resolved_rate >= base.resolved_rate;
            precision.confirmed += usize::from(resolved_ok);
            precision.confirmed_strict +=
                usize::from(resolved_ok && confirm.wrong_answer_rate <= base.wrong_answer_rate);
        }
        kb = next;
        engine = train(kb.clone());
        let round = Round {
            round: r + 1,
            traffic: batch.len(),
            handed_over,
            labels: labels.len(),
            misses: misses.len(),
            suggested,
            accepted,
            examples: examples(&kb),
            intents: kb.intents.len(),
            similarity: Some(found.similarity),
            score: learn::score_cases(&engine, &held_out),
            seconds: t.elapsed().as_secs_f64(),
        };
        if verbose {
            // The intents the KB's own held-out check answered wrongly at the policy's threshold:
            // how many of the held-out half's answers, right and wrong, went to them.
            let policy = engine.policy();
            let flagged: std::collections::BTreeSet<&str> = engine
                .validation()
                .held_out
                .iter()
                .filter_map(|h| {
                    let c = h.candidates.first()?;
                    let kind = policy.kind(
                        Some(c.score),
                        h.candidates.get(1).map(|second| second.score),
                        h.out_of_scope,
                    );
                    (kind == DecisionKind::Answer && h.intent.as_deref() != Some(c.intent.as_str()))
                        .then_some(c.intent.as_str())
                })
                .collect();
            let (mut oos, mut inscope) = (0, 0);
            for (t, g) in &held_out {
                let d = engine.decide(t);
                if d.decision != DecisionKind::Answer {
                    continue;
                }
                let got = d.intent.as_deref().unwrap_or_default();
                let to_flagged = usize::from(flagged.contains(got));
                if g.as_deref() == Some(got) {
                    answers.right += 1;
                    answers.right_flagged += to_flagged;
                    continue;
                }
                answers.wrong += 1;
                answers.wrong_flagged += to_flagged;
                match g {
                    None => oos += 1,
                    Some(_) => inscope += 1,
                }
                eprintln!(
                    "    answered wrongly: {t:?} (gold {}) as {got} at {:.3}",
                    g.as_deref().unwrap_or("out of scope"),
                    d.candidates.first().map_or(0.0, |c| c.score)
                );
            }
            eprintln!(
                "  wrong answers: {oos} out of scope, {inscope} in scope; policy {policy:?}; intents the KB's check answered wrongly: {flagged:?}"
            );
        }
        eprintln!(
            "round {}: resolved {:.3}, wrong {:.3}, {} examples, {:.1} s",
            round.round,
            round.score.resolved_rate,
            round.score.wrong_answer_rate,
            round.examples,
            round.seconds
        );
        rounds.push(round);
    }

    if verbose {
        let n = diagnostics.len();
        let agree = |est: usize, truth: usize| {
            diagnostics
                .iter()
                .filter(|d| (d[est] > 0.0) == (d[truth] >= 0.0))
                .count()
        };
        let mean = |k: usize| diagnostics.iter().map(|d| d[k]).sum::<f32>() / n.max(1) as f32;
        eprintln!(
            "{n} estimates; sign agreement with the held-out half's utility / resolved: kb utility {} / {}, kb resolved {} / {}, kb top-1 {} / {}, labelled utility {} / {}, labelled resolved {} / {}",
            agree(0, 6),
            agree(0, 7),
            agree(1, 6),
            agree(1, 7),
            agree(2, 6),
            agree(2, 7),
            agree(3, 6),
            agree(3, 7),
            agree(4, 6),
            agree(4, 7)
        );
        let combined = diagnostics
            .iter()
            .filter(|d| ((d[0] + d[3]) > 0.0) == (d[6] >= 0.0))
            .count();
        let accepted_by = |rule: &dyn Fn(&[f32; 9]) -> bool| {
            let picked: Vec<&[f32; 9]> = diagnostics.iter().filter(|d| rule(d)).collect();
            let gain: f32 = picked.iter().map(|d| d[6]).sum();
            (picked.len(), gain)
        };
        eprintln!(
            "combined utility agreement {combined}; accepted (n, summed real utility change): traffic {:?}, kb {:?}, combined {:?}, both {:?}",
            accepted_by(&|d| d[3] > 0.0),
            accepted_by(&|d| d[0] > 0.0),
            accepted_by(&|d| d[0] + d[3] > 0.0),
            accepted_by(&|d| d[0] > 0.0 && d[3] > 0.0)
        );
        let both = diagnostics.iter().filter(|d| d[4] > 0.0 && d[5] <= 0.0);
        let (k, ok) = both.fold((0, 0), |(k, ok), d| {
            (k + 1, ok + usize::from(d[7] >= 0.0 && d[8] <= 0.0))
        });
        eprintln!(
            "labelled resolved > 0 and wrong <= 0: {k}, true resolved >= 0 and wrong <= 0: {ok}"
        );
        eprintln!(
            "held-out answers after rounds 1 on: right {} ({} to intents the KB's check answered wrongly), wrong {} ({})",
            answers.right, answers.right_flagged, answers.wrong, answers.wrong_flagged
        );
        eprintln!(
            "means: kb dU {:+.4} dR {:+.4} dT {:+.4}; labelled dU {:+.4} dR {:+.4} dW {:+.4}; truth dU {:+.4} dR {:+.4} dW {:+.4}",
            mean(0),
            mean(1),
            mean(2),
            mean(3),
            mean(4),
            mean(5),
            mean(6),
            mean(7),
            mean(8)
        );
    }
    let md = table(&a, &rounds, &precision, held_out.len());
    print!("{md}");
    if let Some(path) = &a.md {
        std::fs::write(path, &md).expect("writing --md");
    }
    if let Some(path) = &a.svg {
        let name = a
            .set
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let title = format!(
            "learning loop on bench/crypto/{name}{}: held-out half ({} cases)",
            if a.complaints {
                ", wrong answers reach staff"
            } else {
                ""
            },
            held_out.len()
        );
        std::fs::write(path, chart(&rounds, &title)).expect("writing --svg");
        eprintln!("chart: {}", path.display());
    }
}

/// The held-out half's answers after each round (`LEARNING_VERBOSE`): right and wrong, and how
/// many of each went to an intent the round's KB check had answered wrongly.
#[derive(Default)]
struct Answers {
    right: usize,
    right_flagged: usize,
    wrong: usize,
    wrong_flagged: usize,
}

fn kinds(m: &BTreeMap<SuggestionKind, usize>) -> String {
    let get = |k| m.get(&k).copied().unwrap_or(0);
    format!(
        "{} / {} / {}",
        get(SuggestionKind::AddExamples),
        get(SuggestionKind::NewTopic),
        get(SuggestionKind::Overlap)
    )
}

fn table(a: &Args, rounds: &[Round], p: &Precision, held_out: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Set `{}`, {} examples per intent at the start, traffic in rounds of {}; {}; figures on the held-out half ({held_out} cases, never traffic).\n",
        a.set.display(),
        a.start,
        a.round,
        if a.complaints {
            "staff see what the bot handed over and what it answered wrongly"
        } else {
            "staff see what the bot handed over"
        }
    );
    let _ = writeln!(
        out,
        "| round | traffic | handed to staff | labels / misses so far | suggested (examples / topics / overlaps) | accepted | KB examples | intents | top-1 | resolved | wrong answers | similarity | seconds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rounds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} / {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {:.1} |",
            r.round,
            r.traffic,
            r.handed_over,
            r.labels,
            r.misses,
            if r.round == 0 {
                "–".to_owned()
            } else {
                kinds(&r.suggested)
            },
            if r.round == 0 {
                "–".to_owned()
            } else {
                kinds(&r.accepted)
            },
            r.examples,
            r.intents,
            r.score.top1_accuracy,
            r.score.resolved_rate,
            r.score.wrong_answer_rate,
            r.similarity.map_or("–".to_owned(), |s| format!("{s:.3}")),
            r.seconds
        );
    }
    let share = |n: usize| {
        if p.accepted == 0 {
            "–".to_owned()
        } else {
            format!("{:.0} %", n as f64 * 100.0 / p.accepted as f64)
        }
    };
    let _ = writeln!(
        out,
        "\nSuggestion precision: {} accepted; the held-out half confirms {} ({}: resolved rate not lower with it alone) and {} ({}: also no more wrong answers).",
        p.accepted,
        p.confirmed,
        share(p.confirmed),
        p.confirmed_strict,
        share(p.confirmed_strict)
    );
    out
}

const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const GREEN: RGBColor = RGBColor(0x2c, 0x9a, 0x3c);
const RED: RGBColor = RGBColor(0xc8, 0x32, 0x32);
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// A line of the chart: its label, colour and value.
type Series = (&'static str, RGBColor, fn(&Score) -> f32);

fn chart(rounds: &[Round], title: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).unwrap();
        let last = rounds.len().saturating_sub(1).max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(title, ("sans-serif", 16))
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..last, 0f64..1f64)
            .unwrap();
        chart
            .configure_mesh()
            .x_desc("round (each: traffic labelled, suggestions accepted, retrained)")
            .y_desc("share of held-out cases")
            .x_labels(rounds.len().max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .unwrap();
        let series: [Series; 3] = [
            ("resolved", GREEN, |s| s.resolved_rate),
            ("top-1", BLUE, |s| s.top1_accuracy),
            ("wrong answers", RED, |s| s.wrong_answer_rate),
        ];
        for (label, color, value) in series {
            let points: Vec<(f64, f64)> = rounds
                .iter()
                .map(|r| (r.round as f64, f64::from(value(&r.score))))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .unwrap()
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .unwrap();
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .border_style(GREY)
            .background_style(WHITE.mix(0.9))
            .draw()
            .unwrap();
        root.present().unwrap();
    }
    svg
}
