//! Reports for leads: tickets opened and resolved per day, the bot's decisions per day, the
//! ratings users gave, the median times to a first staff reply and to resolution, and the
//! questions the bot could not answer. Charts are SVG drawn by plotters on the server and
//! written inline (no script, no external file).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, PreEscaped, html};
use plotters::prelude::*;
use serde::Deserialize;

use crate::auth::{ApiStaff, PageStaff};
use crate::problem::{ApiError, PageError, Problem};
use crate::{App, Report, StaffAccount, views};

/// Days shown when the query names none, and the most allowed.
const DEFAULT_DAYS: u32 = 14;
const MAX_DAYS: u32 = 366;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;
const BLUE: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const GREEN: RGBColor = RGBColor(0x2a, 0x9d, 0x5c);
const ORANGE: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const RED: RGBColor = RGBColor(0xc8, 0x32, 0x32);
const GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

#[derive(Debug, Default, Deserialize)]
struct DaysQuery {
    days: Option<String>,
}

/// The `days` of a report's query string: 1 to 366, 14 when absent.
fn days(query: Option<&str>) -> Result<u32, Problem> {
    let q: DaysQuery = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| Problem::BadRequest(format!("Bad query: {e}")))?;
    match q.days.as_deref().map(str::trim) {
        None | Some("") => Ok(DEFAULT_DAYS),
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| {
                Problem::BadRequest(format!("days must be a number from 1 to {MAX_DAYS}"))
            }),
    }
}

fn lead_only(staff: &StaffAccount) -> Result<(), Problem> {
    if staff.role.is_lead() {
        Ok(())
    } else {
        Err(Problem::Forbidden("Reports are for leads."))
    }
}

/// A plotters error, logged; the page shows the chart as unavailable.
fn drawing<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Gives plotters' `<svg>` an id and an accessible label.
fn tagged(svg: &str, id: &str, label: &str) -> String {
    let label = maud::html! { (label) }.into_string();
    svg.replacen(
        "<svg ",
        &format!("<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-label=\"{label}\" "),
        1,
    )
}

/// A chart, or a note that it could not be drawn (with the same id, so the page keeps its shape).
fn chart(id: &str, label: &str, drawn: Result<String, String>) -> Markup {
    match drawn {
        Ok(svg) => html! { figure { (PreEscaped(tagged(&svg, id, label))) } },
        Err(e) => {
            tracing::error!(chart = id, error = %e, "console: cannot draw a chart");
            html! { p.muted id=(id) { "This chart could not be drawn." } }
        }
    }
}

/// Day labels for the x axis: every day when few, else about ten.
fn day_label(report: &Report, x: f64) -> String {
    let n = report.days.len();
    let step = n.div_ceil(10).max(1);
    let i = x.floor() as usize;
    if (x - x.floor() - 0.5).abs() > 1e-6 || !i.is_multiple_of(step) {
        return String::new();
    }
    report
        .days
        .get(i)
        .map(|d| d.day.format("%m-%d").to_string())
        .unwrap_or_default()
}

/// How many labels a count axis up to `top` gets: one per whole number, at most eleven.
fn count_labels(top: i64) -> usize {
    usize::try_from(top).unwrap_or(10).clamp(1, 10) + 1
}

/// A count axis label: whole numbers only.
fn whole(y: &f64) -> String {
    if (y - y.round()).abs() < 1e-9 {
        format!("{y:.0}")
    } else {
        String::new()
    }
}

fn tickets_chart(report: &Report) -> Result<String, String> {
    let n = report.days.len().max(1);
    let top = report
        .days
        .iter()
        .map(|d| d.opened.max(d.resolved))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..n as f64, 0f64..(top as f64 * 1.15))
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| day_label(report, *x))
            .y_labels(count_labels(top))
            .y_label_formatter(&whole)
            .y_desc("tickets")
            .draw()
            .map_err(drawing)?;
        for (k, color, label) in [(0, BLUE, "opened"), (1, GREEN, "resolved")] {
            chart
                .draw_series(report.days.iter().enumerate().map(|(i, d)| {
                    let v = if k == 0 { d.opened } else { d.resolved } as f64;
                    let x0 = i as f64 + 0.1 + k as f64 * 0.4;
                    Rectangle::new([(x0, 0.0), (x0 + 0.4, v)], color.filled())
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

fn decisions_chart(report: &Report) -> Result<String, String> {
    let n = report.days.len().max(1);
    // (x, answered, clarified, escalated) as shares of that day's decisions.
    let rates: Vec<(f64, [f64; 3])> = report
        .days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let total = (d.answered + d.clarified + d.escalated) as f64;
            (total > 0.0).then(|| {
                (
                    i as f64 + 0.5,
                    [
                        d.answered as f64 / total,
                        d.clarified as f64 / total,
                        d.escalated as f64 / total,
                    ],
                )
            })
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..n as f64, 0f64..1.05f64)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| day_label(report, *x))
            .y_label_formatter(&|y| format!("{:.0} %", y * 100.0))
            .y_desc("share of the bot's decisions")
            .draw()
            .map_err(drawing)?;
        for (k, color, label) in [
            (0, GREEN, "answered"),
            (1, ORANGE, "asked \"A or B?\""),
            (2, RED, "handed to a human"),
        ] {
            chart
                .draw_series(LineSeries::new(
                    rates.iter().map(|(x, r)| (*x, r[k])),
                    color.stroke_width(2),
                ))
                .map_err(drawing)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    rates
                        .iter()
                        .map(|(x, r)| Circle::new((*x, r[k]), 3, color.filled())),
                )
                .map_err(drawing)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(GREY)
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn ratings_chart(report: &Report) -> Result<String, String> {
    let top = report.ratings.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH / 2, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..5f64, 0f64..(top as f64 * 1.15))
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(11)
            .x_label_formatter(&|x| {
                if (x - x.floor() - 0.5).abs() < 1e-6 {
                    format!("{} ★", x.floor() as i64 + 1)
                } else {
                    String::new()
                }
            })
            .y_labels(count_labels(top))
            .y_label_formatter(&whole)
            .y_desc("ratings")
            .draw()
            .map_err(drawing)?;
        let colors = [RED, ORANGE, GREY, BLUE, GREEN];
        chart
            .draw_series(report.ratings.iter().enumerate().map(|(i, &count)| {
                let x0 = i as f64 + 0.15;
                Rectangle::new([(x0, 0.0), (x0 + 0.7, count as f64)], colors[i].filled())
            }))
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn median(secs: Option<i64>) -> String {
    secs.map_or_else(|| "—".to_owned(), views::seconds)
}

/// `GET /reports?days=N` (leads only).
pub(crate) async fn page(
    State(app): State<App>,
    PageStaff(session): PageStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    lead_only(&session.staff)?;
    let days = days(query.as_deref())?;
    let report = app.service().report(days, Utc::now()).await?;
    let totals = report.days.iter().fold([0i64; 5], |mut t, d| {
        t[0] += d.opened;
        t[1] += d.resolved;
        t[2] += d.answered;
        t[3] += d.clarified;
        t[4] += d.escalated;
        t
    });
    let rated: i64 = report.ratings.iter().sum();
    let mean_rating = (rated > 0).then(|| {
        report
            .ratings
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as i64 + 1) * n)
            .sum::<i64>() as f64
            / rated as f64
    });
    let body = html! {
        div.page-head {
            h1 { "Reports" }
            nav.ranges {
                @for d in [7u32, 14, 30, 90] {
                    @if d == days {
                        span.current { (d) " days" }
                    } @else {
                        a href={ "/reports?days=" (d) } { (d) " days" }
                    }
                }
            }
        }
        p.muted { "Since " (views::time(report.since)) " (UTC days)." }
        div.stats {
            div.stat { span.label { "Opened" } span.value #opened { (totals[0]) } }
            div.stat { span.label { "Resolved" } span.value #resolved { (totals[1]) } }
            div.stat { span.label { "Median first response" } span.value #median-first-response { (median(report.median_first_response_secs)) } }
            div.stat { span.label { "Median resolution" } span.value #median-resolution { (median(report.median_resolution_secs)) } }
            div.stat { span.label { "Mean rating" } span.value #mean-rating {
                @match mean_rating { Some(m) => (format!("{m:.2} / 5")), None => "—" }
            } }
        }
        section.report {
            h2 { "Tickets per day" }
            (chart("chart-tickets", "Tickets opened and resolved per day", tickets_chart(&report)))
        }
        section.report {
            h2 { "The bot's decisions per day" }
            p.muted { (totals[2]) " answered, " (totals[3]) " clarified, " (totals[4]) " handed to a human in all." }
            (chart("chart-decisions", "Shares of answers, clarifying questions and hand-overs per day", decisions_chart(&report)))
        }
        section.report {
            h2 { "Ratings" }
            p.muted { (rated) " ratings." }
            (chart("chart-ratings", "How many ratings of each score users gave", ratings_chart(&report)))
        }
        section.report {
            h2 { "Questions the bot could not answer" }
            table #misses .misses {
                thead { tr { th { "Question" } th.num { "Asked" } th { "Last asked" } th { "Best guess" } th.num { "Confidence" } } }
                tbody {
                    @for m in &report.misses {
                        tr {
                            td.text { (m.text) }
                            td.num { (m.count) }
                            td { (views::time(m.last_at)) }
                            td { (m.intent_guess.as_deref().unwrap_or("—")) }
                            td.num { @match m.mean_confidence { Some(c) => (format!("{c:.2}")), None => "—" } }
                        }
                    }
                    @if report.misses.is_empty() {
                        tr.empty { td colspan="5" { "None: every question got an answer." } }
                    }
                }
            }
        }
    };
    Ok(views::page("Reports", Some(&session), body))
}

/// `GET /api/reports?days=N` (leads only): the report as JSON.
pub(crate) async fn api(
    State(app): State<App>,
    ApiStaff(who): ApiStaff,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    lead_only(who.staff())?;
    let days = days(query.as_deref())?;
    let report = app.service().report(days, Utc::now()).await?;
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_service::ReportDay;

    #[test]
    fn days_default_and_bound() {
        assert_eq!(days(None), Ok(DEFAULT_DAYS));
        assert_eq!(days(Some("days=30")), Ok(30));
        for bad in ["days=0", "days=x", "days=1000", "days=-1"] {
            assert!(days(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn charts_are_svg_with_their_ids() {
        let report = Report {
            days: (1..=14)
                .map(|d| ReportDay {
                    day: chrono::NaiveDate::from_ymd_opt(2025, 3, d).unwrap_or_default(),
                    opened: i64::from(d % 4),
                    resolved: i64::from(d % 3),
                    answered: 10,
                    clarified: i64::from(d % 2),
                    escalated: 2,
                })
                .collect(),
            ratings: [1, 0, 2, 5, 9],
            ..Report::default()
        };
        for (id, drawn) in [
            ("chart-tickets", tickets_chart(&report)),
            ("chart-decisions", decisions_chart(&report)),
            ("chart-ratings", ratings_chart(&report)),
        ] {
            let html = chart(id, "a <label>", drawn).into_string();
            assert!(html.contains(&format!("<svg id=\"{id}\"")), "{html}");
            assert!(html.contains("aria-label=\"a &lt;label&gt;\""), "{html}");
            assert!(!html.contains("style="), "no inline style (CSP): {html}");
        }
        // An empty report draws too.
        assert!(tickets_chart(&Report::default()).is_ok());
        assert!(decisions_chart(&Report::default()).is_ok());
        assert!(ratings_chart(&Report::default()).is_ok());
    }
}
