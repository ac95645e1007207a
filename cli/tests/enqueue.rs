//! `cloudbot enqueue` against SQS in moto (loopback): lines go to the lane their priority picks
//! in batches, carry the keys the function will use (each message body read back and decoded by
//! the function's own SQS decoder), and an invalid line or a missing lane sends nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

// Only the moto helper of the shared support (the Lambda stand-in is not used here).
#[path = "support/moto.rs"]
mod moto;

use moto::Moto;
use serde_json::{Value, json};

const BASE: &str = "https://api.c-bot.pro";

struct Queues {
    moto: Moto,
    sqs: aws_sdk_sqs::Client,
    high: String,
    normal: String,
}

/// moto with the run queue's two lanes, named as template.yaml names them.
async fn queues() -> Queues {
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
    let mut urls = Vec::new();
    for name in ["stack-runs-high", "stack-runs-normal"] {
        let created = sqs.create_queue().queue_name(name).send().await.unwrap();
        urls.push(created.queue_url().unwrap().to_owned());
    }
    let normal = urls.pop().unwrap();
    let high = urls.pop().unwrap();
    Queues {
        moto,
        sqs,
        high,
        normal,
    }
}

impl Queues {
    /// `cloudbot enqueue` with a clean environment pointed at moto and both lanes.
    fn enqueue(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
        for var in [
            "CLOUDBOT_DEFAULT_BOT_ENDPOINT",
            "CLOUDBOT_DEFAULT_PUBLIC_ID",
            "CLOUDBOT_LANGUAGE",
            "CLOUDBOT_RUN_QUEUE_HIGH_URL",
            "CLOUDBOT_RUN_QUEUE_NORMAL_URL",
        ] {
            cmd.env_remove(var);
        }
        self.moto
            .point(&mut cmd)
            .env("CLOUDBOT_API_BASE", BASE)
            .env("CLOUDBOT_RUN_QUEUE_HIGH_URL", &self.high)
            .env("CLOUDBOT_RUN_QUEUE_NORMAL_URL", &self.normal)
            .arg("enqueue")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Every message on `url`, received until the queue answers none.
    async fn drain(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            let messages = got.messages().to_vec();
            if messages.is_empty() {
                return all;
            }
            all.extend(messages);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `lines` in a file of the target's tmp directory, removed on drop.
struct InputFile(std::path::PathBuf);

impl InputFile {
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for InputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(lines: &[String]) -> InputFile {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "enqueue-{}-{}.jsonl",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::write(&path, lines.join("\n")).unwrap();
    InputFile(path)
}

/// The messages as the function receives them from `queue`: decoded by its own SQS decoder.
fn decoded(queue: &str, messages: &[aws_sdk_sqs::types::Message]) -> Vec<(String, String)> {
    use cloudbot_trigger::request::Operation;
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id().unwrap(), "receiptHandle": "rh",
                "body": m.body().unwrap(), "attributes": {}, "messageAttributes": {},
                "md5OfBody": "x", "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let config = cloudbot_trigger::config::Requests {
        api_base: cloudbot_trigger::cloudbot::ApiBase::parse(BASE).unwrap(),
        default_bot: None,
        default_public_id: None,
        language: cloudbot_trigger::cloudbot::Language::Ja,
        default_callback_tries: 3,
        allow_http_loopback_callback: false,
    };
    cloudbot_trigger::trigger::decode_batch(json!({ "Records": records }), &config)
        .unwrap()
        .into_iter()
        .map(|q| match q.request.unwrap().operation {
            Operation::Execute(e) => (
                q.lane.name().to_owned(),
                e.idempotency_key.unwrap().to_string(),
            ),
            _ => panic!("not an execute"),
        })
        .collect()
}

fn request(n: usize, priority: &str) -> String {
    json!({"bot_endpoint": format!("{BASE}/demo/bots/echo_bot/jobs"),
           "input": {"n": n.to_string()}, "priority": priority})
    .to_string()
}

#[tokio::test]
async fn lines_go_to_their_lane_in_batches_keyed_as_the_function_keys_them() {
    let q = queues().await;
    // 15 normal, 7 high (one with its own key), a blank line: 3 + 1 batches.
    let mut lines: Vec<String> = (1..=15).map(|n| request(n, "normal")).collect();
    lines.extend((16..=21).map(|n| request(n, "high")));
    lines.push(String::new());
    lines.push(
        r#"{"idempotency_key": "report-2026-12-07", "public_id": "demo", "bot_id": "report_bot", "priority": "high"}"#
            .to_owned(),
    );
    let input = file(&lines);
    let out = q.enqueue(&[input.arg(), "--json", "--key-prefix", "morning"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["key_prefix"], "morning");
    let results = answer["lines"].as_array().unwrap();
    assert_eq!(results.len(), 22);
    assert!(
        results.iter().all(|r| r["result"] == "enqueued"),
        "{answer}"
    );
    assert_eq!(results[0]["idempotency_key"], "request:morning-1");
    assert_eq!(results[21]["line"], 23);

    let mut high = decoded("stack-runs-high", &q.drain(&q.high).await);
    let mut normal = decoded("stack-runs-normal", &q.drain(&q.normal).await);
    high.sort();
    normal.sort();
    let mut want_high: Vec<(String, String)> = (16..=21)
        .map(|n| ("high".to_owned(), format!("request:morning-{n}")))
        .collect();
    want_high.push(("high".into(), "request:report-2026-12-07".into()));
    want_high.sort();
    let mut want_normal: Vec<(String, String)> = (1..=15)
        .map(|n| ("normal".to_owned(), format!("request:morning-{n}")))
        .collect();
    want_normal.sort();
    assert_eq!(high, want_high);
    assert_eq!(normal, want_normal);

    // Sent again with the same prefix: the same keys, so the function starts nothing twice.
    let out = q.enqueue(&[input.arg(), "--json", "--key-prefix", "morning"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut again = decoded("stack-runs-normal", &q.drain(&q.normal).await);
    again.sort();
    assert_eq!(again, want_normal);
    q.drain(&q.high).await;

    // stdin, and a fresh random prefix per run when none is given.
    let out = q.enqueue(&["-"], Some(&request(1, "normal")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("enqueued 1 of 1 lines"), "{shown}");
    let keys = decoded("stack-runs-normal", &q.drain(&q.normal).await);
    assert_eq!(keys.len(), 1);
    assert!(keys[0].1.starts_with("request:enqueue-"), "{keys:?}");
    assert!(keys[0].1.ends_with("-1"), "{keys:?}");
}

#[tokio::test]
async fn an_invalid_line_or_a_missing_lane_sends_nothing() {
    let q = queues().await;
    let lines = vec![
        request(1, "normal"),
        request(2, "high"),
        r#"{"bot_id": "b", "priority": "urgent", "public_id": "demo"}"#.to_owned(),
        r#"{"bot_endpoint": "https://evil.example/demo/bots/b/jobs"}"#.to_owned(),
    ];
    let input = file(&lines);
    let out = q.enqueue(&[input.arg()], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("line 3: field `priority`"), "{err}");
    assert!(err.contains("line 4: field `bot_endpoint`"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(q.drain(&q.normal).await.is_empty());
    assert!(q.drain(&q.high).await.is_empty());

    // --dry-run checks and sends nothing.
    let valid = file(&lines[..2]);
    let out = q.enqueue(&[valid.arg(), "--dry-run"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing sent"));
    assert!(q.drain(&q.normal).await.is_empty());

    // A lane without its URL: refused before anything is sent, the other lane included.
    let out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudbot"));
        q.moto
            .point(&mut cmd)
            .env("CLOUDBOT_API_BASE", BASE)
            .env_remove("CLOUDBOT_RUN_QUEUE_HIGH_URL")
            .args(["enqueue", valid.arg(), "--normal-queue-url", &q.normal])
            .stdin(Stdio::null());
        cmd.output().unwrap()
    };
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--high-queue-url"), "{err}");
    assert!(q.drain(&q.normal).await.is_empty());

    // --skip-invalid sends the valid lines and lists the others (exit code 8).
    let out = q.enqueue(&[input.arg(), "--skip-invalid", "--json"], None);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fates: Vec<(u64, &str)> = answer["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fates,
        [
            (1, "enqueued"),
            (2, "enqueued"),
            (3, "not_enqueued"),
            (4, "not_enqueued")
        ]
    );
    assert_eq!(q.drain(&q.normal).await.len(), 1);
    assert_eq!(q.drain(&q.high).await.len(), 1);
}

#[tokio::test]
async fn a_queue_that_refuses_the_batch_leaves_its_lines_not_enqueued() {
    let q = queues().await;
    let input = file(&[request(1, "normal")]);
    let missing = q.normal.replace("stack-runs-normal", "stack-runs-gone");
    let out = q.enqueue(&[input.arg(), "--normal-queue-url", &missing], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("line 1: not enqueued"), "{shown}");
    assert!(shown.contains("enqueued 0 of 1 lines"), "{shown}");
}
