//! Property tests of the pure parts that read API answers: time parsing and
//! the SDK-to-model conversions. Whatever the service sends, they never panic
//! and never invent a value.

use aws_sdk_imagebuilder::operation::get_workflow_step_execution::GetWorkflowStepExecutionOutput;
use aws_sdk_imagebuilder::types::{
    WorkflowExecutionMetadata, WorkflowStepExecutionStatus, WorkflowStepMetadata,
};
use imagebuilder_exporter::aws::convert::{self, Issues, MAX_TIMEOUT_SECONDS};
use imagebuilder_exporter::aws::Operation;
use imagebuilder_exporter::base::timestamp::{format_rfc3339_millis, parse_rfc3339};
use proptest::prelude::*;

/// Roughly 1685 to 2255, in milliseconds: the span of `Nanos` (i64).
const MIN_MS: i64 = -9_000_000_000_000;
const MAX_MS: i64 = 9_000_000_000_000;

/// `timeoutSeconds` as the service might send it: mostly in the model's
/// range 0..=43,200 (`any::<i32>()` alone would almost never land there),
/// its bounds and their neighbours, and anything else.
fn timeout_seconds() -> impl Strategy<Value = i32> {
    let max = MAX_TIMEOUT_SECONDS as i32;
    prop_oneof![
        4 => 0..=max,
        2 => prop::sample::select(vec![-1, 0, 1, max - 1, max, max + 1, i32::MIN, i32::MAX]),
        2 => any::<i32>(),
    ]
}

#[test]
fn the_timeout_strategy_covers_both_sides_of_the_range() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut inside, mut outside) = (0, 0);
    for _ in 0..1000 {
        let t = timeout_seconds().new_tree(&mut runner).unwrap().current();
        if (0..=MAX_TIMEOUT_SECONDS as i32).contains(&t) {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    assert!(
        inside > 300 && outside > 100,
        "{inside} in range, {outside} out"
    );
}

fn offset() -> impl Strategy<Value = i64> {
    (-23i64..=23, 0i64..60).prop_map(|(h, m)| {
        if h < 0 {
            h * 3600 - m * 60
        } else {
            h * 3600 + m * 60
        }
    })
}

fn offset_text(o: i64) -> String {
    let sign = if o < 0 { '-' } else { '+' };
    let a = o.abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

/// Strings that look like times, often slightly wrong.
fn time_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:?[0-9]{2})?",
        (MIN_MS..MAX_MS).prop_map(|ms| format_rfc3339_millis(ms * 1_000_000)),
    ]
}

proptest! {
    // No regression files: a failure prints its minimal case instead.
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn formatted_times_read_back_exactly(ms in MIN_MS..MAX_MS) {
        let t = ms * 1_000_000;
        prop_assert_eq!(parse_rfc3339(&format_rfc3339_millis(t)), Ok(t));
    }

    #[test]
    fn offsets_shift_to_the_same_instant(ms in 0i64..4_102_444_800_000, o in offset()) {
        let t = ms * 1_000_000;
        // The wall-clock time at offset `o`, written with that offset.
        let local = format_rfc3339_millis(t + o * 1_000_000_000);
        let text = format!("{}{}", local.trim_end_matches('Z'), offset_text(o));
        prop_assert_eq!(parse_rfc3339(&text), Ok(t));
    }

    #[test]
    fn fractions_of_any_length_are_truncated_to_nanoseconds(digits in "[0-9]{1,15}") {
        let text = format!("2026-09-09T19:12:23.{digits}Z");
        let base = parse_rfc3339("2026-09-09T19:12:23Z").unwrap();
        let mut nanos = digits.clone();
        nanos.truncate(9);
        while nanos.len() < 9 { nanos.push('0'); }
        prop_assert_eq!(parse_rfc3339(&text), Ok(base + nanos.parse::<i64>().unwrap()));
    }

    /// Since the `time` crate parses: `:60` only where a leap second can be
    /// (the last minute of a month, UTC), read as the nanosecond before the
    /// next month; anywhere else refused (before, any `:60` was read as the
    /// next minute).
    #[test]
    fn leap_seconds_only_end_a_month(ms in 0i64..4_102_444_800_000, o in offset()) {
        let t = ms * 1_000_000;
        let local = |t: i64| format_rfc3339_millis(t + o * 1_000_000_000);
        let text = |t: i64| format!("{}:60{}", &local(t)[..16], offset_text(o));
        // The minute of `t`, written with second 60.
        let minute = t.div_euclid(60_000_000_000) * 60_000_000_000;
        let next = minute + 60_000_000_000;
        let month_ends = format_rfc3339_millis(next)[8..19] == *"01T00:00:00";
        match parse_rfc3339(&text(t)) {
            Ok(got) => {
                prop_assert!(month_ends, "{} accepted", text(t));
                prop_assert_eq!(got, next - 1);
            }
            Err(_) => prop_assert!(!month_ends, "{} refused", text(t)),
        }
        // The last minute of the month `t` is in is always accepted.
        let month_start = |t: i64| parse_rfc3339(&format!("{}-01T00:00:00Z", &format_rfc3339_millis(t)[..7])).unwrap();
        let next_month = month_start(month_start(t) + 32 * 86_400_000_000_000);
        let last = next_month - 60_000_000_000;
        prop_assert_eq!(parse_rfc3339(&text(last)), Ok(next_month - 1));
    }

    #[test]
    fn anything_else_is_refused_without_panicking(s in time_like()) {
        if let Ok(t) = parse_rfc3339(&s) {
            // Accepted only in RFC 3339 shape.
            let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$").unwrap();
            prop_assert!(re.is_match(&s), "{s:?} accepted as {t}");
        }
    }

    #[test]
    fn listed_steps_never_get_invented_values(
        id in proptest::option::of("[a-z0-9-]{0,12}"),
        name in proptest::option::of("[A-Za-z]{0,8}"),
        action in proptest::option::of("[A-Za-z]{0,8}"),
        status in proptest::option::of(prop_oneof![Just("RUNNING".to_string()), Just("COMPLETED".to_string()), Just("WAITING".to_string()), any::<String>()]),
        start in proptest::option::of(time_like()),
        end in proptest::option::of(time_like()),
        attempt in proptest::option::of(any::<i32>()),
    ) {
        let s = WorkflowStepMetadata::builder()
            .set_step_execution_id(id.clone())
            .set_name(name.clone())
            .set_action(action.clone())
            .set_status(status.clone().map(|s| WorkflowStepExecutionStatus::from(s.as_str())))
            .set_start_time(start.clone())
            .set_end_time(end.clone())
            .set_attempt_number(attempt)
            .build();
        let mut issues = Issues::new(Operation::ListWorkflowStepExecutions);
        match convert::step_execution(&s, &mut issues) {
            Some(step) => {
                prop_assert_eq!(Some(step.id.clone()), id);
                // A status outside the enum is kept verbatim.
                if let Some(st) = status.filter(|s| !s.is_empty()) {
                    prop_assert_eq!(step.status.as_str(), st.as_str());
                }
                // Times only from what parses; durations never negative.
                prop_assert_eq!(step.start, start.as_deref().and_then(|t| parse_rfc3339(t).ok()));
                prop_assert_eq!(step.end, end.as_deref().and_then(|t| parse_rfc3339(t).ok()));
                if let Some(d) = step.duration() { prop_assert!(d >= 0); }
                let unparsed = [&start, &end].iter().filter(|t| t.as_deref().is_some_and(|t| !t.is_empty() && parse_rfc3339(t).is_err())).count();
                let reported = issues.list.iter().filter(|i| i.kind == "bad_time" && i.detail.contains("not an RFC 3339")).count();
                prop_assert_eq!(reported, unparsed, "each unparseable time reported once");
            }
            None => {
                // Skipped only for a missing identifier, and reported.
                let missing = [&id, &name, &action].iter().any(|v| v.as_deref().is_none_or(str::is_empty));
                prop_assert!(missing);
                prop_assert!(issues.list.iter().any(|i| i.kind == "unusable_item"));
            }
        }
    }

    #[test]
    fn timeouts_outside_the_model_are_dropped(timeout in proptest::option::of(timeout_seconds())) {
        let o = GetWorkflowStepExecutionOutput::builder()
            .step_execution_id("step-1")
            .name("Build")
            .action("ExecuteComponents")
            .status(WorkflowStepExecutionStatus::Running)
            .set_timeout_seconds(timeout)
            .build();
        let mut issues = Issues::new(Operation::GetWorkflowStepExecution);
        let d = convert::step_detail(&o, &mut issues).unwrap();
        match timeout {
            Some(t) if (0..=MAX_TIMEOUT_SECONDS as i32).contains(&t) => {
                prop_assert_eq!(d.limits.timeout_seconds, Some(i64::from(t)));
                prop_assert!(issues.list.is_empty());
            }
            Some(_) => {
                prop_assert_eq!(d.limits.timeout_seconds, None);
                prop_assert_eq!(issues.list.len(), 1);
            }
            None => prop_assert_eq!(d.limits.timeout_seconds, None),
        }
    }

    #[test]
    fn workflow_counts_are_never_negative(total in any::<i32>(), ok in any::<i32>(), failed in any::<i32>(), skipped in any::<i32>()) {
        let w = WorkflowExecutionMetadata::builder()
            .workflow_execution_id("wf-1")
            .workflow_build_version_arn("arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/1.0.0/1")
            .total_step_count(total)
            .total_steps_succeeded(ok)
            .total_steps_failed(failed)
            .total_steps_skipped(skipped)
            .build();
        let mut issues = Issues::new(Operation::ListWorkflowExecutions);
        let e = convert::workflow_execution(&w, &mut issues).unwrap();
        for v in [e.total_steps, e.steps_succeeded, e.steps_failed, e.steps_skipped].into_iter().flatten() {
            prop_assert!(v >= 0);
        }
    }
}
