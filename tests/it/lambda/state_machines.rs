//! The state machines' Retry lists agree with the error table's retryable column.
//!
//! The rule, for every Task of `statemachine/*.asl.json` that invokes the function:
//! - every function error type a Retry lists is a row of the table marked retryable (names
//!   starting `Lambda.`, `Sandbox.` or `States.` are the Lambda service's and Step Functions' own,
//!   not ours);
//! - every row marked retryable is listed in one of the Task's Retry entries, unless it is in
//!   [`NOT_RETRIED`] with the reason the state machines leave it to Catch, or in
//!   [`EXECUTE_ONLY`] and the Task is not an execute, or in [`CALLBACK_ONLY`] and the Task does
//!   not pass a task token.

use std::collections::BTreeSet;

use cloudbot_trigger::error::kind;
use serde_json::Value;

/// Retryable rows the state machines deliberately do not retry, and why.
const NOT_RETRIED: &[(&str, &str)] = &[
    (
        "Function.DeadlineExceeded",
        "the function's own timeout was too short for the call: a Step Functions retry runs with \
         the same timeout and fails the same way, so the Task fails fast and the Catch reports it",
    ),
    (
        "Callback.NotReady",
        "an answer of the callback route to Cloud BOT (which retries it), never a Task's error",
    ),
    (
        "Orphans.Unavailable",
        "only the orphan paths (Step Functions' status-change event, the sweep) meet it, never a \
         Task of the state machines",
    ),
];

/// Retryable rows only a callback-driven execute (one that passes `$$.Task.Token`) can produce.
const CALLBACK_ONLY: &[(&str, &str)] = &[(
    "Callback.Unavailable",
    "only an execute with a task token writes a callback record",
)];

/// Retryable rows only an execute can produce, and why.
const EXECUTE_ONLY: &[(&str, &str)] = &[
    (
        "Idempotency.InProgress",
        "only an execute claims an idempotency key; reads never touch the store",
    ),
    (
        "Idempotency.Unavailable",
        "only an execute claims an idempotency key; reads never touch the store",
    ),
];

/// Every Task state of an ASL document, including those inside Map and Parallel states.
fn tasks<'a>(states: &'a serde_json::Map<String, Value>, out: &mut Vec<(String, &'a Value)>) {
    for (name, state) in states {
        if state["Type"] == "Task" {
            out.push((name.clone(), state));
        }
        for nested in [&state["ItemProcessor"], &state["Iterator"]] {
            if let Some(states) = nested["States"].as_object() {
                tasks(states, out);
            }
        }
        if let Some(branches) = state["Branches"].as_array() {
            for branch in branches {
                if let Some(states) = branch["States"].as_object() {
                    tasks(states, out);
                }
            }
        }
    }
}

/// Every state of an ASL document with its name, including those inside Map states.
fn named_states<'a>(
    states: &'a serde_json::Map<String, Value>,
    out: &mut Vec<(String, &'a Value)>,
) {
    for (name, state) in states {
        out.push((name.clone(), state));
        if let Some(states) = state["ItemProcessor"]["States"].as_object() {
            named_states(states, out);
        }
    }
}

fn invokes_the_function(task: &Value) -> bool {
    (task["Resource"] == "arn:aws:states:::lambda:invoke"
        || task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken")
        && task["Parameters"]["FunctionName"] == "${CloudBotFunctionArn}"
}

/// The template's state machine definitions (`statemachine/*.asl.json`; the copy-paste recipes
/// under `statemachine/examples/` are checked by tests/py/test_state_machines.py).
fn template_state_machines() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("statemachine");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(".asl.json"))
        .collect();
    files.sort();
    files
}

#[test]
fn retry_lists_and_the_retryable_column_agree() {
    let mut checked = 0;
    for path in template_state_machines() {
        let asl: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut found = Vec::new();
        tasks(asl["States"].as_object().unwrap(), &mut found);
        for (name, task) in found.into_iter().filter(|(_, t)| invokes_the_function(t)) {
            let at = format!("{}/{name}", path.file_name().unwrap().to_string_lossy());
            // DecideTick (`schedule_tick`) decides a tick and claims no key: like a read, the
            // execute-only rows do not apply to it (it may still retry Idempotency.Unavailable:
            // it writes the schedule's state record).
            let operation = &task["Parameters"]["Payload"]["operation"];
            let is_execute = operation != "refer_job" && operation != "schedule_tick";
            let passes_token = task["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token";
            let retried: BTreeSet<&str> = task["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
                .map(|e| e.as_str().unwrap())
                .collect();
            for error in &retried {
                if ["Lambda.", "Sandbox.", "States."]
                    .iter()
                    .any(|own| error.starts_with(own))
                {
                    continue;
                }
                let row = kind::ALL
                    .iter()
                    .find(|row| row.name == *error)
                    .unwrap_or_else(|| panic!("{at} retries {error}, which is not in the table"));
                assert!(row.retryable, "{at} retries {error}, marked not retryable");
            }
            // DecideRerun (`decide_rerun`) calls no service and no store: none of the table's
            // errors can come from it, only Lambda's own (docs/state-machines.md, "Re-run on
            // failure").
            let calls_nothing = operation == "decide_rerun";
            for row in kind::ALL.iter().filter(|k| k.retryable && !calls_nothing) {
                if NOT_RETRIED.iter().any(|(name, _)| *name == row.name) {
                    assert!(!retried.contains(row.name), "{at} retries {}", row.name);
                    continue;
                }
                if !is_execute && EXECUTE_ONLY.iter().any(|(name, _)| *name == row.name) {
                    continue;
                }
                if !passes_token && CALLBACK_ONLY.iter().any(|(name, _)| *name == row.name) {
                    continue;
                }
                assert!(
                    retried.contains(row.name),
                    "{at} does not retry {}, which the table marks retryable",
                    row.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "found only {checked} function tasks");
}

/// The Lambda service errors AWS's guidance lists for Lambda tasks. A read is safe to repeat, so
/// every ReferJob retries all of them. After them the function may have run and started a job:
/// ExecuteBot retries them too, because it sends an idempotency key built from the execution id
/// (docs/exactly-once.md), so the retry gets the recorded answer instead of a second run.
#[test]
fn every_function_task_retries_the_lambda_service_errors_aws_lists() {
    const AWS_LISTED: [&str; 4] = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
    ];
    let mut refer_jobs = 0;
    for path in template_state_machines() {
        let asl: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut found = Vec::new();
        tasks(asl["States"].as_object().unwrap(), &mut found);
        for (name, task) in found {
            let retried: BTreeSet<&str> = task["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["ErrorEquals"].as_array().unwrap())
                .map(|e| e.as_str().unwrap())
                .collect();
            let at = format!("{}/{name}", path.file_name().unwrap().to_string_lossy());
            match name.as_str() {
                "ReferJob" => {
                    refer_jobs += 1;
                    for error in AWS_LISTED
                        .iter()
                        .chain(["Lambda.TooManyRequestsException"].iter())
                    {
                        assert!(retried.contains(error), "{at} does not retry {error}");
                    }
                }
                // RecoverJob (the callback paths' fallback) repeats ExecuteBot's request and
                // key; ExecuteBotAndWait is RunBotMap's callback-driven execute of an item.
                "ExecuteBot" | "ExecuteBotAndWait" | "RecoverJob" => {
                    let mut key = task["Parameters"]["Payload"]["idempotency_key.$"]
                        .as_str()
                        .unwrap_or_default();
                    // RunBot and RunBotCallback choose the key first (the schedule's run, else
                    // the execution id: ChooseKey; test_template.py checks both choices), a
                    // RunBotMap item in ItemKey; a re-run's key is built on it.
                    if key == "$.key.value" {
                        let mut states = Vec::new();
                        named_states(asl["States"].as_object().unwrap(), &mut states);
                        let chosen = states
                            .iter()
                            .find(|(n, _)| n == "ExecutionKey" || n == "ItemKey")
                            .unwrap_or_else(|| panic!("{at}: no ExecutionKey or ItemKey state"));
                        key = chosen.1["Parameters"]["value.$"]
                            .as_str()
                            .unwrap_or_default();
                    }
                    assert!(
                        key.contains("$$.Execution.Id"),
                        "{at} retries Lambda errors, so it must send an idempotency key"
                    );
                    // Its execution too, whatever the key (docs/orphans.md).
                    assert_eq!(
                        task["Parameters"]["Payload"]["execution.$"], "$$.Execution.Id",
                        "{at} must send its execution"
                    );
                    for error in AWS_LISTED {
                        assert!(retried.contains(error), "{at} does not retry {error}");
                    }
                }
                _ => {}
            }
        }
    }
    assert_eq!(refer_jobs, 3, "one ReferJob per state machine");
}

/// With callbacks on, an idempotency record must outlive the callback timeout by
/// [`CALLBACK_EXPIRY_MARGIN`]: the polling fallback (RecoverJob) finds the job through it. The
/// margin must cover the longest time the state machines can spend on either side of the wait:
/// every retry of the waiting execute before it and of RecoverJob after it, each attempt at its
/// task timeout (a waiting attempt that fails is a failed Lambda invocation, shorter than the
/// Lambda tasks' 120 s) plus its capped backoff.
#[test]
fn the_callback_expiry_margin_covers_the_retries_around_the_wait() {
    use cloudbot_trigger::config::CALLBACK_EXPIRY_MARGIN;
    let retry_time = |task: &Value, attempt_s: u64| -> u64 {
        task["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                r["MaxAttempts"].as_u64().unwrap()
                    * (r["MaxDelaySeconds"].as_u64().unwrap() + attempt_s)
            })
            .sum()
    };
    let mut checked = 0;
    for path in template_state_machines() {
        let asl: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut found = Vec::new();
        tasks(asl["States"].as_object().unwrap(), &mut found);
        let waiting = found
            .iter()
            .find(|(_, t)| t["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken");
        let recover = found.iter().find(|(name, _)| name == "RecoverJob");
        let (Some((_, waiting)), Some((_, recover))) = (waiting, recover) else {
            continue;
        };
        let attempt_s = recover["TimeoutSeconds"].as_u64().unwrap();
        let needed = retry_time(waiting, attempt_s) + retry_time(recover, attempt_s);
        assert!(
            CALLBACK_EXPIRY_MARGIN.as_secs() >= needed,
            "the margin ({} s) is shorter than the retries around a callback wait ({needed} s)",
            CALLBACK_EXPIRY_MARGIN.as_secs()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 2,
        "RunBotCallback and RunBotMap wait for callbacks"
    );
}
