//! When a schedule acts: Temporal's `ScheduleSpec` (intervals, calendars, cron strings,
//! exclusions, start and end times, jitter and time zone).
//!
//! [`canonicalize`] turns the string forms (cron strings, `CalendarSpec`) into
//! `StructuredCalendarSpec`s and intervals, as Temporal's frontend does, so that describe
//! answers the same shape whichever form the client sent; [`Spec::compile`] then builds
//! the matcher that finds the next action time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::proto::{
    self,
    schedule::{CalendarSpec, IntervalSpec, Range, ScheduleSpec, StructuredCalendarSpec},
};

/// One calendar field: its name in messages, its bounds and its value names.
struct Field {
    name: &'static str,
    min: i32,
    max: i32,
    /// Names of the values from `min` (months from 1, weekdays from Sunday = 0).
    names: &'static [&'static str],
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day_of_month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ],
};
const YEAR: Field = Field {
    name: "year",
    min: 1970,
    max: 2999,
    names: &[],
};
/// 7 is Sunday too, as in cron.
const DAY_OF_WEEK: Field = Field {
    name: "day_of_week",
    min: 0,
    max: 7,
    names: &[
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ],
};

/// Parses one field of a calendar or cron expression: `*`, `?`, values, names, `a-b`,
/// and `/step` after any of them, joined by commas.
fn parse_field(expr: &str, field: &Field) -> Result<Vec<Range>, String> {
    let mut ranges = Vec::new();
    for item in expr.split(',') {
        let item = item.trim();
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: i32 = step.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!(
                        "`{}`: the step in `{item}` must be a positive number",
                        field.name
                    )
                })?;
                (base.trim(), Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if base == "*" || base == "?" {
            // `*` of weekdays is 0-6: 7 is Sunday again.
            let end = if field.name == "day_of_week" {
                6
            } else {
                field.max
            };
            (field.min, end)
        } else if let Some((a, b)) = base.split_once('-') {
            (value(a, field, item)?, value(b, field, item)?)
        } else {
            let a = value(base, field, item)?;
            (a, if step.is_some() { field.max } else { a })
        };
        if end < start {
            return Err(format!(
                "`{}`: the range `{item}` ends before it starts",
                field.name
            ));
        }
        ranges.push(Range {
            start,
            end,
            step: step.unwrap_or(1),
        });
    }
    Ok(ranges)
}

fn value(text: &str, field: &Field, item: &str) -> Result<i32, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let named = (lower.len() >= 3)
        .then(|| field.names.iter().position(|n| n.starts_with(&lower)))
        .flatten()
        .map(|i| i as i32 + field.min);
    let n = match named {
        Some(n) => n,
        None => text.parse().map_err(|_| {
            format!(
                "`{}`: `{text}` in `{item}` is not a number{}",
                field.name,
                if field.names.is_empty() {
                    ""
                } else {
                    " or a name"
                }
            )
        })?,
    };
    if n < field.min || n > field.max {
        return Err(format!(
            "`{}`: {n} in `{item}` is out of range {}-{}",
            field.name, field.min, field.max
        ));
    }
    Ok(n)
}

/// A `CalendarSpec`'s strings as a structured calendar (empty strings take Temporal's
/// defaults: second, minute and hour 0, the rest every value).
fn structured(calendar: &CalendarSpec) -> Result<StructuredCalendarSpec, String> {
    let field = |expr: &str, field: &Field, default: &str| {
        parse_field(
            if expr.trim().is_empty() {
                default
            } else {
                expr
            },
            field,
        )
    };
    Ok(StructuredCalendarSpec {
        second: field(&calendar.second, &SECOND, "0")?,
        minute: field(&calendar.minute, &MINUTE, "0")?,
        hour: field(&calendar.hour, &HOUR, "0")?,
        day_of_month: field(&calendar.day_of_month, &DAY_OF_MONTH, "*")?,
        month: field(&calendar.month, &MONTH, "*")?,
        // Every year is no restriction at all: Temporal leaves it empty.
        year: match calendar.year.trim() {
            "" | "*" => Vec::new(),
            year => field(year, &YEAR, "*")?,
        },
        day_of_week: field(&calendar.day_of_week, &DAY_OF_WEEK, "*")?,
        comment: calendar.comment.clone(),
    })
}

/// Gives every range of `calendar` an end no earlier than its start and a step of at
/// least 1.
fn make_whole(calendar: &mut StructuredCalendarSpec) {
    let StructuredCalendarSpec {
        second,
        minute,
        hour,
        day_of_month,
        month,
        year,
        day_of_week,
        comment: _,
    } = calendar;
    for ranges in [second, minute, hour, day_of_month, month, year, day_of_week] {
        for range in ranges {
            range.end = range.end.max(range.start);
            range.step = range.step.max(1);
        }
    }
}

/// What one cron string means.
enum Cron {
    Calendar(StructuredCalendarSpec),
    Interval(IntervalSpec),
}

/// Parses a cron string the way Temporal does: 5 fields (minute hour day-of-month month
/// day-of-week), 6 (… year) or 7 (second …); `@every 10m[/2m]`; `@yearly`, `@monthly`,
/// `@weekly`, `@daily`, `@hourly`; a leading `CRON_TZ=zone`; a trailing `# comment`.
fn parse_cron(text: &str, time_zone: &mut String) -> Result<Cron, String> {
    let (body, comment) = match text.split_once('#') {
        Some((body, comment)) => (body.trim(), comment.trim().to_owned()),
        None => (text.trim(), String::new()),
    };
    let mut body = body;
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = body.strip_prefix(prefix) {
            let (zone, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !time_zone.is_empty() && time_zone != zone {
                return Err(format!(
                    "cron string `{text}`: its time zone `{zone}` differs from the spec's \
                     `{time_zone}`"
                ));
            }
            *time_zone = zone.to_owned();
            body = rest.trim();
        }
    }
    if let Some(every) = body.strip_prefix("@every") {
        let (every, phase) = match every.trim().split_once('/') {
            Some((every, phase)) => (every, Some(phase)),
            None => (every.trim(), None),
        };
        let parse = |d: &str| {
            parse_duration(d.trim()).ok_or_else(|| {
                format!("cron string `{text}`: `{d}` is not a duration like 90s, 10m, 1h30m or 1d")
            })
        };
        return Ok(Cron::Interval(IntervalSpec {
            interval: Some(proto::proto_duration(parse(every)?)),
            phase: phase.map(parse).transpose()?.map(proto::proto_duration),
        }));
    }
    let expanded = match body {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other if other.starts_with('@') => {
            return Err(format!(
                "cron string `{text}`: unknown `{other}`; use @every, @yearly, @monthly, \
                 @weekly, @daily or @hourly"
            ))
        }
        other => other,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let (second, rest) = match fields.len() {
        5 | 6 => ("0", &fields[..]),
        7 => (fields[0], &fields[1..]),
        n => {
            return Err(format!(
                "cron string `{text}` has {n} fields; expected 5 (minute hour day-of-month \
                 month day-of-week), 6 (… year) or 7 (second …)"
            ))
        }
    };
    let calendar = CalendarSpec {
        second: second.to_owned(),
        minute: rest[0].to_owned(),
        hour: rest[1].to_owned(),
        day_of_month: rest[2].to_owned(),
        month: rest[3].to_owned(),
        day_of_week: rest[4].to_owned(),
        year: rest.get(5).copied().unwrap_or("*").to_owned(),
        comment,
    };
    structured(&calendar)
        .map(Cron::Calendar)
        .map_err(|e| format!("cron string `{text}`: {e}"))
}

/// `90s`, `10m`, `1h30m`, `1d`, `500ms`: a sum of numbers with units.
fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return None,
        };
        total += unit * n as u32;
        rest = &rest[unit_len..];
    }
    (!total.is_zero()).then_some(total)
}

/// Rewrites the string forms of `spec` into structured calendars and intervals, and checks
/// everything else; the error says which part is wrong.
///
/// As on Temporal: the structured calendars given come first, then the calendars', then
/// the cron strings'; every range is whole (an end before its start is the start, a step
/// of 0 is 1), and a year of `*` is left empty (every year).
pub(crate) fn canonicalize(spec: &mut ScheduleSpec) -> Result<(), String> {
    for calendar in std::mem::take(&mut spec.calendar) {
        spec.structured_calendar.push(structured(&calendar)?);
    }
    for cron in std::mem::take(&mut spec.cron_string) {
        match parse_cron(&cron, &mut spec.timezone_name)? {
            Cron::Calendar(calendar) => spec.structured_calendar.push(calendar),
            Cron::Interval(interval) => spec.interval.push(interval),
        }
    }
    for calendar in spec
        .structured_calendar
        .iter_mut()
        .chain(&mut spec.exclude_structured_calendar)
    {
        make_whole(calendar);
    }
    // Deprecated in favour of the structured form, but still sent by older clients.
    #[allow(deprecated)]
    let excludes = std::mem::take(&mut spec.exclude_calendar);
    for calendar in excludes {
        spec.exclude_structured_calendar
            .push(structured(&calendar)?);
    }
    Spec::compile(spec).map(|_| ())
}

/// The spec of a workflow's cron schedule (`StartWorkflowExecution.cron_schedule`): the
/// same cron strings as a schedule's, in UTC unless `CRON_TZ=` says otherwise.
pub(crate) fn cron_spec(cron: &str) -> Result<Spec, String> {
    let mut spec = ScheduleSpec {
        cron_string: vec![cron.to_owned()],
        ..Default::default()
    };
    canonicalize(&mut spec)?;
    Spec::compile(&spec)
}

/// A bound on the work of a search of a spec's times, in steps: each candidate time and
/// each calendar day looked at spends one. A spec that matches rarely, or excludes nearly
/// all it matches, may need millions of steps per time; a search that must answer within
/// bounds (matching times, a backfill) gives up when its budget runs out.
#[derive(Debug)]
pub(crate) struct Budget {
    steps: u64,
}

impl Budget {
    pub(crate) fn new(steps: u64) -> Self {
        Self { steps }
    }

    /// No bound beyond the spec's own (100,000 excluded times, 200 years of days).
    fn unlimited() -> Self {
        Self::new(u64::MAX)
    }

    /// Whether the search gave up for want of steps.
    pub(crate) fn exhausted(&self) -> bool {
        self.steps == 0
    }

    fn spend(&mut self) -> bool {
        if self.steps == 0 {
            return false;
        }
        self.steps -= 1;
        true
    }
}

/// A compiled spec: finds the action times.
#[derive(Debug)]
pub(crate) struct Spec {
    /// `(every, phase)` in nanoseconds since the epoch.
    intervals: Vec<(i128, i128)>,
    calendars: Vec<Calendar>,
    excludes: Vec<Calendar>,
    start: Option<SystemTime>,
    end: Option<SystemTime>,
    jitter: Duration,
    tz: Tz,
}

impl Spec {
    /// Compiles a canonical spec (see [`canonicalize`]).
    pub(crate) fn compile(spec: &ScheduleSpec) -> Result<Self, String> {
        let tz = match spec.timezone_name.as_str() {
            "" | "UTC" | "Etc/UTC" => Tz::UTC,
            name => name.parse::<Tz>().map_err(|_| {
                format!("unknown time zone `{name}`: use an IANA name such as `Europe/Paris`")
            })?,
        };
        let mut intervals = Vec::new();
        for interval in &spec.interval {
            let every = proto::duration(interval.interval.as_ref())
                .filter(|d| *d >= Duration::from_secs(1))
                .ok_or("an interval must be at least 1 second")?;
            let phase = proto::duration(interval.phase.as_ref()).unwrap_or_default();
            intervals.push((every.as_nanos() as i128, phase.as_nanos() as i128));
        }
        let calendars = spec
            .structured_calendar
            .iter()
            .map(Calendar::new)
            .collect::<Result<_, _>>()?;
        let excludes = spec
            .exclude_structured_calendar
            .iter()
            .map(Calendar::new)
            .collect::<Result<_, _>>()?;
        let time = |t: Option<&prost_wkt_types::Timestamp>| {
            t.filter(|t| t.seconds > 0 || t.nanos > 0)
                .map(|t| UNIX_EPOCH + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32))
        };
        Ok(Self {
            intervals,
            calendars,
            excludes,
            start: time(spec.start_time.as_ref()),
            end: time(spec.end_time.as_ref()),
            jitter: proto::duration(spec.jitter.as_ref()).unwrap_or_default(),
            tz,
        })
    }

    /// The first action time strictly after `after` (before jitter), if any.
    pub(crate) fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        self.next_within(after, &mut Budget::unlimited())
    }

    /// [`Spec::next_after`] within `budget`: `None` also when the budget runs out.
    fn next_within(&self, after: SystemTime, budget: &mut Budget) -> Option<SystemTime> {
        let mut after = after;
        if let Some(start) = self.start {
            // The start time itself may match.
            after = after.max(start.checked_sub(Duration::from_nanos(1)).unwrap_or(start));
        }
        // Excluded times are skipped; a spec that excludes every match ends somewhere.
        for _ in 0..100_000 {
            if !budget.spend() {
                return None;
            }
            let next = self
                .intervals
                .iter()
                .map(|&(every, phase)| next_interval(every, phase, after))
                .chain(
                    self.calendars
                        .iter()
                        .filter_map(|c| c.next_after(&self.tz, after, budget)),
                )
                .min()?;
            if budget.exhausted() {
                // A calendar gave up: `next` may not be the first match.
                return None;
            }
            if self.end.is_some_and(|end| next > end) {
                return None;
            }
            if self.excludes.iter().any(|c| c.matches(&self.tz, next)) {
                after = next;
                continue;
            }
            return Some(next);
        }
        None
    }

    /// The nominal action times in `[start, end]` (both inclusive), at most `limit`, found
    /// within `budget`: when it runs out (see [`Budget::exhausted`]), the times found so
    /// far, the first ones of the range.
    pub(crate) fn times_between(
        &self,
        start: SystemTime,
        end: SystemTime,
        limit: usize,
        budget: &mut Budget,
    ) -> Vec<SystemTime> {
        let mut times = Vec::new();
        let mut t = start.checked_sub(Duration::from_nanos(1)).unwrap_or(start);
        while times.len() < limit {
            let Some(nominal) = self.next_within(t, budget).filter(|n| *n <= end) else {
                break;
            };
            times.push(nominal);
            t = nominal;
        }
        times
    }

    /// The delay after the nominal time `nominal` at which the action happens: a fixed
    /// pseudo-random share of the jitter for this schedule and time, never reaching the
    /// following nominal time.
    pub(crate) fn jitter(&self, seed: &str, nominal: SystemTime) -> Duration {
        self.jitter_within(seed, nominal, &mut Budget::unlimited())
    }

    /// [`Spec::jitter`] within `budget` (if it runs out, the jitter is bounded by the
    /// spec's alone).
    pub(crate) fn jitter_within(
        &self,
        seed: &str,
        nominal: SystemTime,
        budget: &mut Budget,
    ) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let mut max = self.jitter;
        if let Some(following) = self.next_within(nominal, budget) {
            max = max.min(following.duration_since(nominal).unwrap_or_default());
        }
        let nanos = nominal
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        // FNV-1a: stable across processes and releases, so a restarted engine agrees.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in seed.bytes().chain(nanos.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let max_nanos = max.as_nanos().max(1) as u64;
        Duration::from_nanos(hash % max_nanos)
    }
}

fn next_interval(every: i128, phase: i128, after: SystemTime) -> SystemTime {
    let n = match after.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let phase = phase.rem_euclid(every);
    let k = (n - phase).div_euclid(every) + 1;
    let at = phase + k * every;
    UNIX_EPOCH + Duration::from_nanos(at.max(0) as u64)
}

/// A structured calendar as bit sets.
#[derive(Debug)]
struct Calendar {
    seconds: u64,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Empty: every year.
    years: Vec<Range>,
}

fn bits(ranges: &[Range], field: &Field, default: &[Range]) -> Result<u64, String> {
    let ranges = if ranges.is_empty() { default } else { ranges };
    let mut set = 0u64;
    for r in ranges {
        let end = if r.end < r.start { r.start } else { r.end };
        if r.start < field.min || end > field.max {
            return Err(format!(
                "`{}`: the range {}-{} is outside {}-{}",
                field.name, r.start, end, field.min, field.max
            ));
        }
        let step = r.step.max(1) as usize;
        for v in (r.start..=end).step_by(step) {
            // Weekday 7 is Sunday.
            let v = if field.name == "day_of_week" {
                v % 7
            } else {
                v
            };
            set |= 1 << v;
        }
    }
    Ok(set)
}

fn all(field: &Field) -> Vec<Range> {
    vec![Range {
        start: field.min,
        end: field.max,
        step: 1,
    }]
}

fn zero() -> Vec<Range> {
    vec![Range {
        start: 0,
        end: 0,
        step: 1,
    }]
}

impl Calendar {
    fn new(spec: &StructuredCalendarSpec) -> Result<Self, String> {
        for r in &spec.year {
            if r.start < YEAR.min || r.end.max(r.start) > YEAR.max {
                return Err(format!(
                    "`year`: {} is outside {}-{}",
                    r.start, YEAR.min, YEAR.max
                ));
            }
        }
        Ok(Self {
            seconds: bits(&spec.second, &SECOND, &zero())?,
            minutes: bits(&spec.minute, &MINUTE, &zero())?,
            hours: bits(&spec.hour, &HOUR, &zero())? as u32,
            days: bits(&spec.day_of_month, &DAY_OF_MONTH, &all(&DAY_OF_MONTH))? as u32,
            months: bits(&spec.month, &MONTH, &all(&MONTH))? as u16,
            weekdays: bits(&spec.day_of_week, &DAY_OF_WEEK, &all(&DAY_OF_WEEK))? as u8,
            years: spec.year.clone(),
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let year = date.year();
        let year_ok = self.years.is_empty()
            || self.years.iter().any(|r| {
                let end = r.end.max(r.start);
                year >= r.start && year <= end && (year - r.start) % r.step.max(1) == 0
            });
        year_ok
            && self.months & (1 << date.month()) != 0
            && self.days & (1 << date.day()) != 0
            && self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0
    }

    /// The first matching time of day at or after `from`.
    fn time_from(&self, from: NaiveTime) -> Option<NaiveTime> {
        let (h0, m0, s0) = (from.hour(), from.minute(), from.second());
        for h in h0..24 {
            if self.hours & (1 << h) == 0 {
                continue;
            }
            let m_from = if h == h0 { m0 } else { 0 };
            for m in m_from..60 {
                if self.minutes & (1 << m) == 0 {
                    continue;
                }
                let s_from = if h == h0 && m == m0 { s0 } else { 0 };
                if let Some(s) = (s_from..60).find(|s| self.seconds & (1 << s) != 0) {
                    return NaiveTime::from_hms_opt(h, m, s);
                }
            }
        }
        None
    }

    /// The first matching whole second strictly after `after`, in `tz`; each day looked at
    /// spends a step of `budget`.
    fn next_after(&self, tz: &Tz, after: SystemTime, budget: &mut Budget) -> Option<SystemTime> {
        let floor = match after.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(_) => -1,
        };
        let first = floor + 1;
        let local = DateTime::<Utc>::from_timestamp(first, 0)?
            .with_timezone(tz)
            .naive_local();
        let mut date = local.date();
        let mut from = Some(local.time());
        // A calendar matching nothing for 200 years matches nothing.
        for _ in 0..(366 * 200) {
            if !budget.spend() {
                return None;
            }
            if self.day_matches(date) {
                let mut start = from.unwrap_or(NaiveTime::MIN);
                while let Some(time) = self.time_from(start) {
                    // A local time in a daylight-saving gap does not exist; in a fold,
                    // the first occurrence counts.
                    match tz.from_local_datetime(&date.and_time(time)).earliest() {
                        Some(at) if at.timestamp() >= first => {
                            return Some(UNIX_EPOCH + Duration::from_secs(at.timestamp() as u64));
                        }
                        _ => match time.overflowing_add_signed(chrono::TimeDelta::seconds(1)) {
                            (next, 0) => start = next,
                            _ => break,
                        },
                    }
                }
            }
            date = date.succ_opt()?;
            from = None;
        }
        None
    }

    /// Whether `at` is a whole second this calendar matches.
    fn matches(&self, tz: &Tz, at: SystemTime) -> bool {
        let Ok(d) = at.duration_since(UNIX_EPOCH) else {
            return false;
        };
        if d.subsec_nanos() != 0 {
            return false;
        }
        let Some(utc) = DateTime::<Utc>::from_timestamp(d.as_secs() as i64, 0) else {
            return false;
        };
        let local = utc.with_timezone(tz).naive_local();
        self.day_matches(local.date()) && self.time_from(local.time()) == Some(local.time())
    }
}

#[cfg(test)]
mod tests;
