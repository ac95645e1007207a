//! Every sample in `events/` through the handler, each with its expected result.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Harness, events_dir, header, http_body};
use crate::support::eventually;

/// What each sample must produce. A new file in events/ must be added here (checked below).
const SAMPLES: &[(&str, Expect)] = &[
    ("scheduler-input.json", Expect::Executed),
    ("scheduler-envelope.json", Expect::Executed),
    ("scheduled-rule.json", Expect::Executed),
    ("eventbridge-custom.json", Expect::Executed),
    ("sfn-execute.json", Expect::Executed),
    ("sfn-refer-job.json", Expect::Job),
    ("apigw-v1-execute.json", Expect::Http(202)),
    ("apigw-v1-refer-job.json", Expect::Http(200)),
    ("apigw-v1-list-bots.json", Expect::Http(200)),
    ("apigw-v2-execute.json", Expect::Http(202)),
    ("apigw-v2-refer-job.json", Expect::Http(200)),
    ("apigw-v2-list-bots.json", Expect::Http(200)),
    ("apigw-v1-bad-json-body.json", Expect::Http(400)),
    ("bad-request-unknown-field.json", Expect::Invalid("inptu")),
    (
        "bad-request-foreign-host.json",
        Expect::Invalid("bot_endpoint"),
    ),
];

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A job was started: job result with operation execute.
    Executed,
    /// The job (refer_job) came back.
    Job,
    /// An API Gateway response with this status.
    Http(u16),
    /// A Lambda error `InvalidRequest` naming this field, and nothing sent upstream.
    Invalid(&'static str),
}

#[test]
fn every_event_file_has_an_expectation() {
    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

fn assert_started_job(result: &Value, base: &str, operation: &str) {
    assert_eq!(result["operation"], operation, "{result}");
    let job_id = result["job_id"].as_str().expect("job_id");
    assert_eq!(
        result["job_reference_endpoint"],
        format!("{base}/demo/jobs/{job_id}")
    );
    assert_eq!(result["public_id"], "demo");
    assert_eq!(result["bot_id"], "echo_bot");
    assert!(result["bot_name"].is_string());
    for key in [
        "status",
        "status_code",
        "response_code",
        "start_time",
        "elapsed_time",
        "message",
        "output",
    ] {
        assert!(result.get(key).is_some(), "{key} missing in {result}");
    }
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_result() {
    let h = Harness::start().await;
    let base = h.emulator.base_url();
    let job_id = h.start_job().await;
    // Wait for the job to finish so refer_job shows a final status and output.
    let finished = eventually(Duration::from_secs(10), || {
        h.emulator.job(&job_id).filter(|job| job.status != 2)
    })
    .await;
    assert!(finished.is_some(), "the echo job finishes");

    for (name, expect) in SAMPLES {
        let before = h.upstream_requests();
        let jobs_before = h.emulator.stats().jobs_created;
        let result = h.invoke(h.event(name, Some(&job_id))).await;
        match expect {
            Expect::Executed => {
                let ok = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_started_job(&ok, &base, "execute");
                assert_eq!(ok["status"], "executing", "{name}");
                assert_eq!(ok["status_code"], 2, "{name}");
                assert_eq!(ok["response_code"], 201, "{name}");
                assert_eq!(h.emulator.stats().jobs_created, jobs_before + 1, "{name}");
            }
            Expect::Job => {
                let ok = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_started_job(&ok, &base, "refer_job");
                assert_eq!(ok["job_id"], job_id.as_str());
                assert_eq!(ok["status"], "succeeded", "{ok}");
                assert_eq!(ok["status_code"], 0);
                assert!(ok["output"].is_object(), "{ok}");
            }
            Expect::Http(status) => {
                let response = result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(response["statusCode"], *status, "{name}: {response}");
                let body = http_body(&response);
                match status {
                    202 => {
                        assert_started_job(&body, &base, "execute");
                        assert_eq!(
                            header(&response, "location"),
                            body["job_reference_endpoint"].as_str()
                        );
                        assert_eq!(header(&response, "content-type"), Some("application/json"));
                    }
                    200 if name.contains("refer-job") => {
                        assert_started_job(&body, &base, "refer_job");
                        assert_eq!(body["status"], "succeeded");
                    }
                    200 => {
                        assert_eq!(body["operation"], "list_bots");
                        let echo = body["bots"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|b| b["bot_id"] == "echo_bot")
                            .cloned()
                            .expect("echo_bot listed");
                        assert_eq!(
                            echo["bot_endpoint"],
                            format!("{base}/demo/bots/echo_bot/jobs")
                        );
                    }
                    _ => {
                        assert_eq!(
                            header(&response, "content-type"),
                            Some("application/problem+json")
                        );
                        assert_eq!(body["error_type"], "InvalidRequest");
                        assert_eq!(body["status"], *status);
                        assert_eq!(h.upstream_requests(), before, "{name} reached Cloud BOT");
                    }
                }
            }
            Expect::Invalid(field) => {
                let err = result.expect_err(name);
                assert_eq!(err.error_type, "InvalidRequest", "{name}");
                assert!(
                    err.error_message.contains(field),
                    "{name}: {}",
                    err.error_message
                );
                assert_eq!(h.upstream_requests(), before, "{name} reached Cloud BOT");
            }
        }
    }
}

#[tokio::test]
async fn execute_with_a_wait_returns_the_finished_job() {
    let h = Harness::start().await;
    let mut event = h.event("sfn-execute.json", None);
    event["timeout"] = json!(5000);
    let ok = h.invoke(event).await.unwrap();
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_eq!(ok["output"]["echo"], "Hello from Step Functions");
}

#[tokio::test]
async fn a_wait_longer_than_the_invocation_is_shortened_not_abandoned() {
    let h = Harness::start().await;
    // slow_bot runs 3 s; the caller asks Cloud BOT to wait up to 60 s but the invocation has 4 s.
    let event = json!({"public_id": "demo", "bot_id": "slow_bot", "timeout": 60_000});
    let started = std::time::Instant::now();
    let ok = h
        .invoke_with_deadline(event, Duration::from_secs(4))
        .await
        .expect("a running job, not OutcomeUnknown");
    assert_eq!(ok["status"], "executing", "{ok}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.emulator.stats().jobs_created, 1);
}
