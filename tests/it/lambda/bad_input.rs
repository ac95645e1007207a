//! Invalid events: each gets its documented error naming the field, and nothing reaches Cloud BOT
//! (nor Secrets Manager: requests are validated before credentials are read).

use base64::Engine;
use serde_json::{Value, json};

use super::{Harness, Setup, header, http_body};

/// Direct (Step Functions / Scheduler) requests that must fail with `InvalidRequest` naming a field.
fn direct_cases(base: &str) -> Vec<(&'static str, Value, &'static str)> {
    let big = "x".repeat(4 * 1024 * 1024 + 10);
    vec![
        ("string event", json!("run echo_bot"), "request object"),
        ("array event", json!([1, 2]), "request object"),
        (
            "wrong type bot_id",
            json!({"public_id": "demo", "bot_id": 5}),
            "bot_id",
        ),
        (
            "wrong type input",
            json!({"public_id": "demo", "bot_id": "echo_bot", "input": "hi"}),
            "input",
        ),
        (
            "wrong type callback_tries",
            json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "https://hooks.example/x", "callback_tries": "3"}),
            "callback_tries",
        ),
        (
            "negative timeout",
            json!({"public_id": "demo", "bot_id": "echo_bot", "timeout": -1}),
            "timeout",
        ),
        (
            "timeout too long",
            json!({"public_id": "demo", "bot_id": "echo_bot", "timeout": 999_999_999u64}),
            "timeout",
        ),
        (
            "unknown language",
            json!({"public_id": "demo", "bot_id": "echo_bot", "language": "fr"}),
            "language",
        ),
        (
            "unknown operation",
            json!({"operation": "run", "public_id": "demo", "bot_id": "echo_bot"}),
            "operation",
        ),
        (
            "null bot_endpoint",
            json!({"bot_endpoint": null}),
            "bot_endpoint",
        ),
        (
            "unknown field",
            json!({"public_id": "demo", "bot_id": "echo_bot", "bot": "x"}),
            "`bot`",
        ),
        ("typo of input", json!({"inptu": {"message": "x"}}), "inptu"),
        (
            "field of another operation",
            json!({"operation": "refer_job", "bot_id": "echo_bot", "job_id": "abc"}),
            "bot_id",
        ),
        (
            "refer_job field on list_bots",
            json!({"operation": "list_bots", "public_id": "demo", "job_id": "abc"}),
            "job_id",
        ),
        (
            "public_id without bot_id",
            json!({"public_id": "demo"}),
            "bot_id",
        ),
        (
            "bot_endpoint and public_id",
            json!({"bot_endpoint": format!("{base}/demo/bots/echo_bot/jobs"), "public_id": "demo"}),
            "public_id",
        ),
        (
            "refer_job without a job",
            json!({"operation": "refer_job"}),
            "job_reference_endpoint",
        ),
        (
            "job id charset",
            json!({"operation": "refer_job", "public_id": "demo", "job_id": "../bots"}),
            "job_id",
        ),
        (
            "public id charset",
            json!({"public_id": "de mo", "bot_id": "echo_bot"}),
            "public_id",
        ),
        (
            "foreign host",
            json!({"bot_endpoint": "https://attacker.example/demo/bots/echo_bot/jobs"}),
            "bot_endpoint",
        ),
        (
            "foreign port",
            json!({"bot_endpoint": "http://127.0.0.1:1/demo/bots/echo_bot/jobs"}),
            "bot_endpoint",
        ),
        (
            "same port, other host name (another origin)",
            json!({"bot_endpoint": base.replace("127.0.0.1", "localhost") + "/demo/bots/echo_bot/jobs"}),
            "bot_endpoint",
        ),
        (
            "job reference on the same port, other host name",
            json!({"operation": "refer_job", "job_reference_endpoint": base.replace("127.0.0.1", "localhost") + "/demo/jobs/abc"}),
            "job_reference_endpoint",
        ),
        (
            "userinfo",
            json!({"bot_endpoint": base.replace("http://", "http://user:pw@") + "/demo/bots/echo_bot/jobs"}),
            "bot_endpoint",
        ),
        (
            "foreign job reference",
            json!({"operation": "refer_job", "job_reference_endpoint": "https://attacker.example/demo/jobs/abc"}),
            "job_reference_endpoint",
        ),
        (
            "query in endpoint",
            json!({"bot_endpoint": format!("{base}/demo/bots/echo_bot/jobs?x=1")}),
            "bot_endpoint",
        ),
        (
            "http callback",
            json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "http://hooks.example/x"}),
            "callback_endpoint",
        ),
        (
            "ftp callback",
            json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "ftp://hooks.example/x"}),
            "callback_endpoint",
        ),
        (
            "max_run_seconds zero",
            json!({"public_id": "demo", "bot_id": "echo_bot", "max_run_seconds": 0}),
            "max_run_seconds",
        ),
        (
            "max_run_seconds not a number",
            json!({"public_id": "demo", "bot_id": "echo_bot", "max_run_seconds": "1h"}),
            "max_run_seconds",
        ),
        (
            "max_run_seconds on refer_job",
            json!({"operation": "refer_job", "public_id": "demo", "job_id": "j", "max_run_seconds": 60}),
            "max_run_seconds",
        ),
        (
            "callback_tries without endpoint",
            json!({"public_id": "demo", "bot_id": "echo_bot", "callback_tries": 2}),
            "callback_tries",
        ),
        (
            "callback_tries too many",
            json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "https://hooks.example/x", "callback_tries": 11}),
            "callback_tries",
        ),
        (
            "oversized input",
            json!({"public_id": "demo", "bot_id": "echo_bot", "input": {"message": big}}),
            "input",
        ),
        (
            "long unknown field is cut in the message",
            Value::Object([("y".repeat(10_000), json!(1))].into_iter().collect()),
            "yyyy…",
        ),
        (
            "eventbridge detail not an object",
            json!({"detail-type": "Run", "source": "x", "detail": "go"}),
            "detail",
        ),
    ]
}

#[tokio::test]
async fn invalid_direct_requests_name_the_field_and_reach_nothing() {
    let h = Harness::start().await;
    let base = h.emulator.base_url();
    for (case, event, needle) in direct_cases(&base) {
        let err = h.invoke(event).await.expect_err(case);
        assert_eq!(err.error_type, "InvalidRequest", "{case}");
        assert!(
            err.error_message.contains(needle),
            "{case}: {:?} does not mention {needle}",
            err.error_message
        );
        assert!(err.error_message.len() < 600, "{case}: message too long");
    }
    assert_eq!(h.upstream_requests(), 0, "nothing reached Cloud BOT");
    assert_eq!(h.emulator.stats().connections_accepted, 0);
    assert_eq!(h.secret_reads.get(), 0, "nothing read from Secrets Manager");
}

#[tokio::test]
async fn missing_bot_without_a_default_is_rejected() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_DEFAULT_BOT_ENDPOINT", String::new())],
        ..Setup::default()
    })
    .await;
    for event in [
        json!({}),
        json!({"operation": "execute", "input": {"message": "x"}}),
    ] {
        let err = h.invoke(event).await.unwrap_err();
        assert_eq!(err.error_type, "InvalidRequest");
        assert!(
            err.error_message.contains("no BOT named"),
            "{}",
            err.error_message
        );
    }
    // The scheduled sample (empty detail) relies on the default BOT.
    let err = h
        .invoke(h.event("scheduled-rule.json", None))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidRequest");
    assert_eq!(h.upstream_requests(), 0);
}

/// API Gateway events built from the samples: (case, event, status, text the detail contains).
fn http_cases(h: &Harness) -> Vec<(&'static str, Value, u16, &'static str)> {
    let v1 = h.event("apigw-v1-execute.json", None);
    let v2 = h.event("apigw-v2-execute.json", None);
    let with = |mut ev: Value, f: &dyn Fn(&mut Value)| {
        f(&mut ev);
        ev
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let huge_body = json!({"input": {"message": "x".repeat(5 * 1024 * 1024)}}).to_string();
    vec![
        (
            "malformed JSON",
            with(v1.clone(), &|e| e["body"] = json!("{\"input\": ")),
            400,
            "not valid JSON",
        ),
        (
            "body not an object",
            with(v1.clone(), &|e| e["body"] = json!("[1]")),
            400,
            "JSON object",
        ),
        (
            "wrong type",
            with(v1.clone(), &|e| e["body"] = json!("{\"input\": 5}")),
            400,
            "input",
        ),
        (
            "unknown field",
            with(v1.clone(), &|e| e["body"] = json!("{\"inptu\": {}}")),
            400,
            "inptu",
        ),
        (
            "path and body conflict",
            with(v1.clone(), &|e| {
                e["body"] = json!("{\"bot_id\": \"error_bot\"}")
            }),
            400,
            "bot_id",
        ),
        (
            "bot_endpoint in body of a BOT route",
            with(v1.clone(), &|e| {
                e["body"] =
                    json!("{\"bot_endpoint\": \"https://attacker.example/demo/bots/x/jobs\"}")
            }),
            400,
            "bot_endpoint",
        ),
        (
            "http callback",
            with(v1.clone(), &|e| {
                e["body"] = json!("{\"callback_endpoint\": \"http://hooks.example/x\"}")
            }),
            400,
            "callback_endpoint",
        ),
        (
            "broken base64",
            with(v2.clone(), &|e| e["body"] = json!("%%% not base64 %%%")),
            400,
            "base64",
        ),
        (
            "base64 of malformed JSON",
            with(v2.clone(), &|e| e["body"] = json!(b64("{oops"))),
            400,
            "not valid JSON",
        ),
        (
            "empty body on a generic route",
            with(v1.clone(), &|e| {
                e["path"] = json!("/run");
                e["body"] = json!("");
            }),
            400,
            "empty",
        ),
        (
            "no body on a generic route",
            with(v2.clone(), &|e| {
                e["requestContext"]["http"]["path"] = json!("/run");
                e.as_object_mut().unwrap().remove("body");
            }),
            400,
            "empty",
        ),
        (
            "oversized body",
            with(v1.clone(), &|e| e["body"] = json!(huge_body)),
            413,
            "limit",
        ),
        (
            "oversized base64 body",
            with(v2.clone(), &|e| e["body"] = json!(b64(&huge_body))),
            413,
            "limit",
        ),
        (
            "unknown route",
            with(v1.clone(), &|e| {
                e["httpMethod"] = json!("GET");
                e["path"] = json!("/nothing/here");
                e["body"] = Value::Null;
            }),
            404,
            "no route",
        ),
        (
            "unsupported method",
            with(v2.clone(), &|e| {
                e["requestContext"]["http"]["method"] = json!("DELETE")
            }),
            404,
            "no route",
        ),
        (
            "unknown query parameter",
            with(v1.clone(), &|e| {
                e["queryStringParameters"] = json!({"debug": "1"})
            }),
            400,
            "debug",
        ),
        (
            "foreign id in path",
            with(v1.clone(), &|e| {
                e["path"] = json!("/bots/de%20mo/echo_bot/jobs")
            }),
            400,
            "public_id",
        ),
    ]
}

#[tokio::test]
async fn invalid_http_requests_are_problem_responses_and_reach_nothing() {
    let h = Harness::start().await;
    for (case, event, status, needle) in http_cases(&h) {
        let response = h
            .invoke(event)
            .await
            .unwrap_or_else(|e| panic!("{case}: HTTP errors must be responses, got {e:?}"));
        assert_eq!(response["statusCode"], status, "{case}: {response}");
        assert_eq!(
            header(&response, "content-type"),
            Some("application/problem+json"),
            "{case}"
        );
        let problem = http_body(&response);
        assert_eq!(problem["status"], status, "{case}");
        assert_eq!(problem["error_type"], "InvalidRequest", "{case}");
        assert_eq!(problem["type"], "urn:cloudbot-trigger:error:InvalidRequest");
        assert!(problem["title"].is_string());
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{case}: {detail:?} lacks {needle}");
    }
    assert_eq!(h.upstream_requests(), 0, "nothing reached Cloud BOT");
    assert_eq!(h.secret_reads.get(), 0);
}

#[tokio::test]
async fn loopback_http_callback_needs_the_switch() {
    let h = Harness::start_with(Setup {
        env: vec![("CLOUDBOT_ALLOW_HTTP_LOOPBACK_CALLBACK", "false".to_owned())],
        ..Setup::default()
    })
    .await;
    let event = json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "http://127.0.0.1:9/hook"});
    let err = h.invoke(event).await.unwrap_err();
    assert!(err.error_message.contains("callback_endpoint"));
    assert_eq!(h.upstream_requests(), 0);
}

#[tokio::test]
async fn loopback_http_callback_is_sent_when_allowed() {
    let h = Harness::start().await;
    let event = json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": "http://127.0.0.1:9/hook"});
    let ok = h.invoke(event).await.unwrap();
    let job = h.emulator.job(ok["job_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        job.callback_endpoint.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
    assert_eq!(job.callback_tries, 3, "documented default");
}

/// With the switch on, plain http goes to exactly 127.0.0.1, [::1] and localhost, in any spelling
/// the URL standard normalizes to them; every other loopback address and every look-alike is
/// refused naming the field, and nothing is sent.
#[tokio::test]
async fn loopback_http_callback_is_exactly_the_three_documented_hosts() {
    let h = Harness::start().await;
    let accepted = [
        ("http://127.0.0.1:9/hook", "http://127.0.0.1:9/hook"),
        ("http://localhost:9/hook", "http://localhost:9/hook"),
        ("http://LocalHost:9/hook", "http://localhost:9/hook"),
        ("http://[::1]:9/hook", "http://[::1]:9/hook"),
        ("http://[0:0:0:0:0:0:0:1]:9/hook", "http://[::1]:9/hook"),
        ("http://2130706433:9/hook", "http://127.0.0.1:9/hook"),
        ("http://127.1:9/hook", "http://127.0.0.1:9/hook"),
        ("http://0x7f.0.0.1:9/hook", "http://127.0.0.1:9/hook"),
    ];
    for (raw, sent) in accepted {
        let event = json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": raw});
        let ok = h
            .invoke(event)
            .await
            .unwrap_or_else(|e| panic!("{raw}: {e:?}"));
        let job = h.emulator.job(ok["job_id"].as_str().unwrap()).unwrap();
        assert_eq!(job.callback_endpoint.as_deref(), Some(sent), "{raw}");
    }
    let executes = h.emulator.stats().jobs_created;
    for raw in [
        "http://127.0.0.2:9/hook",
        "http://127.255.255.254:9/hook",
        "http://2130706434:9/hook",
        "http://0x7f000002:9/hook",
        "http://127.0.1.1:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://[::2]:9/hook",
        "http://0.0.0.0:9/hook",
        "http://localhost.:9/hook",
        "http://api.localhost:9/hook",
        "http://127.0.0.1.nip.io:9/hook",
        "http://localhost@evil.example:9/hook",
        "ftp://127.0.0.1/hook",
    ] {
        let event = json!({"public_id": "demo", "bot_id": "echo_bot", "callback_endpoint": raw});
        let err = h.invoke(event).await.expect_err(raw);
        assert_eq!(err.error_type, "InvalidRequest", "{raw}");
        assert!(
            err.error_message.contains("callback_endpoint"),
            "{raw}: {err:?}"
        );
    }
    assert_eq!(
        h.emulator.stats().jobs_created,
        executes,
        "nothing was started"
    );
}
