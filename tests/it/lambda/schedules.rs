//! Managed schedules (issue 21) through the function: Scheduler envelopes with a `definition`,
//! delivered as EventBridge Scheduler would (at chosen scheduled times, twice for duplicates),
//! through the handler with a real idempotency table (moto DynamoDB) to the emulator. Every test
//! counts the BOT POSTs the emulator received.

use cloudbot_calendar::wire::state;
use cloudbot_trigger::table::KEY_ATTRIBUTE;
use serde_json::{Value, json};

use super::Harness;
use crate::support::requests_to;

/// The ARN of the schedule `name` in the stack's group (the Scheduler schedule is named after
/// the definition).
fn arn(name: &str) -> String {
    format!("arn:aws:scheduler:us-east-1:123456789012:schedule/cloudbot-trigger/{name}")
}

/// The target input `cloudbot schedules apply` writes (`cloudbot_calendar::wire::target_input`),
/// with the Scheduler's placeholders filled in for the tick at `scheduled_time`.
fn delivery(h: &Harness, definition: Value, scheduled_time: &str, backfill: bool) -> Value {
    let mut definition = definition;
    definition["bot_endpoint"] = json!(bot(h));
    let schedule = cloudbot_calendar::Schedule::from_value(definition).unwrap();
    let mut input = cloudbot_calendar::wire::target_input(&schedule);
    input["schedule"]["schedule_arn"] = json!(arn(schedule.name.as_str()));
    input["schedule"]["scheduled_time"] = json!(scheduled_time);
    if backfill {
        input["schedule"]["backfill"] = json!(true);
    }
    input
}

fn bot(h: &Harness) -> String {
    format!("{}/demo/bots/echo_bot/jobs", h.emulator.base_url())
}

fn posts(h: &Harness) -> usize {
    requests_to(&h.emulator, "POST", "/demo/bots/").len()
}

/// The keys of the idempotency records written (not the schedules' state records).
async fn keys(h: &Harness) -> Vec<String> {
    let table = h.table.as_deref().expect("a table");
    crate::support::moto::serial_moto()
        .items(table)
        .await
        .iter()
        .map(|item| item[KEY_ATTRIBUTE].as_s().unwrap().clone())
        .filter(|key| !key.starts_with(state::KEY_PREFIX) || key.contains('@'))
        .collect()
}

/// The state record of the schedule `name` (attribute -> its string or number as text).
async fn state_of(h: &Harness, name: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let table = h.table.as_deref().expect("a table");
    let items = crate::support::moto::serial_moto().items(table).await;
    let item = items
        .iter()
        .find(|item| item[KEY_ATTRIBUTE].as_s().unwrap() == &state::key(name))?;
    Some(
        item.iter()
            .map(|(k, v)| {
                let text = v.as_s().or_else(|_| v.as_n()).cloned().unwrap_or_default();
                (k.clone(), text)
            })
            .collect(),
    )
}

/// Every day at 09:00 Tokyo (00:00Z), Saturdays, Sundays and national holidays closed.
fn daily() -> Value {
    json!({"name": "daily-report", "at": "09:00", "recurrence": "daily",
        "bot_endpoint": "https://placeholder.invalid/demo/bots/echo_bot/jobs"})
}

/// The 25th at 09:00 Tokyo, on the next business day when the 25th is closed.
fn payday() -> Value {
    json!({"name": "payday", "at": "09:00", "recurrence": {"monthly": 25},
        "on_closed": "next_business_day",
        "bot_endpoint": "https://placeholder.invalid/demo/bots/echo_bot/jobs"})
}

#[tokio::test]
async fn a_holiday_tick_sends_nothing_and_says_which_holiday() {
    let h = Harness::start().await;
    // Monday 2026-11-23 is 勤労感謝の日. Delivered late too: a skip is decided first.
    for _ in 0..2 {
        let answer = h
            .invoke(delivery(&h, daily(), "2026-11-23T00:00:00Z", false))
            .await
            .unwrap();
        assert_eq!(answer["decision"], "skipped", "{answer}");
        assert_eq!(answer["reason"], "holiday");
        assert_eq!(answer["name"], "勤労感謝の日");
        assert_eq!(answer["day"], "2026-11-23");
        assert_eq!(answer["schedule"], "daily-report");
    }
    assert_eq!(posts(&h), 0);
    assert!(keys(&h).await.is_empty(), "a skip claims no key");
    assert_eq!(h.secret_reads.get(), 0, "a skip reads no secret");
}

#[tokio::test]
async fn a_shifted_run_starts_one_job_on_the_shifted_day_and_none_on_the_nominal_day() {
    let h = Harness::start().await;
    // Sunday 2026-10-25: the payday run moves to Monday 2026-10-26. Both ticks are in the past,
    // so they come as the CLI's catch-up deliveries (backfill: lateness is not checked).
    for _ in 0..2 {
        let nominal = h
            .invoke(delivery(&h, payday(), "2026-10-25T00:00:00Z", true))
            .await
            .unwrap();
        assert_eq!(nominal["decision"], "skipped", "{nominal}");
        assert_eq!(nominal["reason"], "shifted");
        assert_eq!(nominal["to"], "2026-10-26");
    }
    assert_eq!(posts(&h), 0, "nothing on the nominal day");
    let first = h
        .invoke(delivery(&h, payday(), "2026-10-26T00:00:00Z", true))
        .await
        .unwrap();
    let second = h
        .invoke(delivery(&h, payday(), "2026-10-26T00:00:00Z", true))
        .await
        .unwrap();
    assert_eq!(
        (&first["replay"], &second["replay"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(posts(&h), 1);
    assert_eq!(h.emulator.jobs().len(), 1);
    // Keyed on the nominal occurrence (the 25th at 09:00 Tokyo), not on the tick.
    assert_eq!(
        keys(&h).await,
        [format!("schedule:{}@2026-10-25T00:00:00Z", arn("payday"))]
    );
}

#[tokio::test]
async fn a_late_delivery_is_refused_unless_it_is_a_backfill() {
    let h = Harness::start().await;
    // Tuesday 2026-11-24, a business day, delivered long after its hour of max_lateness.
    let err = h
        .invoke(delivery(&h, daily(), "2026-11-24T00:00:00Z", false))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "Schedule.TooLate", "{}", err.error_message);
    assert!(err.error_message.contains("daily-report"));
    assert_eq!(posts(&h), 0);
    assert!(keys(&h).await.is_empty());
    let answer = h
        .invoke(delivery(&h, daily(), "2026-11-24T00:00:00Z", true))
        .await
        .unwrap();
    assert_eq!(answer["replay"], false, "{answer}");
    assert_eq!(posts(&h), 1);
}

#[tokio::test]
async fn a_tick_past_the_holiday_data_is_calendar_stale_and_sends_nothing() {
    let h = Harness::start().await;
    let err = h
        .invoke(delivery(&h, daily(), "2031-06-02T00:00:00Z", true))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "Calendar.Stale", "{}", err.error_message);
    assert_eq!(posts(&h), 0);
    assert!(keys(&h).await.is_empty());
}

#[tokio::test]
async fn a_definition_mistake_is_named_and_nothing_is_sent() {
    let h = Harness::start().await;
    let mut event = delivery(&h, daily(), "2026-11-24T00:00:00Z", true);
    event["schedule"]["definition"]["at"] = json!("9 o'clock");
    let err = h.invoke(event).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("schedule.definition.at"),
        "{}",
        err.error_message
    );
    assert_eq!(posts(&h), 0);
    // The ARN must name the definition's schedule (the state record is found by it).
    let mut event = delivery(&h, daily(), "2026-11-24T00:00:00Z", true);
    event["schedule"]["schedule_arn"] = json!(arn("another"));
    let err = h.invoke(event).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("schedule.schedule_arn"),
        "{}",
        err.error_message
    );
    assert_eq!(posts(&h), 0);
}

/// The DecideTick state's request: the same delivery, asking for the decision only.
fn decide_only(delivery: Value) -> Value {
    let mut event = delivery;
    event["operation"] = json!("schedule_tick");
    event
}

#[tokio::test]
async fn schedule_tick_decides_with_the_function_targets_code_and_sends_nothing() {
    let h = Harness::start().await;
    // A holiday: the same skip answer as the function target's.
    let holiday = h
        .invoke(decide_only(delivery(
            &h,
            daily(),
            "2026-11-23T00:00:00Z",
            false,
        )))
        .await
        .unwrap();
    assert_eq!(holiday["decision"], "skipped", "{holiday}");
    assert_eq!(holiday["reason"], "holiday");
    assert_eq!(holiday["name"], "勤労感謝の日");
    // The shifted day runs under the nominal occurrence's key.
    let run = h
        .invoke(decide_only(delivery(
            &h,
            payday(),
            "2026-10-26T00:00:00Z",
            true,
        )))
        .await
        .unwrap();
    assert_eq!(run["decision"], "run", "{run}");
    assert_eq!(
        run["idempotency_key"],
        format!("schedule:{}@2026-10-25T00:00:00Z", arn("payday"))
    );
    assert_eq!(
        (&run["day"], &run["nominal"]),
        (&json!("2026-10-26"), &json!("2026-10-25"))
    );
    assert_eq!(run["schedule"], "payday");
    // A late run is refused with the same error.
    let err = h
        .invoke(decide_only(delivery(
            &h,
            daily(),
            "2026-11-24T00:00:00Z",
            false,
        )))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "Schedule.TooLate", "{}", err.error_message);
    // Deciding never sends, claims or reads a secret.
    assert_eq!(posts(&h), 0);
    assert!(keys(&h).await.is_empty());
    assert_eq!(h.secret_reads.get(), 0);
}

#[tokio::test]
async fn schedule_tick_is_refused_without_a_definition_or_with_a_key_of_its_own() {
    let h = Harness::start().await;
    let mut plain = decide_only(delivery(&h, daily(), "2026-11-24T00:00:00Z", true));
    plain["schedule"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "schedule_arn" || k == "scheduled_time");
    let err = h.invoke(plain).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert!(
        err.error_message.contains("schedule.definition"),
        "{}",
        err.error_message
    );
    let mut other = delivery(&h, daily(), "2026-11-24T00:00:00Z", true);
    other["operation"] = json!("execute");
    let err = h.invoke(other).await.unwrap_err();
    assert!(
        err.error_message.contains("`operation`"),
        "{}",
        err.error_message
    );
    let mut keyed = decide_only(delivery(&h, daily(), "2026-11-24T00:00:00Z", true));
    keyed["task_token"] = json!("t");
    let err = h.invoke(keyed).await.unwrap_err();
    assert!(
        err.error_message.contains("`task_token`"),
        "{}",
        err.error_message
    );
    assert_eq!(posts(&h), 0);
}

#[tokio::test]
async fn the_state_record_says_what_each_tick_did() {
    let h = Harness::start().await;
    // A holiday: skipped, nothing of a job.
    h.invoke(delivery(&h, daily(), "2026-11-23T00:00:00Z", false))
        .await
        .unwrap();
    let skipped = state_of(&h, "daily-report").await.expect("a state record");
    assert_eq!(skipped[state::LAST_OUTCOME], "skipped", "{skipped:?}");
    assert!(skipped.contains_key(state::LAST_OUTCOME_AT));
    assert!(!skipped.contains_key(state::LAST_JOB));
    // A late delivery: too_late.
    h.invoke(delivery(&h, daily(), "2026-11-24T00:00:00Z", false))
        .await
        .unwrap_err();
    let late = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(late[state::LAST_OUTCOME], "too_late");
    // A run (the function as the target): the job, the nominal occurrence, the threshold.
    let answer = h
        .invoke(delivery(&h, payday(), "2026-10-26T00:00:00Z", true))
        .await
        .unwrap();
    let started = state_of(&h, "payday").await.unwrap();
    assert_eq!(started[state::LAST_OUTCOME], "started", "{started:?}");
    assert_eq!(
        started[state::LAST_JOB],
        answer["job_reference_endpoint"].as_str().unwrap()
    );
    assert_eq!(started[state::LAST_NOMINAL], "2026-10-25T00:00:00Z");
    assert_eq!(started[state::FAILURE_BREAKER], "3");
}

#[tokio::test]
async fn a_state_machine_run_is_recorded_from_execute_bots_key_and_only_for_a_managed_schedule() {
    let h = Harness::start().await;
    // DecideTick, then ExecuteBot under the decided key (as TickKey builds it).
    let decided = h
        .invoke(decide_only(delivery(
            &h,
            payday(),
            "2026-10-26T00:00:00Z",
            true,
        )))
        .await
        .unwrap();
    let key = format!(
        "{}#ExecuteBot",
        decided["idempotency_key"].as_str().unwrap()
    );
    let answer = h
        .invoke(json!({"idempotency_key": key, "request": {"bot_endpoint": bot(&h)}}))
        .await
        .unwrap();
    let started = state_of(&h, "payday").await.unwrap();
    assert_eq!(started[state::LAST_OUTCOME], "started", "{started:?}");
    assert_eq!(
        started[state::LAST_JOB],
        answer["job_reference_endpoint"].as_str().unwrap()
    );
    assert_eq!(started[state::LAST_NOMINAL], "2026-10-25T00:00:00Z");
    // The template's own schedule (no definition, never decided): no state record.
    let template_arn =
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/cloudbot-Schedule";
    h.invoke(json!({
        "idempotency_key": format!("schedule:{template_arn}@2026-12-01T00:00:00Z#ExecuteBot"),
        "request": {"bot_endpoint": bot(&h)},
    }))
    .await
    .unwrap();
    assert!(state_of(&h, "cloudbot-Schedule").await.is_none());
}

/// `delivery` of `definition` running the emulator's `bot_id`.
fn delivery_of(h: &Harness, bot_id: &str, definition: Value, at: &str) -> Value {
    let mut event = delivery(h, definition, at, true);
    let endpoint = format!("{}/demo/bots/{bot_id}/jobs", h.emulator.base_url());
    event["schedule"]["definition"]["bot_endpoint"] = json!(endpoint);
    event["request"]["bot_endpoint"] = json!(endpoint);
    event
}

#[tokio::test]
async fn overlap_skips_while_the_previous_job_runs_and_a_duplicate_replays() {
    let h = Harness::start().await;
    // slow_bot runs for 30 s. Tuesday 2026-11-24 starts it.
    let first = h
        .invoke(delivery_of(&h, "slow_bot", daily(), "2026-11-24T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(first["replay"], false, "{first}");
    // Wednesday's tick: the previous job is re-read from Cloud BOT and still executes.
    let skipped = h
        .invoke(delivery_of(&h, "slow_bot", daily(), "2026-11-25T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(skipped["decision"], "skipped", "{skipped}");
    assert_eq!(skipped["reason"], "overlap");
    assert_eq!(skipped["running_job"], first["job_reference_endpoint"]);
    assert_eq!(skipped["running_nominal"], "2026-11-24T00:00:00Z");
    assert_eq!(skipped["day"], "2026-11-25");
    let reads = requests_to(&h.emulator, "GET", "/demo/jobs/").len();
    assert_eq!(reads, 1, "the previous job was read from Cloud BOT");
    // A repeated delivery of the running occurrence is no overlap: it replays its job.
    let again = h
        .invoke(delivery_of(&h, "slow_bot", daily(), "2026-11-24T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again["replay"], true, "{again}");
    assert_eq!(again["job_id"], first["job_id"]);
    assert_eq!(posts(&h), 1);
    // `overlap: allow` runs anyway.
    let mut allow = daily();
    allow["policies"] = json!({"overlap": "allow"});
    let allowed = h
        .invoke(delivery_of(&h, "slow_bot", allow, "2026-11-26T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(allowed["replay"], false, "{allowed}");
    assert_eq!(posts(&h), 2);
}

/// `delivery_of` whose execute waits (`timeout`) until the BOT has ended, so the function
/// learns the job's end from the execute's own answer (the emulator's BOTs end in 300 ms).
fn waited(h: &Harness, bot_id: &str, at: &str) -> Value {
    let mut event = delivery_of(h, bot_id, daily(), at);
    event["request"]["timeout"] = json!(5_000);
    event
}

/// What `cloudbot schedules resume` writes (cli/src/state.rs, `Table::resume`): the pause
/// removed, the count back to 0, `resumed_at`, conditional on the record being paused.
async fn resume(h: &Harness, name: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    crate::support::moto::serial_moto()
        .dynamodb()
        .update_item()
        .table_name(h.table.as_deref().unwrap())
        .key(KEY_ATTRIBUTE, AttributeValue::S(state::key(name)))
        .update_expression("REMOVE #paused, #reason SET #failures = :zero, #resumed = :now")
        .condition_expression("attribute_exists(#paused)")
        .expression_attribute_names("#paused", state::PAUSED_AT)
        .expression_attribute_names("#reason", state::PAUSE_REASON)
        .expression_attribute_names("#failures", state::CONSECUTIVE_FAILURES)
        .expression_attribute_names("#resumed", state::RESUMED_AT)
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .expression_attribute_values(":now", AttributeValue::N("1800000000".into()))
        .send()
        .await
        .expect("resume: the schedule was paused");
}

#[tokio::test]
async fn three_failed_jobs_pause_the_schedule_and_its_next_ticks_send_nothing_until_resumed() {
    let h = Harness::start().await;
    // error_bot ends in error; Tuesday to Thursday, 2026-11-24..26, business days.
    for (day, count) in [("24", "1"), ("25", "2")] {
        let answer = h
            .invoke(waited(&h, "error_bot", &format!("2026-11-{day}T00:00:00Z")))
            .await
            .unwrap();
        assert_eq!(answer["status"], "error", "{answer}");
        let record = state_of(&h, "daily-report").await.unwrap();
        assert_eq!(record[state::CONSECUTIVE_FAILURES], count, "{record:?}");
        assert_eq!(record[state::LAST_OUTCOME], "failed");
        assert_eq!(
            record[state::COUNTED_JOB],
            answer["job_reference_endpoint"].as_str().unwrap()
        );
        assert!(!record.contains_key(state::PAUSED_AT), "{record:?}");
    }
    let third = h
        .invoke(waited(&h, "error_bot", "2026-11-26T00:00:00Z"))
        .await
        .unwrap();
    let paused = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(paused[state::CONSECUTIVE_FAILURES], "3", "{paused:?}");
    assert!(paused.contains_key(state::PAUSED_AT), "{paused:?}");
    let reason = &paused[state::PAUSE_REASON];
    assert!(
        reason.starts_with("3 consecutive failed jobs, last ")
            && reason.ends_with(third["job_reference_endpoint"].as_str().unwrap()),
        "{reason}"
    );
    assert_eq!(posts(&h), 3);
    // Friday's tick, through either target, sends nothing and says why.
    let function = h
        .invoke(waited(&h, "error_bot", "2026-11-27T00:00:00Z"))
        .await
        .unwrap();
    let machine = h
        .invoke(decide_only(waited(&h, "error_bot", "2026-11-27T00:00:00Z")))
        .await
        .unwrap();
    for skipped in [&function, &machine] {
        assert_eq!(skipped["decision"], "skipped", "{skipped}");
        assert_eq!(skipped["reason"], "breaker_paused");
        assert_eq!(skipped["pause_reason"], reason.as_str());
        assert_eq!(
            skipped["paused_at"].to_string(),
            paused[state::PAUSED_AT].as_str()
        );
        assert_eq!(skipped["day"], "2026-11-27");
    }
    assert_eq!(posts(&h), 3, "a paused schedule sends nothing");
    assert_eq!(
        state_of(&h, "daily-report").await.unwrap()[state::LAST_OUTCOME],
        "paused"
    );
    // Resumed as the CLI does it: Monday's tick runs again (echo_bot succeeds: count 0).
    resume(&h, "daily-report").await;
    let monday = h
        .invoke(waited(&h, "echo_bot", "2026-11-30T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(monday["replay"], false, "{monday}");
    assert_eq!(monday["status"], "succeeded", "{monday}");
    assert_eq!(posts(&h), 4);
    let resumed = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(resumed[state::CONSECUTIVE_FAILURES], "0", "{resumed:?}");
    assert_eq!(resumed[state::LAST_OUTCOME], "succeeded");
    assert!(!resumed.contains_key(state::PAUSED_AT), "{resumed:?}");
}

#[tokio::test]
async fn a_success_resets_the_count_and_a_running_job_is_no_end() {
    let h = Harness::start().await;
    for day in ["24", "25"] {
        h.invoke(waited(&h, "error_bot", &format!("2026-11-{day}T00:00:00Z")))
            .await
            .unwrap();
    }
    assert_eq!(
        state_of(&h, "daily-report").await.unwrap()[state::CONSECUTIVE_FAILURES],
        "2"
    );
    h.invoke(waited(&h, "echo_bot", "2026-11-26T00:00:00Z"))
        .await
        .unwrap();
    let reset = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(reset[state::CONSECUTIVE_FAILURES], "0", "{reset:?}");
    assert_eq!(reset[state::LAST_OUTCOME], "succeeded");
    // A job the execute answers still executing (no wait) counts neither way.
    let running = h
        .invoke(delivery_of(
            &h,
            "error_bot",
            daily(),
            "2026-11-27T00:00:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(running["status"], "executing", "{running}");
    let started = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(started[state::CONSECUTIVE_FAILURES], "0", "{started:?}");
    assert_eq!(started[state::LAST_OUTCOME], "started");
    assert_ne!(
        started[state::COUNTED_JOB],
        running["job_reference_endpoint"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_jobs_end_learnt_twice_is_counted_once() {
    use cloudbot_trigger::schedule::state::{Counted, JobEnd, ScheduleStates};
    use cloudbot_trigger::table::DynamoDbStore;
    let h = Harness::start().await;
    // The state machine's way: DecideTick, then ExecuteBot (with a wait) under its key.
    let decided = h
        .invoke(decide_only(waited(&h, "error_bot", "2026-11-24T00:00:00Z")))
        .await
        .unwrap();
    let key = format!(
        "{}#ExecuteBot",
        decided["idempotency_key"].as_str().unwrap()
    );
    let execute_bot = json!({"idempotency_key": key, "request": {
        "bot_endpoint": format!("{}/demo/bots/error_bot/jobs", h.emulator.base_url()),
        "timeout": 5_000}});
    let first = h.invoke(execute_bot.clone()).await.unwrap();
    assert_eq!(first["status"], "error", "{first}");
    // ExecuteBot retried: a replay learns nothing new.
    let replay = h.invoke(execute_bot).await.unwrap();
    assert_eq!(replay["replay"], true, "{replay}");
    let job = first["job_reference_endpoint"].as_str().unwrap();
    let once = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(once[state::CONSECUTIVE_FAILURES], "1", "{once:?}");
    // The same end learnt again (the callback receiver's call after the execute's): nothing.
    let states = ScheduleStates::new(DynamoDbStore::new(
        crate::support::moto::serial_moto().dynamodb(),
        h.table.clone().unwrap(),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    for _ in 0..2 {
        let counted = states
            .ended(
                "daily-report",
                Some("2026-11-24T00:00:00Z"),
                job,
                JobEnd::Failed,
                deadline,
            )
            .await
            .unwrap();
        assert_eq!(counted, Counted::Already);
    }
    assert_eq!(
        state_of(&h, "daily-report").await.unwrap(),
        once,
        "nothing written"
    );
    // Another job's end counts; a schedule that was never decided has no managed record.
    let other = states
        .ended(
            "daily-report",
            Some("2026-11-25T00:00:00Z"),
            "https://x.invalid/demo/jobs/j2",
            JobEnd::Failed,
            deadline,
        )
        .await
        .unwrap();
    assert_eq!(
        other,
        Counted::Now {
            consecutive_failures: 2,
            tripped: None
        }
    );
    let unmanaged = states
        .ended("never-decided", None, job, JobEnd::Failed, deadline)
        .await
        .unwrap();
    assert_eq!(unmanaged, Counted::Unmanaged);
    assert!(state_of(&h, "never-decided").await.is_none());
}

/// A managed schedule's run with `policies.rerun`: each attempt is a job of the same run (the
/// key `…#ExecuteBot#attempt-<n>`), and the breaker counts failed runs, not jobs.
#[tokio::test]
async fn a_runs_failed_re_runs_count_one_failed_run_and_a_re_run_that_succeeds_resets() {
    let h = Harness::start().await;
    // error_bot's jobs end in error, echo_bot's succeed; the state machine's way: DecideTick,
    // then ExecuteBot under the occurrence's key, a re-run under `#attempt-2`.
    let attempt = |decided: &Value, n: u64, bot: &str, previous: &Value| {
        let decided_key = format!(
            "{}#ExecuteBot",
            decided["idempotency_key"].as_str().unwrap()
        );
        let key = if n == 1 {
            decided_key
        } else {
            format!("{decided_key}#attempt-{n}")
        };
        let attempt = if n == 1 {
            json!({"number": 1})
        } else {
            json!({"number": n, "previous_job": previous["job_reference_endpoint"]})
        };
        json!({"idempotency_key": key, "attempt": attempt, "request": {
            "bot_endpoint": format!("{}/demo/bots/{bot}/jobs", h.emulator.base_url()),
            "timeout": 5_000}})
    };
    // Tuesday's run: its job fails, and so does its re-run: one failed run.
    let tuesday = h
        .invoke(decide_only(waited(&h, "error_bot", "2026-11-24T00:00:00Z")))
        .await
        .unwrap();
    let first = h
        .invoke(attempt(&tuesday, 1, "error_bot", &Value::Null))
        .await
        .unwrap();
    assert_eq!(first["status"], "error", "{first}");
    let second = h
        .invoke(attempt(&tuesday, 2, "error_bot", &first))
        .await
        .unwrap();
    assert_eq!(second["status"], "error", "{second}");
    assert_ne!(second["job_id"], first["job_id"], "a re-run is a new job");
    let record = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(record[state::CONSECUTIVE_FAILURES], "1", "{record:?}");
    assert_eq!(record[state::FAILED_NOMINAL], "2026-11-24T00:00:00Z");
    assert_eq!(
        record[state::COUNTED_JOB],
        second["job_reference_endpoint"].as_str().unwrap()
    );
    // Wednesday's run fails (a second failed run), then its re-run succeeds: count 0.
    let wednesday = h
        .invoke(decide_only(waited(&h, "error_bot", "2026-11-25T00:00:00Z")))
        .await
        .unwrap();
    let failed = h
        .invoke(attempt(&wednesday, 1, "error_bot", &Value::Null))
        .await
        .unwrap();
    assert_eq!(
        state_of(&h, "daily-report").await.unwrap()[state::CONSECUTIVE_FAILURES],
        "2"
    );
    let rerun = h
        .invoke(attempt(&wednesday, 2, "echo_bot", &failed))
        .await
        .unwrap();
    assert_eq!(rerun["status"], "succeeded", "{rerun}");
    let record = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(record[state::CONSECUTIVE_FAILURES], "0", "{record:?}");
    assert_eq!(record[state::LAST_OUTCOME], "succeeded");
    assert!(!record.contains_key(state::FAILED_NOMINAL), "{record:?}");
    assert!(!record.contains_key(state::PAUSED_AT), "{record:?}");
}

#[tokio::test]
async fn runbots_polling_counts_a_scheduled_runs_end_through_the_run_ledger() {
    use super::{Setup, Store};
    use std::time::Duration;
    let h = Harness::start_with(Setup {
        ledger: Store::Table,
        ..Setup::default()
    })
    .await;
    // RunBot: DecideTick, ExecuteBot (no wait: the job still executes), then ReferJob polls,
    // which know no key: the schedule is the one the run ledger's start wrote.
    let decided = h
        .invoke(decide_only(delivery_of(
            &h,
            "error_bot",
            daily(),
            "2026-11-24T00:00:00Z",
        )))
        .await
        .unwrap();
    let key = format!(
        "{}#ExecuteBot",
        decided["idempotency_key"].as_str().unwrap()
    );
    let started = h
        .invoke(json!({"idempotency_key": key, "request": {
            "bot_endpoint": format!("{}/demo/bots/error_bot/jobs", h.emulator.base_url())}}))
        .await
        .unwrap();
    assert_eq!(started["status"], "executing", "{started}");
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    crate::support::eventually(Duration::from_secs(10), || {
        h.emulator.job(&job_id).filter(|j| j.status != 2).map(drop)
    })
    .await
    .expect("the job ends");
    let poll = json!({"operation": "refer_job", "public_id": "demo", "job_id": job_id});
    for _ in 0..2 {
        let ended = h.invoke(poll.clone()).await.unwrap();
        assert_eq!(ended["status"], "error", "{ended}");
    }
    let record = state_of(&h, "daily-report").await.unwrap();
    assert_eq!(record[state::CONSECUTIVE_FAILURES], "1", "{record:?}");
    assert_eq!(record[state::LAST_OUTCOME], "failed");
    assert_eq!(
        record[state::COUNTED_JOB],
        started["job_reference_endpoint"].as_str().unwrap()
    );
}
