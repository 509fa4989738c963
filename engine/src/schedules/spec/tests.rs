//! Tests of schedule specs: cron forms, calendars, intervals, jitter and time zones.

use super::*;

fn at(text: &str) -> SystemTime {
    let t = DateTime::parse_from_rfc3339(text).expect("an RFC 3339 time");
    UNIX_EPOCH + Duration::from_secs(t.timestamp() as u64)
}

fn text(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn spec(cron: &[&str], tz: &str) -> Spec {
    let mut spec = ScheduleSpec {
        cron_string: cron.iter().map(|c| c.to_string()).collect(),
        timezone_name: tz.to_owned(),
        ..Default::default()
    };
    canonicalize(&mut spec).expect("a valid spec");
    Spec::compile(&spec).unwrap()
}

fn times(spec: &Spec, from: &str, n: usize) -> Vec<String> {
    let mut t = at(from);
    (0..n)
        .map(|_| {
            t = spec.next_after(t).expect("a next time");
            text(t)
        })
        .collect()
}

#[test]
fn weekday_mornings_skip_the_weekend() {
    // 2026-11-27 is a Friday.
    let s = spec(&["0 9 * * MON-FRI"], "");
    assert_eq!(
        times(&s, "2026-11-27T08:00:00Z", 3),
        [
            "2026-11-27T09:00:00Z",
            "2026-11-30T09:00:00Z",
            "2026-12-01T09:00:00Z"
        ]
    );
}

#[test]
fn intervals_keep_their_phase_and_are_strictly_after() {
    let mut spec = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(proto::proto_duration(Duration::from_secs(120))),
            phase: Some(proto::proto_duration(Duration::from_secs(30))),
        }],
        ..Default::default()
    };
    canonicalize(&mut spec).unwrap();
    let s = Spec::compile(&spec).unwrap();
    assert_eq!(
        times(&s, "2026-01-01T00:00:30Z", 2),
        ["2026-01-01T00:02:30Z", "2026-01-01T00:04:30Z"]
    );
}

#[test]
fn cron_forms_become_structured_calendars_and_intervals() {
    let mut spec = ScheduleSpec {
        cron_string: vec![
            "CRON_TZ=Europe/Paris 30 8 1 JAN,jul * # twice a year".to_owned(),
            "@every 90m/15m".to_owned(),
        ],
        ..Default::default()
    };
    canonicalize(&mut spec).unwrap();
    assert!(spec.cron_string.is_empty());
    assert_eq!(spec.timezone_name, "Europe/Paris");
    let calendar = &spec.structured_calendar[0];
    assert_eq!(calendar.comment, "twice a year");
    assert_eq!(
        calendar.month,
        [
            Range {
                start: 1,
                end: 1,
                step: 1
            },
            Range {
                start: 7,
                end: 7,
                step: 1
            }
        ]
    );
    assert_eq!(
        proto::duration(spec.interval[0].interval.as_ref()),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(
        proto::duration(spec.interval[0].phase.as_ref()),
        Some(Duration::from_secs(900))
    );
}

#[test]
fn time_zones_and_daylight_saving_are_honoured() {
    // 08:30 in Paris is 07:30 UTC in winter and 06:30 UTC in summer.
    let s = spec(&["30 8 1 JAN,JUL *"], "Europe/Paris");
    assert_eq!(
        times(&s, "2026-06-01T00:00:00Z", 2),
        ["2026-07-01T06:30:00Z", "2027-01-01T07:30:00Z"]
    );
    // 02:30 does not exist in New York on 2026-03-08 (spring forward): skipped.
    let s = spec(&["30 2 * * *"], "America/New_York");
    assert_eq!(
        times(&s, "2026-03-07T12:00:00Z", 2),
        ["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
    );
}

#[test]
#[allow(deprecated)] // `exclude_calendar`: the string form clients may still send
fn steps_seconds_years_and_exclusions() {
    let s = spec(&["*/20 * * * * * 2027"], "");
    assert_eq!(
        times(&s, "2026-12-31T23:59:59Z", 3),
        [
            "2027-01-01T00:00:00Z",
            "2027-01-01T00:00:20Z",
            "2027-01-01T00:00:40Z"
        ]
    );
    let mut spec = ScheduleSpec {
        cron_string: vec!["@daily".to_owned()],
        exclude_calendar: vec![CalendarSpec {
            day_of_week: "sat,sun".to_owned(),
            ..Default::default()
        }],
        end_time: Some(proto::timestamp(at("2026-12-01T00:00:00Z"))),
        ..Default::default()
    };
    canonicalize(&mut spec).unwrap();
    let s = Spec::compile(&spec).unwrap();
    // 2026-11-28 and 29 are a weekend; the end time is inclusive.
    assert_eq!(
        times(&s, "2026-11-27T00:00:00Z", 2),
        ["2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"]
    );
    assert_eq!(s.next_after(at("2026-12-01T00:00:00Z")), None);
}

#[test]
fn jitter_is_stable_and_below_the_next_action() {
    let mut spec = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(proto::proto_duration(Duration::from_secs(60))),
            phase: None,
        }],
        jitter: Some(proto::proto_duration(Duration::from_secs(3600))),
        ..Default::default()
    };
    canonicalize(&mut spec).unwrap();
    let s = Spec::compile(&spec).unwrap();
    let nominal = at("2026-01-01T00:00:00Z");
    let jitter = s.jitter("reports", nominal);
    assert_eq!(jitter, s.jitter("reports", nominal));
    assert!(jitter < Duration::from_secs(60));
}

#[test]
fn mistakes_are_named() {
    let fail = |cron: &str| {
        let mut spec = ScheduleSpec {
            cron_string: vec![cron.to_owned()],
            ..Default::default()
        };
        canonicalize(&mut spec).unwrap_err()
    };
    assert!(fail("61 * * * *").contains("`minute`: 61 in `61` is out of range 0-59"));
    assert!(fail("0 9 * * FUNDAY").contains("`day_of_week`: `FUNDAY`"));
    assert!(fail("0 9 * *").contains("has 4 fields"));
    assert!(fail("@every soon").contains("is not a duration"));
    assert!(fail("CRON_TZ=Mars/Olympus 0 9 * * *").contains("unknown time zone `Mars/Olympus`"));
}
