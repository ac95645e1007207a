//! Payloads that `lambda_runtime`'s own deserializer used to reject before the handler ran (JSON
//! nested deeper than serde_json's limit, numbers outside the f64 range, bytes that are not JSON):
//! each gets `InvalidRequest` naming the place, fast and with nothing sent, and API Gateway bodies
//! of the same kinds get a 400 problem response.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Harness, http_body};

fn nested_arrays(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

fn nested_objects(depth: usize) -> String {
    r#"{"a":"#.repeat(depth) + "1" + &"}".repeat(depth)
}

/// (case, payload bytes, text the error message must contain).
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let digits = "7".repeat(400);
    vec![
        ("arrays 129 deep", nested_arrays(129).into_bytes(), "nested deeper than 128"),
        ("arrays a million deep", nested_arrays(1_000_000).into_bytes(), "nested deeper"),
        ("objects 5000 deep", nested_objects(5_000).into_bytes(), "at `a.a.a"),
        (
            "deep input of a request",
            format!(r#"{{"public_id":"demo","bot_id":"echo_bot","input":{{"x":{}}}}}"#, nested_arrays(300)).into_bytes(),
            "at `input.x[0][0]",
        ),
        (
            "deep EventBridge detail",
            format!(r#"{{"detail-type":"Run","source":"app","detail":{{"input":{}}}}}"#, nested_objects(400)).into_bytes(),
            "at `detail.input.a.a",
        ),
        (
            "timeout 1e400",
            br#"{"public_id":"demo","bot_id":"echo_bot","timeout":1e400}"#.to_vec(),
            "field `timeout`",
        ),
        (
            "timeout of 400 digits",
            format!(r#"{{"public_id":"demo","bot_id":"echo_bot","timeout":{digits}}}"#).into_bytes(),
            "field `timeout`",
        ),
        (
            "negative huge callback_tries",
            br#"{"public_id":"demo","bot_id":"echo_bot","callback_endpoint":"https://h.example/x","callback_tries":-1e309}"#.to_vec(),
            "field `callback_tries`",
        ),
        (
            "huge number inside input",
            br#"{"public_id":"demo","bot_id":"echo_bot","input":{"list":[1,2,1e500]}}"#.to_vec(),
            "field `input.list[2]`",
        ),
        (
            "huge number in an EventBridge detail",
            br#"{"detail-type":"Run","source":"app","detail":{"timeout":9e99999}}"#.to_vec(),
            "field `detail.timeout`",
        ),
        ("not UTF-8", b"{\"bot_id\": \"\xff\xfe\"}".to_vec(), "not valid JSON"),
        ("not JSON", b"run echo_bot".to_vec(), "not valid JSON"),
        ("cut off", br#"{"public_id":"demo","#.to_vec(), "not valid JSON"),
        ("empty", Vec::new(), "not valid JSON"),
    ]
}

#[tokio::test]
async fn payloads_the_runtime_rejected_get_invalid_request_naming_the_place() {
    let h = Harness::start().await;
    for (case, bytes, needle) in cases() {
        let started = Instant::now();
        let err = h.invoke_bytes(&bytes).await.expect_err(case);
        let took = started.elapsed();
        assert_eq!(err.error_type, "InvalidRequest", "{case}: {err:?}");
        assert!(
            err.error_message.contains(needle),
            "{case}: {:?} lacks {needle:?}",
            err.error_message
        );
        assert!(err.error_message.len() < 600, "{case}: message too long");
        // Generous for a debug build on a shared machine; the point is "not superlinear".
        assert!(took < Duration::from_secs(5), "{case}: took {took:?}");
    }
    assert_eq!(h.upstream_requests(), 0, "nothing reached Cloud BOT");
    assert_eq!(h.secret_reads.get(), 0, "nothing read from Secrets Manager");
}

#[tokio::test]
async fn api_gateway_bodies_of_the_same_kinds_are_400_problems() {
    let h = Harness::start().await;
    let sample = h.event("apigw-v2-execute.json", None);
    for (case, body, needle) in [
        (
            "deep body",
            format!(r#"{{"input":{}}}"#, nested_arrays(200)),
            "nested deeper than 128",
        ),
        ("very deep body", nested_arrays(200_000), "nested deeper"),
        (
            "timeout 1e400",
            r#"{"timeout":1e400}"#.to_owned(),
            "field `timeout`",
        ),
        (
            "huge input number",
            r#"{"input":{"n":-1e400}}"#.to_owned(),
            "field `input.n`",
        ),
    ] {
        let mut event = sample.clone();
        event["body"] = json!(body);
        event["isBase64Encoded"] = json!(false);
        let response = h.invoke(event).await.expect(case);
        assert_eq!(response["statusCode"], 400, "{case}: {response}");
        let problem = http_body(&response);
        assert_eq!(problem["error_type"], "InvalidRequest", "{case}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(needle),
            "{case}: {detail:?} lacks {needle:?}"
        );
    }
    assert_eq!(h.upstream_requests(), 0);
}

#[tokio::test]
async fn a_valid_payload_as_bytes_still_runs() {
    let h = Harness::start().await;
    let ok = h
        .invoke_bytes(br#"{"public_id":"demo","bot_id":"echo_bot","timeout":0}"#)
        .await
        .unwrap();
    assert_eq!(ok["operation"], "execute");
}
