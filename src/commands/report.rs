//! The evaluation report: one self-contained HTML file (`kefu eval --report`, `kefu kb check
//! --report`) that shows a KB author why the bot hesitates.
//!
//! Charts are SVG drawn by plotters and written inline, so the file opens anywhere without a
//! network: how confidence relates to accuracy (reliability), how confident right and wrong
//! predictions are, what the answer threshold trades (utility and the answer / clarify / escalate
//! rates as it moves, the chosen thresholds marked), accuracy by message length and by language;
//! then tables of per-intent precision and recall and of the most confused pairs with the
//! messages behind them. Every figure comes from [`ReportCase`]s, so `eval` (test cases) and
//! `kb check` (held-out folds of the KB's own examples) draw the same report.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use kefu_nlu::engine::{Candidate, DecisionKind, Gold, Policy, decision_utility};
use plotters::prelude::*;
use serde::Serialize;

use super::Failure;

/// One message as the engine judged it.
#[derive(Debug, Clone)]
pub struct ReportCase {
    pub text: String,
    /// The right intent; None for an out-of-scope message.
    pub gold: Option<String>,
    /// The best in-scope intents with calibrated probabilities, best first.
    pub candidates: Vec<Candidate>,
    pub out_of_scope: f32,
    pub decision: DecisionKind,
    pub language: String,
}

impl ReportCase {
    fn best(&self) -> Option<&str> {
        self.candidates.first().map(|c| c.intent.as_str())
    }

    fn confidence(&self) -> f32 {
        self.candidates.first().map_or(0.0, |c| c.score)
    }

    /// The best-ranked intent is the right one (never, for an out-of-scope message).
    fn top1_right(&self) -> bool {
        self.gold.is_some() && self.best() == self.gold.as_deref()
    }

    fn gold_rank(&self) -> Gold {
        match &self.gold {
            None => Gold::OutOfScope,
            Some(g) => match self.candidates.iter().position(|c| &c.intent == g) {
                Some(0) => Gold::First,
                Some(1) => Gold::Second,
                _ => Gold::Neither,
            },
        }
    }

    /// Answered right or clarified with the right option (in scope); not answered (out of scope).
    pub fn resolved(&self) -> bool {
        match (self.gold_rank(), self.decision) {
            (Gold::OutOfScope, kind) => kind != DecisionKind::Answer,
            (Gold::First, DecisionKind::Answer) => true,
            (Gold::First | Gold::Second, DecisionKind::Clarify) => true,
            _ => false,
        }
    }

    fn answered_wrong(&self) -> bool {
        self.decision == DecisionKind::Answer && !self.top1_right()
    }
}

/// Figures for one slice of the cases (a length bucket or a language).
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    /// The slice: "1-8 chars", "zh"…
    pub slice: String,
    pub cases: usize,
    pub in_scope: usize,
    /// Among the in-scope cases (None without any).
    pub top1_accuracy: Option<f64>,
    pub resolved_rate: Option<f64>,
    /// Among all the slice's cases.
    pub wrong_answer_rate: f64,
}

/// Length buckets in characters: a Chinese question of 4–8 characters is short, a story with
/// amounts and a hash is long.
const LENGTH_BUCKETS: [(usize, usize); 4] = [(1, 8), (9, 16), (17, 32), (33, usize::MAX)];

fn bucket_name(lo: usize, hi: usize) -> String {
    if hi == usize::MAX {
        format!("{lo}+ chars")
    } else {
        format!("{lo}-{hi} chars")
    }
}

fn slice(name: String, cases: &[&ReportCase]) -> Slice {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let in_scope: Vec<&&ReportCase> = cases.iter().filter(|c| c.gold.is_some()).collect();
    let rate = |n: usize, of: usize| (of > 0).then(|| round(n as f64 / of as f64));
    Slice {
        slice: name,
        cases: cases.len(),
        in_scope: in_scope.len(),
        top1_accuracy: rate(
            in_scope.iter().filter(|c| c.top1_right()).count(),
            in_scope.len(),
        ),
        resolved_rate: rate(
            in_scope.iter().filter(|c| c.resolved()).count(),
            in_scope.len(),
        ),
        wrong_answer_rate: rate(
            cases.iter().filter(|c| c.answered_wrong()).count(),
            cases.len(),
        )
        .unwrap_or(0.0),
    }
}

/// Figures per message length (characters), shortest first; empty buckets left out.
pub fn by_length(cases: &[ReportCase]) -> Vec<Slice> {
    LENGTH_BUCKETS
        .iter()
        .filter_map(|&(lo, hi)| {
            let members: Vec<&ReportCase> = cases
                .iter()
                .filter(|c| (lo..=hi).contains(&c.text.chars().count()))
                .collect();
            (!members.is_empty()).then(|| slice(bucket_name(lo, hi), &members))
        })
        .collect()
}

/// Figures per detected language, most cases first.
pub fn by_language(cases: &[ReportCase]) -> Vec<Slice> {
    let mut groups: HashMap<&str, Vec<&ReportCase>> = HashMap::new();
    for c in cases {
        groups.entry(c.language.as_str()).or_default().push(c);
    }
    let mut out: Vec<Slice> = groups
        .into_iter()
        .map(|(lang, members)| slice(lang.to_owned(), &members))
        .collect();
    out.sort_by(|a, b| b.cases.cmp(&a.cases).then_with(|| a.slice.cmp(&b.slice)));
    out
}

/// What the report is about.
#[derive(Debug)]
pub struct ReportInput<'a> {
    /// The page's heading, e.g. "kefu eval — bench/crypto/platform".
    pub title: String,
    /// One line under it: what the cases are.
    pub subtitle: String,
    pub cases: &'a [ReportCase],
    pub policy: Policy,
    /// Every intent of the KB, in KB order.
    pub intents: Vec<String>,
}

/// Writes the report to `path`.
pub fn write(path: &Path, input: &ReportInput) -> Result<(), Failure> {
    let html = render(input).map_err(Failure::Other)?;
    std::fs::write(path, html)
        .with_context(|| format!("cannot write the report {}", path.display()))
        .map_err(Failure::Other)
}

const WIDTH: u32 = 760;
const HEIGHT: u32 = 380;
const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const ORANGE: RGBColor = RGBColor(0xe0, 0x7b, 0x10);
const GREEN: RGBColor = RGBColor(0x2c, 0x9a, 0x3c);
const RED: RGBColor = RGBColor(0xc8, 0x32, 0x32);
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// A plotters drawing error as an anyhow error (plotters' own error type is generic over the
/// backend and not `Send + Sync`).
fn drawing<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// Renders the whole page.
pub fn render(input: &ReportInput) -> anyhow::Result<String> {
    let cases = input.cases;
    let mut page = String::new();
    let in_scope = cases.iter().filter(|c| c.gold.is_some()).count();
    let top1 = cases.iter().filter(|c| c.top1_right()).count();
    let resolved_in = cases
        .iter()
        .filter(|c| c.gold.is_some() && c.resolved())
        .count();
    let wrong = cases.iter().filter(|c| c.answered_wrong()).count();
    let pct = |n: usize, of: usize| {
        if of == 0 {
            "–".to_owned()
        } else {
            format!("{:.1} %", n as f64 * 100.0 / of as f64)
        }
    };
    let count = |k: DecisionKind| cases.iter().filter(|c| c.decision == k).count();
    write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n<p class=\"sub\">{sub}</p>\n",
        title = escape(&input.title),
        sub = escape(&input.subtitle),
    )?;
    write!(
        page,
        "<table class=\"summary\"><tr><th>cases</th><th>in scope</th><th>top-1 accuracy</th><th>resolved</th><th>wrong answers</th><th>answered / clarified / escalated</th><th>policy</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td><td>answer ≥ {:.3}; clarify when the two best reach {:.3}; temperature {}</td></tr></table>\n",
        cases.len(),
        in_scope,
        pct(top1, in_scope),
        pct(resolved_in, in_scope),
        pct(wrong, cases.len()),
        pct(count(DecisionKind::Answer), cases.len()),
        pct(count(DecisionKind::Clarify), cases.len()),
        pct(count(DecisionKind::Escalate), cases.len()),
        input.policy.answer_threshold,
        input.policy.clarify_threshold,
        input.policy.temperature,
    )?;

    section(
        &mut page,
        "reliability",
        "Reliability: confidence against accuracy",
        "Each point is the cases whose best intent had a confidence in that tenth; on the diagonal, a confidence of 0.8 is right 80 % of the time. Points below it are overconfident. Out-of-scope messages count as wrong: no intent is right for them.",
        &reliability_chart(cases)?,
    )?;
    section(
        &mut page,
        "confidence",
        "Confidence of right and wrong predictions",
        "How confident the engine was in its best intent, for the cases where that intent was right and where it was wrong (including every out-of-scope message). Wrong predictions far to the right are the ones the bot answers wrongly.",
        &confidence_chart(cases)?,
    )?;
    section(
        &mut page,
        "thresholds",
        "What the answer threshold trades",
        "Moving the answer threshold (the clarify rule kept as chosen): the share of messages answered, asked \"A or B?\" and handed to a human, and the mean utility per message (right answer +1, wrong answer −1, hand-over 0, a right option in \"A or B?\" +0.6; out of scope: not answered +1). The dashed line is the threshold the KB's own folds chose.",
        &threshold_chart(cases, &input.policy)?,
    )?;
    let lengths = by_length(cases);
    let languages = by_language(cases);
    section(
        &mut page,
        "length",
        "Accuracy by message length",
        "Top-1 accuracy and resolved rate of the in-scope cases, by length in characters (the number of cases on each bar).",
        &slice_chart(&lengths)?,
    )?;
    section(
        &mut page,
        "language",
        "Accuracy by language",
        "The same by the detected language of the message.",
        &slice_chart(&languages)?,
    )?;
    per_intent_section(&mut page, cases, &input.intents)?;
    confusion_section(&mut page, cases)?;
    page.push_str("</body></html>\n");
    Ok(page)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}.sub{color:#555}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
.summary td{font-size:1.05em}.bar{display:inline-block;height:.8em;background:#1f6fb4}\
.weak{background:#fbe9e9}figure{margin:0}svg{max-width:100%;height:auto}";

fn section(page: &mut String, id: &str, title: &str, note: &str, svg: &str) -> anyhow::Result<()> {
    writeln!(
        page,
        "<section id=\"{id}\"><h2>{title}</h2><p>{}</p><figure class=\"chart\">{svg}</figure></section>",
        escape(note)
    )?;
    Ok(())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn reliability_chart(cases: &[ReportCase]) -> anyhow::Result<String> {
    let mut bins = [(0usize, 0usize, 0f64); 10];
    for c in cases {
        let b = ((c.confidence() * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += usize::from(c.top1_right());
        bins[b].2 += f64::from(c.confidence());
    }
    let points: Vec<(f64, f64, usize)> = bins
        .iter()
        .filter(|b| b.0 > 0)
        .map(|&(n, right, sum)| (sum / n as f64, right as f64 / n as f64, n))
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("confidence of the best intent")
            .y_desc("share right")
            .draw()
            .map_err(drawing)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                GREY.stroke_width(1),
            ))
            .map_err(drawing)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREY));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                BLUE.stroke_width(2),
            ))
            .map_err(drawing)?
            .label("this engine")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| {
                EmptyElement::at((p.0, p.1))
                    + Circle::new((0, 0), 4, BLUE.filled())
                    + Text::new(format!("{}", p.2), (6, -14), ("sans-serif", 12))
            }))
            .map_err(drawing)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(GREY)
            .background_style(WHITE)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn confidence_chart(cases: &[ReportCase]) -> anyhow::Result<String> {
    const BINS: usize = 20;
    let mut right = [0usize; BINS];
    let mut wrong = [0usize; BINS];
    for c in cases {
        let b = ((c.confidence() * BINS as f32) as usize).min(BINS - 1);
        if c.top1_right() {
            right[b] += 1;
        } else {
            wrong[b] += 1;
        }
    }
    let top = right
        .iter()
        .chain(&wrong)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..(top as f64 * 1.1))
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("confidence of the best intent")
            .y_desc("cases")
            .draw()
            .map_err(drawing)?;
        let w = 1.0 / BINS as f64;
        for (counts, color, label, offset) in [
            (&right, GREEN, "best intent right", 0.0),
            (&wrong, RED, "best intent wrong or out of scope", 0.5),
        ] {
            chart
                .draw_series(counts.iter().enumerate().map(|(b, &n)| {
                    let x0 = b as f64 * w + offset * w;
                    Rectangle::new([(x0, 0.0), (x0 + w / 2.0, n as f64)], color.filled())
                }))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(GREY)
            .background_style(WHITE)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn threshold_chart(cases: &[ReportCase], policy: &Policy) -> anyhow::Result<String> {
    let n = cases.len().max(1) as f64;
    let sweep: Vec<(f64, [f64; 4])> = (5..=99)
        .map(|t| {
            let threshold = t as f32 / 100.0;
            let moved = Policy {
                answer_threshold: threshold,
                ..*policy
            };
            let mut rates = [0f64; 4]; // answer, clarify, escalate, utility
            for c in cases {
                let kind = moved.kind(
                    c.candidates.first().map(|c| c.score),
                    c.candidates.get(1).map(|c| c.score),
                    c.out_of_scope,
                );
                let slot = match kind {
                    DecisionKind::Answer => 0,
                    DecisionKind::Clarify => 1,
                    DecisionKind::Escalate => 2,
                };
                rates[slot] += 1.0;
                rates[3] += f64::from(decision_utility(kind, c.gold_rank()));
            }
            (f64::from(threshold), rates.map(|r| r / n))
        })
        .collect();
    let lowest = sweep.iter().map(|s| s.1[3]).fold(0f64, f64::min).min(0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, lowest..1f64)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("answer threshold")
            .y_desc("share of messages / utility per message")
            .draw()
            .map_err(drawing)?;
        for (k, color, label) in [
            (0, GREEN, "answered"),
            (1, ORANGE, "asked \"A or B?\""),
            (2, GREY, "handed to a human"),
            (3, BLUE, "utility per message"),
        ] {
            let width = if k == 3 { 3 } else { 2 };
            chart
                .draw_series(LineSeries::new(
                    sweep.iter().map(|s| (s.0, s.1[k])),
                    color.stroke_width(width),
                ))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(width))
                });
        }
        let chosen = f64::from(policy.answer_threshold);
        chart
            .draw_series(DashedLineSeries::new(
                [(chosen, lowest), (chosen, 1.0)],
                6,
                4,
                RED.stroke_width(2),
            ))
            .map_err(drawing)?
            .label(format!("chosen answer threshold {chosen:.3}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleLeft)
            .border_style(GREY)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn slice_chart(slices: &[Slice]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT * 3 / 4)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let names: Vec<String> = slices
            .iter()
            .map(|s| format!("{} ({})", s.slice, s.in_scope))
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..slices.len().max(1) as f64, 0f64..1.05f64)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slices.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 1e-6 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("share of in-scope cases")
            .draw()
            .map_err(drawing)?;
        for (k, color, label) in [(0, BLUE, "top-1 accuracy"), (1, GREEN, "resolved")] {
            chart
                .draw_series(slices.iter().enumerate().filter_map(|(i, s)| {
                    let v = if k == 0 {
                        s.top1_accuracy
                    } else {
                        s.resolved_rate
                    }?;
                    let x0 = i as f64 + 0.1 + k as f64 * 0.4;
                    Some(Rectangle::new([(x0, 0.0), (x0 + 0.4, v)], color.filled()))
                }))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(GREY)
            .background_style(WHITE)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn per_intent_section(
    page: &mut String,
    cases: &[ReportCase],
    intents: &[String],
) -> anyhow::Result<()> {
    // (gold count, predicted count, right) by intent, from the best-ranked intent.
    let mut stats: HashMap<&str, (usize, usize, usize)> =
        intents.iter().map(|i| (i.as_str(), (0, 0, 0))).collect();
    for c in cases {
        if let Some(g) = &c.gold {
            stats.entry(g.as_str()).or_default().0 += 1;
        }
        if let Some(b) = c.best() {
            stats.entry(b).or_default().1 += 1;
        }
        if c.top1_right()
            && let Some(g) = &c.gold
        {
            stats.entry(g.as_str()).or_default().2 += 1;
        }
    }
    let ratio = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
    let mut rows: Vec<(&str, usize, Option<f64>, Option<f64>)> = stats
        .iter()
        .filter(|(_, s)| s.0 > 0 || s.1 > 0)
        .map(|(id, &(gold, predicted, right))| {
            (*id, gold, ratio(right, predicted), ratio(right, gold))
        })
        .collect();
    // Weakest first: the lower of precision and recall.
    let key =
        |r: &(&str, usize, Option<f64>, Option<f64>)| r.2.unwrap_or(0.0).min(r.3.unwrap_or(1.0));
    rows.sort_by(|a, b| key(a).total_cmp(&key(b)).then_with(|| a.0.cmp(b.0)));
    write!(
        page,
        "<section id=\"intents\"><h2>Per-intent precision and recall</h2><p>Of the best-ranked intent: precision is the share of cases ranked first for an intent that were about it, recall the share of an intent's cases that ranked it first. Weakest first; rows below 0.7 are shaded.</p>\n<table><tr><th>intent</th><th>cases</th><th>precision</th><th>recall</th></tr>\n"
    )?;
    let cell = |v: Option<f64>| match v {
        Some(v) => format!(
            "<span class=\"bar\" style=\"width:{:.0}px\"></span> {:.2}",
            v * 80.0,
            v
        ),
        None => "–".to_owned(),
    };
    for r in &rows {
        let class = if key(r) < 0.7 { " class=\"weak\"" } else { "" };
        writeln!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(r.0),
            r.1,
            cell(r.2),
            cell(r.3)
        )?;
    }
    page.push_str("</table></section>\n");
    Ok(())
}

fn confusion_section(page: &mut String, cases: &[ReportCase]) -> anyhow::Result<()> {
    let mut pairs: HashMap<(&str, &str), Vec<&ReportCase>> = HashMap::new();
    for c in cases {
        if let (Some(b), false) = (c.best(), c.top1_right()) {
            let gold = c.gold.as_deref().unwrap_or("(out of scope)");
            pairs.entry((gold, b)).or_default().push(c);
        }
    }
    let mut pairs: Vec<((&str, &str), Vec<&ReportCase>)> = pairs.into_iter().collect();
    pairs.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    write!(
        page,
        "<section id=\"confusions\"><h2>Most confused pairs</h2><p>Messages about one intent (or out of scope) whose best-ranked intent was another, with up to three of them and what the bot did. Add examples that tell the two apart, or merge them.</p>\n<table><tr><th>cases</th><th>about</th><th>taken for</th><th>examples (decision, confidence)</th></tr>\n"
    )?;
    for ((gold, best), members) in pairs.iter().take(15) {
        let examples: Vec<String> = members
            .iter()
            .take(3)
            .map(|c| {
                format!(
                    "{} <small>({}, {:.2})</small>",
                    escape(&c.text),
                    match c.decision {
                        DecisionKind::Answer => "answered",
                        DecisionKind::Clarify => "asked",
                        DecisionKind::Escalate => "handed over",
                    },
                    c.confidence()
                )
            })
            .collect();
        writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            members.len(),
            escape(gold),
            escape(best),
            examples.join("<br>")
        )?;
    }
    if pairs.is_empty() {
        page.push_str("<tr><td colspan=\"4\">none</td></tr>\n");
    }
    page.push_str("</table></section>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(
        text: &str,
        gold: Option<&str>,
        best: &str,
        score: f32,
        kind: DecisionKind,
    ) -> ReportCase {
        ReportCase {
            text: text.to_owned(),
            gold: gold.map(str::to_owned),
            candidates: vec![
                Candidate {
                    intent: best.to_owned(),
                    score,
                },
                Candidate {
                    intent: "other".to_owned(),
                    score: (1.0 - score) / 2.0,
                },
            ],
            out_of_scope: 0.05,
            decision: kind,
            language: "zh".to_owned(),
        }
    }

    #[test]
    fn slices_count_top1_resolved_and_wrong_answers() {
        let cases = [
            case("提币失败", Some("a"), "a", 0.9, DecisionKind::Answer),
            case(
                "提币一直失败了怎么办",
                Some("a"),
                "b",
                0.8,
                DecisionKind::Answer,
            ),
            case("天气", None, "a", 0.3, DecisionKind::Escalate),
        ];
        let lengths = by_length(&cases);
        assert_eq!(lengths.len(), 2);
        assert_eq!(lengths[0].slice, "1-8 chars");
        assert_eq!(lengths[0].cases, 2);
        assert_eq!(lengths[0].top1_accuracy, Some(1.0));
        assert_eq!(lengths[1].top1_accuracy, Some(0.0));
        assert_eq!(lengths[1].wrong_answer_rate, 1.0);
        let languages = by_language(&cases);
        assert_eq!(languages.len(), 1);
        assert_eq!(languages[0].resolved_rate, Some(0.5));
    }

    #[test]
    fn message_text_is_escaped() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
