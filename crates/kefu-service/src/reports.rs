//! The console's report: tickets opened and resolved and the bot's decisions per UTC day, the
//! median first response and resolution times, the ratings, and the questions the bot could not
//! answer.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use kefu_store::MissSummary;

use crate::{Result, Service};

/// How many of the most frequent unanswered questions a report lists.
pub const REPORT_MISSES: i64 = 10;

/// The longest report, in days.
pub const MAX_REPORT_DAYS: u32 = 366;

/// What happened over the last days.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The start of the first day (00:00 UTC).
    pub since: DateTime<Utc>,
    /// One entry per UTC day from `since` to the report's time, oldest first; days without
    /// activity are zeros.
    pub days: Vec<ReportDay>,
    /// Median time from a ticket's opening to the first staff line of its transcript, over the
    /// tickets opened in the period that staff wrote in.
    pub median_first_response_secs: Option<i64>,
    /// Median time from a ticket's opening to its resolution, over the tickets resolved in the
    /// period.
    pub median_resolution_secs: Option<i64>,
    /// How many ratings of 1, 2, 3, 4 and 5 were given in the period.
    pub ratings: [i64; 5],
    /// The most frequent questions the bot could not answer (all time).
    pub misses: Vec<MissSummary>,
}

/// One UTC day of a [`Report`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReportDay {
    /// The day.
    pub day: NaiveDate,
    /// Tickets opened.
    pub opened: i64,
    /// Tickets resolved by staff (cancelled ones are not counted).
    pub resolved: i64,
    /// Messages the bot answered.
    pub answered: i64,
    /// Messages the bot asked to clarify.
    pub clarified: i64,
    /// Messages the bot escalated, or found outside the knowledge base's topics.
    pub escalated: i64,
}

/// The median, in whole seconds (the mean of the two middle values for an even count).
fn median_secs(mut spans: Vec<TimeDelta>) -> Option<i64> {
    spans.sort_unstable();
    let n = spans.len();
    let middle = match n {
        0 => return None,
        _ if n % 2 == 1 => *spans.get(n / 2)?,
        _ => {
            let (a, b) = (*spans.get(n / 2 - 1)?, *spans.get(n / 2)?);
            a + (b - a) / 2
        }
    };
    Some(middle.num_seconds())
}

/// The entry of `day` in `days`, which start at `first`.
fn slot(days: &mut [ReportDay], first: NaiveDate, day: NaiveDate) -> Option<&mut ReportDay> {
    let i = usize::try_from((day - first).num_days()).ok()?;
    days.get_mut(i)
}

impl Service {
    /// The report of the last `days` UTC days up to `now`, today included (`days` is taken
    /// between 1 and 366).
    pub async fn report(&self, days: u32, now: DateTime<Utc>) -> Result<Report> {
        let days = days.clamp(1, MAX_REPORT_DAYS);
        let today = now.date_naive();
        let first = today - TimeDelta::days(i64::from(days) - 1);
        let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
        let activity = self.store.activity(since, now).await?;
        let mut report_days: Vec<ReportDay> = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|day| ReportDay {
                day,
                ..ReportDay::default()
            })
            .collect();
        for (day, n) in activity.opened {
            if let Some(d) = slot(&mut report_days, first, day) {
                d.opened += n;
            }
        }
        for (day, n) in activity.resolved {
            if let Some(d) = slot(&mut report_days, first, day) {
                d.resolved += n;
            }
        }
        for (day, kind, n) in activity.decisions {
            if let Some(d) = slot(&mut report_days, first, day) {
                match kind.as_str() {
                    "answer" => d.answered += n,
                    "clarify" => d.clarified += n,
                    _ => d.escalated += n,
                }
            }
        }
        let mut ratings = [0i64; 5];
        for (score, n) in activity.ratings {
            if let Some(r) = ratings.get_mut(usize::from(score).wrapping_sub(1)) {
                *r += n;
            }
        }
        Ok(Report {
            since,
            days: report_days,
            median_first_response_secs: median_secs(activity.first_responses),
            median_resolution_secs: median_secs(activity.resolutions),
            ratings,
            misses: self.store.misses(REPORT_MISSES).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_or_the_mean_of_the_two_middles() {
        let s = |v: &[i64]| v.iter().map(|&n| TimeDelta::seconds(n)).collect::<Vec<_>>();
        assert_eq!(median_secs(s(&[])), None);
        assert_eq!(median_secs(s(&[30, 10, 20])), Some(20));
        assert_eq!(median_secs(s(&[600, 1800])), Some(1200));
        assert_eq!(median_secs(s(&[7])), Some(7));
    }
}
