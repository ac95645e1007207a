//! The emulated API: every endpoint, the job lifecycle, and every status it answers.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::{Api, REFER_SECRET, REFER_TOKEN, SECRET, TOKEN, start};

#[tokio::test]
async fn contract_list_returns_requested_properties_and_nulls_others() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .get("/services/contracts?properties=plan,timezone")
        .await;
    assert_eq!(a.status, 200);
    let contracts = a.body["contracts"].as_array().unwrap();
    assert_eq!(
        contracts.len(),
        1,
        "only contracts the token may use: {}",
        a.body
    );
    let c = &contracts[0];
    assert_eq!(c["public_id"], "demo");
    assert_eq!(c["public_path"], "/demo/");
    assert_eq!(c["plan"], "free");
    assert_eq!(c["timezone"], "Asia/Tokyo");
    assert!(c["owner"].is_null() && c["location"].is_null());
    assert_eq!(
        api.get("/services/contracts?properties=nope").await.status,
        422
    );
}

#[tokio::test]
async fn bot_list_shows_published_bots_and_detail_has_definitions() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.get("/demo/bots?properties=creator").await;
    assert_eq!(a.status, 200);
    let ids: Vec<&str> = a.body["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["echo_bot", "error_bot", "slow_bot"]);
    assert_eq!(a.body["bots"][0]["name"], "Echo BOT");
    assert_eq!(a.body["bots"][0]["creator"], "demo@example.com");
    assert!(a.body["bots"][0].get("icon").is_none());

    let d = api.get("/demo/bots/echo_bot").await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["id"], "echo_bot");
    assert_eq!(d.body["input"]["message"]["type"], "value");
    assert_eq!(
        d.body["input"]["message"]["default"],
        "Hello from Cloud BOT"
    );
    assert_eq!(d.body["input"]["tags"]["type"], "multi");
    assert_eq!(d.body["output"]["report"]["type"], "file");
    assert_eq!(
        api.get("/demo/bots/draft_bot").await.status,
        404,
        "unpublished BOT is invisible"
    );
}

#[tokio::test]
async fn execute_answers_201_executing_then_job_succeeds_with_derived_output() {
    let emu = start().await;
    let api = Api::new(&emu);
    let input =
        json!({"message": "Hello", "tags": ["a", "b"], "items": [{"name": "Tart", "price": 300}]});
    let a = api.execute("echo_bot", json!({"input": input})).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["status"], 2);
    assert_eq!(a.body["bot_id"], "echo_bot");
    assert_eq!(a.body["bot_name"], "Echo BOT");
    assert_eq!(a.body["elapsed_time"], 0);
    assert!(a.body.get("output").is_none());
    assert!(
        a.headers.get("location").is_none(),
        "no Location header by default"
    );
    let start_time = a.body["start_time"].as_str().unwrap();
    assert!(
        start_time.ends_with('Z') && start_time.len() == 20,
        "{start_time}"
    );
    let job_id = a.body["job_id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&job_id).is_ok());

    let job = api.wait_job(&job_id).await;
    assert_eq!(job["status"], 0);
    assert_eq!(job["code"], 200);
    assert_eq!(job["message"], "The BOT finished successfully");
    let out = &job["output"];
    assert_eq!(out["echo"], "Hello");
    assert_eq!(out["shout"], "HELLO");
    assert_eq!(out["length"], "5");
    assert_eq!(out["tags"], json!(["a", "b"]));
    assert_eq!(out["items"], json!([{"name": "Tart", "price": "300"}]));
    assert_eq!(out["result"], "done");
    assert_eq!(out["report"]["type"], "files");
    let file = &out["report"]["files"][0];
    assert!(
        file["ref"]
            .as_str()
            .unwrap()
            .starts_with(&format!("jobs/{job_id}/files/"))
    );
    assert_eq!(file["meta"]["name"], "report.txt");
    assert_eq!(file["meta"]["size"], 5);
    assert!(file["meta"]["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(emu.stats().jobs_created, 1);
}

#[tokio::test]
async fn execute_with_timeout_waits_for_the_final_job() {
    let emu = start().await;
    let api = Api::new(&emu);
    let t = Instant::now();
    let a = api.execute("echo_bot", json!({"timeout": 5000})).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], 0);
    assert_eq!(
        a.body["output"]["echo"], "Hello from Cloud BOT",
        "defaults used"
    );
    assert!(t.elapsed() >= Duration::from_millis(250));

    let t = Instant::now();
    let a = api.execute("slow_bot", json!({"timeout": 200})).await;
    assert_eq!(a.status, 201, "still executing after the wait");
    assert_eq!(a.body["status"], 2);
    assert!(t.elapsed() >= Duration::from_millis(200) && t.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn error_bot_ends_in_error_with_its_message() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .execute("error_bot", json!({"input": {"message": "x"}}))
        .await;
    let job = api.wait_job(a.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], 1);
    assert_eq!(
        job["message"],
        "Step 3 failed: element not found (emulated error)"
    );
    assert!(job.get("output").is_none());
}

#[tokio::test]
async fn suspend_ends_an_executing_job_as_error() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.execute("slow_bot", json!({})).await;
    let id = a.body["job_id"].as_str().unwrap();
    let d = api.delete(&format!("/demo/jobs/{id}")).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["status"], 1);
    assert_eq!(d.body["message"], "The job was suspended");
    assert!(d.body.get("output").is_none());
    let again = api.delete(&format!("/demo/jobs/{id}")).await;
    assert_eq!(
        (again.status, again.body["status"].as_i64()),
        (200, Some(1)),
        "idempotent"
    );
    let r = api.get(&format!("/demo/jobs/{id}")).await;
    assert_eq!(r.body["status"], 1);
    assert!(emu.job(id).unwrap().suspended);
    let ja = api
        .clone()
        .with_lang("ja")
        .get(&format!("/demo/jobs/{id}"))
        .await;
    assert_eq!(ja.body["message"], "ジョブは停止されました");
}

#[tokio::test]
async fn job_list_filters_sorts_and_limits() {
    let emu = start().await;
    let api = Api::new(&emu);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            api.execute("echo_bot", json!({})).await.body["job_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    api.execute("slow_bot", json!({})).await;
    let l = api.get("/demo/bots/echo_bot/jobs").await;
    assert_eq!(l.status, 200);
    let got: Vec<&str> = l.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()],
        "newest first, this BOT only"
    );
    let l = api
        .get("/demo/bots/echo_bot/jobs?sort_order=asc&limit=2")
        .await;
    let got: Vec<&str> = l.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let l = api
        .get(&format!(
            "/demo/bots/echo_bot/jobs?sort_order=asc&id_from={}",
            ids[0]
        ))
        .await;
    assert_eq!(
        l.body["jobs"].as_array().unwrap().len(),
        2,
        "id_from is exclusive"
    );
    api.wait_job(&ids[2]).await;
    let l = api
        .get("/demo/bots/echo_bot/jobs?statuses=0&properties=output")
        .await;
    assert_eq!(l.body["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(l.body["jobs"][0]["output"]["result"], "done");
    assert!(l.body["jobs"][0].get("code").is_none());
    assert_eq!(
        api.get("/demo/bots/echo_bot/jobs?statuses=2").await.body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    for bad in [
        "limit=0",
        "sort_order=up",
        "statuses=5",
        "datetime_from=yesterday",
        "id_to=nope",
        "page=2",
    ] {
        assert_eq!(
            api.get(&format!("/demo/bots/echo_bot/jobs?{bad}"))
                .await
                .status,
            422,
            "{bad}"
        );
    }
    let future = "2999-01-01T00:00:00Z";
    assert_eq!(
        api.get(&format!("/demo/bots/echo_bot/jobs?datetime_from={future}"))
            .await
            .body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn wrong_or_missing_credentials_answer_401() {
    let emu = start().await;
    let api = Api::new(&emu);
    for (t, s) in [
        ("demo-access-token", "wrong"),
        ("unknown", "demo-secret-key"),
        ("", ""),
    ] {
        let a = api.clone().with_token(t, s).get("/demo/bots").await;
        assert_eq!(a.status, 401, "{t}");
        assert!(
            !a.body["message"].as_str().unwrap().contains("demo-"),
            "no credential echoed"
        );
    }
    let no_headers = api
        .send(
            api.http
                .get(format!("{}/demo/bots", api.base))
                .header("content-type", "application/json")
                .header("content-language", "ja"),
        )
        .await;
    assert_eq!(no_headers.status, 401);
    assert_eq!(
        no_headers.body["message"],
        "アクセストークンまたはシークレットキーが正しくありません"
    );
    assert_eq!(emu.stats().jobs_created, 0);
}

#[tokio::test]
async fn refer_only_token_gets_403_on_execute_and_suspend() {
    let emu = start().await;
    let api = Api::new(&emu);
    let refer = api.clone().with_token(REFER_TOKEN, REFER_SECRET);
    assert_eq!(refer.get("/demo/bots").await.status, 200);
    let a = refer.execute("echo_bot", json!({})).await;
    assert_eq!(a.status, 403);
    assert!(a.body["message"].as_str().unwrap().contains("Execute"));
    let id = api.execute("slow_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = refer.delete(&format!("/demo/jobs/{id}")).await;
    assert_eq!(d.status, 403);
    assert!(d.body["message"].as_str().unwrap().contains("Suspend"));
    assert_eq!(emu.stats().jobs_created, 1);
}

#[tokio::test]
async fn unknown_contract_bot_or_job_answers_404() {
    let emu = start().await;
    let api = Api::new(&emu);
    for path in [
        "/nobody/bots",
        "/other/bots",
        "/demo/bots/nope",
        "/demo/bots/draft_bot/jobs",
        "/demo/jobs/00000000-0000-0000-0000-000000000000",
        "/demo/unknown",
        "/",
    ] {
        assert_eq!(api.get(path).await.status, 404, "{path}");
    }
    assert_eq!(api.execute("draft_bot", json!({})).await.status, 404);
    assert_eq!(api.execute("nope", json!({})).await.status, 404);
    // A job of another contract is not visible through this contract.
    let other = api
        .clone()
        .with_token("other-access-token", "other-secret-key");
    let a = other.post("/other/bots/other_bot/jobs", json!({})).await;
    assert_eq!(a.status, 201);
    let id = a.body["job_id"].as_str().unwrap();
    assert_eq!(api.get(&format!("/demo/jobs/{id}")).await.status, 404);
    assert_eq!(api.get(&format!("/other/jobs/{id}")).await.status, 404);
    assert_eq!(other.get(&format!("/other/jobs/{id}")).await.status, 200);
    assert_eq!(
        api.send(api.request(Method::PUT, "/demo/bots"))
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn bodies_over_4_mb_answer_413_whatever_the_framing() {
    let emu = start().await;
    let api = Api::new(&emu);
    let big = format!(
        r#"{{"input":{{"message":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let a = api
        .send(
            api.request(Method::POST, "/demo/bots/echo_bot/jobs")
                .body(big.clone()),
        )
        .await;
    assert_eq!(a.status, 413);
    // Chunked (no Content-Length): refused while reading.
    assert!(
        chunked_post(emu.addr(), big.as_bytes())
            .await
            .starts_with("HTTP/1.1 413")
    );
    // Exactly at the limit is read (and then refused as an unknown input, not as too large).
    let (head, tail) = (r#"{"input":{"m":""#, r#""}}"#);
    let at_limit = format!(
        "{head}{}{tail}",
        "x".repeat(4 * 1024 * 1024 - head.len() - tail.len())
    );
    assert_eq!(at_limit.len(), 4 * 1024 * 1024);
    let a = api
        .send(
            api.request(Method::POST, "/demo/bots/echo_bot/jobs")
                .body(at_limit),
        )
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(emu.stats().jobs_created, 0);
}

/// POSTs `body` with `Transfer-Encoding: chunked` and returns the start of the answer.
async fn chunked_post(addr: std::net::SocketAddr, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /demo/bots/echo_bot/jobs HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-language: en\r\naccess-token: {TOKEN}\r\nsecret-key: {SECRET}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(256 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer 413 and close before the whole body is sent.
        if s.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn wrong_content_type_answers_415() {
    let emu = start().await;
    let api = Api::new(&emu);
    let http = &api.http;
    let with = |ct: Option<&str>| {
        let mut rb = http
            .post(format!("{}/demo/bots/echo_bot/jobs", api.base))
            .header("content-language", "en")
            .header("access-token", &api.token)
            .header("secret-key", &api.secret)
            .body("{}");
        if let Some(ct) = ct {
            rb = rb.header("content-type", ct);
        }
        rb
    };
    for ct in [
        None,
        Some("text/plain"),
        Some("application/json; charset=latin1"),
    ] {
        assert_eq!(api.send(with(ct)).await.status, 415, "{ct:?}");
    }
    assert_eq!(
        api.send(with(Some("application/json; charset=utf-8")))
            .await
            .status,
        201
    );
    assert_eq!(emu.stats().jobs_created, 1);
}

#[tokio::test]
async fn invalid_bodies_and_headers_answer_422_naming_the_problem() {
    let emu = start().await;
    let api = Api::new(&emu);
    let cases = [
        ("[1]", "JSON object"),
        ("{not json", "not valid JSON"),
        (r#"{"input": "text"}"#, "input must be a JSON object"),
        (r#"{"input": {"colour": "red"}}"#, "\"colour\""),
        (r#"{"input": {"tags": "single"}}"#, "\"tags\""),
        (r#"{"timeout": -5}"#, "timeout"),
        (r#"{"callback_tries": 0}"#, "callback_tries"),
        (r#"{"callback_endpoint": "not a url"}"#, "callback_endpoint"),
        (r#"{"sync": true}"#, "\"sync\""),
    ];
    for (body, needle) in cases {
        let a = api
            .send(
                api.request(Method::POST, "/demo/bots/echo_bot/jobs")
                    .body(body),
            )
            .await;
        assert_eq!(a.status, 422, "{body}");
        let msg = a.body["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    for lang in ["", "fr"] {
        assert_eq!(
            api.clone().with_lang(lang).get("/demo/bots").await.status,
            422,
            "{lang:?}"
        );
    }
    assert_eq!(emu.stats().jobs_created, 0);
}

#[tokio::test]
async fn empty_execute_body_runs_with_defaults() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .send(api.request(Method::POST, "/demo/bots/echo_bot/jobs"))
        .await;
    assert_eq!(a.status, 201);
}

#[tokio::test]
async fn messages_follow_content_language() {
    let emu = start().await;
    let api = Api::new(&emu);
    let ja = api.clone().with_lang("ja");
    assert_eq!(
        ja.get("/demo/bots/nope").await.body["message"],
        "BOTが見つかりません"
    );
    assert_eq!(
        api.get("/demo/bots/nope").await.body["message"],
        "BOT not found"
    );
    let a = ja.execute("echo_bot", json!({})).await;
    assert_eq!(a.body["message"], "BOTを実行中です");
}

#[tokio::test]
async fn oversized_upload_waiting_for_100_continue_gets_413_without_sending() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emu = start().await;
    let mut s = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "POST /demo/bots/echo_bot/jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-language: en\r\naccess-token: {TOKEN}\r\nsecret-key: {SECRET}\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        5 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(emu.stats().jobs_created, 0);
}

#[tokio::test]
async fn suspend_is_recorded_with_its_request_and_time() {
    let emu = start().await;
    let api = Api::new(&emu);
    let refer = api.clone().with_token(REFER_TOKEN, REFER_SECRET);
    let id = api.execute("slow_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/demo/jobs/{id}");
    assert_eq!(refer.delete(&path).await.status, 403);
    let job = emu.job(&id).unwrap();
    assert!(!job.suspended && job.suspended_at.is_none() && job.suspended_by_request.is_none());
    assert_eq!(
        emu.stats().jobs_suspended,
        0,
        "a refused suspend is not one"
    );

    assert_eq!(api.delete(&path).await.status, 200);
    assert_eq!(api.delete(&path).await.status, 200, "again: unchanged");
    let job = emu.job(&id).unwrap();
    assert!(job.suspended);
    assert_eq!(
        emu.stats().jobs_suspended,
        1,
        "a finished job is not suspended twice"
    );
    let deletes: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path == path)
        .collect();
    assert_eq!(
        deletes.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(403), Some(200), Some(200)]
    );
    assert_eq!(
        job.suspended_by_request,
        Some(deletes[1].seq),
        "the first allowed DELETE"
    );
    let at = chrono::DateTime::parse_from_rfc3339(job.suspended_at.as_deref().unwrap()).unwrap();
    let received = chrono::DateTime::parse_from_rfc3339(&deletes[1].received_at).unwrap();
    assert!(at >= received, "{at} before {received}");
    assert_eq!(job.end_time, job.suspended_at);
    let over_http = crate::support::admin(&emu).job(&id).await.unwrap().unwrap();
    assert_eq!(over_http, job, "the admin API shows the same record");
}

#[tokio::test]
async fn output_padding_makes_a_job_output_exceed_one_mib() {
    const MIB: usize = 1024 * 1024;
    let emu = start().await;
    let api = Api::new(&emu);
    crate::support::admin(&emu)
        .set_output_padding(MIB as u64 + 1)
        .await
        .unwrap();
    let id = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = api.wait_job(&id).await;
    assert_eq!(job["output"]["padding"].as_str().unwrap().len(), MIB + 1);
    assert_eq!(
        job["output"]["echo"], "Hello from Cloud BOT",
        "the real output stays"
    );
    let raw = api
        .request(reqwest::Method::GET, &format!("/demo/jobs/{id}"))
        .send()
        .await
        .unwrap();
    assert!(raw.bytes().await.unwrap().len() > MIB);
    let listed = api.get("/demo/bots/echo_bot/jobs?properties=output").await;
    assert!(listed.body["jobs"][0]["output"]["padding"].is_string());
    // Reset turns padding off; padding applies to jobs that end after it is set.
    emu.reset();
    let id = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(api.wait_job(&id).await["output"].get("padding").is_none());
    emu.set_output_padding(10);
    let id = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.wait_job(&id).await["output"]["padding"], "xxxxxxxxxx");
}
