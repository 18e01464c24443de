//! Support hours: when staff are on duty, in the support team's own timezone.
//!
//! A window opens at `open` local time on each listed weekday and closes at `close`. When `close`
//! is earlier than `open` the window runs overnight into the next day (it belongs to the day it
//! opens on); when they are equal the window is the whole day. Daylight-saving changes are handled
//! by converting local times with the timezone's rules (an opening time that falls into a DST gap
//! moves to the first valid minute an hour later).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// When staff are on duty. Build it with [`SupportHours::parse`] from configuration, or
/// [`SupportHours::always`] for a round-the-clock team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportHours {
    /// The support team's timezone; times shown to users are in it.
    pub timezone: Tz,
    /// Weekdays (in `timezone`) on which a window opens.
    pub days: Vec<Weekday>,
    /// Local opening time.
    pub open: NaiveTime,
    /// Local closing time (earlier than `open`: overnight; equal: all day).
    pub close: NaiveTime,
}

/// Why support hours could not be parsed from configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// The timezone is not an IANA name.
    #[error("unknown timezone {0:?}; fix: use an IANA name such as \"Asia/Shanghai\" or \"UTC\"")]
    Timezone(String),
    /// The days list could not be read.
    #[error(
        "cannot read support days {0:?}; fix: write \"daily\", a range like \"mon-fri\" or a list like \"mon,wed,fri\""
    )]
    Days(String),
    /// A time could not be read.
    #[error("cannot read time {0:?}; fix: write 24-hour HH:MM, e.g. \"09:00\"")]
    Time(String),
}

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

impl SupportHours {
    /// Staff on duty around the clock.
    pub fn always() -> SupportHours {
        SupportHours {
            timezone: Tz::UTC,
            days: WEEK.to_vec(),
            open: NaiveTime::MIN,
            close: NaiveTime::MIN,
        }
    }

    /// Parses configuration values: an IANA timezone, days (`"daily"`, `"mon-fri"`,
    /// `"mon,wed,fri"`, ranges may wrap: `"sat-mon"`), and `HH:MM` opening and closing times.
    pub fn parse(timezone: &str, days: &str, open: &str, close: &str) -> Result<Self, HoursError> {
        let timezone: Tz = timezone
            .trim()
            .parse()
            .map_err(|_| HoursError::Timezone(timezone.to_owned()))?;
        let time = |s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| HoursError::Time(s.to_owned()))
        };
        Ok(SupportHours {
            timezone,
            days: parse_days(days).ok_or_else(|| HoursError::Days(days.to_owned()))?,
            open: time(open)?,
            close: time(close)?,
        })
    }

    /// True when staff are on duty at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let today = now.with_timezone(&self.timezone).date_naive();
        [today.pred_opt(), Some(today)]
            .into_iter()
            .flatten()
            .filter_map(|d| self.window(d))
            .any(|(start, end)| start <= now && now < end)
    }

    /// When staff are next on duty: `now` itself while open, `None` when no day is configured.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return Some(now);
        }
        let today = now.with_timezone(&self.timezone).date_naive();
        (0..=8)
            .filter_map(|i| today.checked_add_signed(Duration::days(i)))
            .filter_map(|d| self.window(d))
            .map(|(start, _)| start)
            .find(|start| *start > now)
    }

    /// The window opening on local date `date`, in UTC, if `date` is a support day.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.days.contains(&date.weekday()) {
            return None;
        }
        let end_date = if self.close <= self.open {
            date.succ_opt()?
        } else {
            date
        };
        Some((
            self.local(date, self.open)?,
            self.local(end_date, self.close)?,
        ))
    }

    fn local(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let naive = date.and_time(time);
        self.timezone
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                // In a DST gap: the same wall-clock time an hour later exists.
                self.timezone
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
    }
}

fn parse_days(s: &str) -> Option<Vec<Weekday>> {
    let s = s.trim().to_ascii_lowercase();
    if matches!(s.as_str(), "daily" | "*" | "all" | "every day") {
        return Some(WEEK.to_vec());
    }
    let day = |d: &str| d.trim().parse::<Weekday>().ok();
    let mut days = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (mut d, end) = (day(a)?, day(b)?);
                loop {
                    if !days.contains(&d) {
                        days.push(d);
                    }
                    if d == end {
                        break;
                    }
                    d = d.succ();
                }
            }
            None => {
                let d = day(part)?;
                if !days.contains(&d) {
                    days.push(d);
                }
            }
        }
    }
    (!days.is_empty()).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn shanghai_weekdays() -> SupportHours {
        SupportHours::parse("Asia/Shanghai", "mon-fri", "09:00", "21:00").unwrap()
    }

    #[test]
    fn hours_are_open_inside_the_local_window_and_closed_outside() {
        let h = shanghai_weekdays();
        // Monday 2025-05-05 10:00 in Shanghai is 02:00 UTC.
        assert!(h.is_open(utc("2025-05-05T02:00:00Z")));
        // Monday 08:59 Shanghai.
        assert!(!h.is_open(utc("2025-05-05T00:59:00Z")));
        // Monday 21:00 Shanghai: closing time is exclusive.
        assert!(!h.is_open(utc("2025-05-05T13:00:00Z")));
    }

    #[test]
    fn next_open_on_a_friday_night_is_monday_morning_local_time() {
        let h = shanghai_weekdays();
        // Friday 2025-05-09 22:00 Shanghai.
        let next = h.next_open(utc("2025-05-09T14:00:00Z")).unwrap();
        assert_eq!(next, utc("2025-05-12T01:00:00Z"), "Monday 09:00 +08:00");
    }

    #[test]
    fn next_open_while_open_is_now() {
        let h = shanghai_weekdays();
        let now = utc("2025-05-05T02:00:00Z");
        assert_eq!(h.next_open(now), Some(now));
    }

    #[test]
    fn an_overnight_window_belongs_to_the_day_it_opens() {
        let h = SupportHours::parse("UTC", "fri", "22:00", "06:00").unwrap();
        assert!(h.is_open(utc("2025-05-09T23:00:00Z")), "Friday 23:00");
        assert!(h.is_open(utc("2025-05-10T05:00:00Z")), "Saturday 05:00");
        assert!(!h.is_open(utc("2025-05-10T23:00:00Z")), "Saturday 23:00");
    }

    #[test]
    fn always_is_open_at_any_time() {
        let h = SupportHours::always();
        assert!(h.is_open(utc("2025-05-10T03:17:00Z")));
        assert!(h.is_open(utc("2025-05-11T23:59:59Z")));
    }

    #[test]
    fn an_opening_time_in_a_dst_gap_moves_an_hour_later() {
        // New York skips 02:00–03:00 on 2025-03-09 (a Sunday).
        let h = SupportHours::parse("America/New_York", "sun", "02:30", "10:00").unwrap();
        let next = h.next_open(utc("2025-03-09T05:00:00Z")).unwrap();
        assert_eq!(next, utc("2025-03-09T07:30:00Z"), "03:30 EDT");
    }

    #[test]
    fn no_support_days_means_never_open() {
        let h = SupportHours {
            days: Vec::new(),
            ..SupportHours::always()
        };
        assert!(!h.is_open(utc("2025-05-05T02:00:00Z")));
        assert_eq!(h.next_open(utc("2025-05-05T02:00:00Z")), None);
    }

    #[test]
    fn days_parse_as_ranges_lists_and_wrapping_ranges() {
        assert_eq!(parse_days("daily").unwrap().len(), 7);
        assert_eq!(
            parse_days("Mon-Wed").unwrap(),
            vec![Weekday::Mon, Weekday::Tue, Weekday::Wed]
        );
        assert_eq!(
            parse_days("sat-mon").unwrap(),
            vec![Weekday::Sat, Weekday::Sun, Weekday::Mon]
        );
        assert_eq!(
            parse_days("mon, fri").unwrap(),
            vec![Weekday::Mon, Weekday::Fri]
        );
        assert_eq!(parse_days("someday"), None);
    }

    #[test]
    fn bad_configuration_names_the_value_and_the_fix() {
        let e = SupportHours::parse("Mars/Olympus", "daily", "09:00", "21:00").unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus") && e.to_string().contains("fix"));
        assert_eq!(
            SupportHours::parse("UTC", "daily", "9am", "21:00").unwrap_err(),
            HoursError::Time("9am".into())
        );
    }
}
