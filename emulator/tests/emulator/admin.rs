//! The admin API over HTTP and its typed mirror: request log, stats and connections, jobs,
//! latency, token rotation, reset; and that nothing it shows contains a secret.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cloudbot_emulator::{AdminError, FaultKind, FaultRule};

use crate::support::{Api, Receiver, SECRET, TOKEN, admin, eventually, start};

async fn admin_get(api: &Api, path: &str) -> Value {
    let resp = api
        .http
        .get(format!("{}/__emulator/{path}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 200);
    v
}

#[tokio::test]
async fn request_log_shows_method_path_status_job_and_connection() {
    let emu = start().await;
    let api = Api::new(&emu);
    api.get("/demo/bots?properties=icon").await;
    let a = api.execute("echo_bot", json!({})).await;
    api.clone().with_token(TOKEN, "bad").get("/demo/bots").await;
    let log = emu.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str(), log[0].status),
        ("GET", "/demo/bots", Some(200))
    );
    assert_eq!(log[1].job_id.as_deref(), a.body["job_id"].as_str());
    assert_eq!((log[1].status, log[2].status), (Some(201), Some(401)));
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        log.iter().all(|r| r.connection_id == log[0].connection_id),
        "one pooled connection"
    );
    let http = admin_get(&api, "requests").await;
    assert_eq!(http["requests"].as_array().unwrap().len(), 3);
    assert_eq!(http["requests"][1]["job_id"], a.body["job_id"]);
    assert!(http["requests"][0]["fault"].is_null());
}

#[tokio::test]
async fn stats_count_accepted_and_open_connections_and_reuse() {
    let emu = start().await;
    let api = Api::new(&emu);
    for _ in 0..5 {
        api.get("/demo/bots").await;
    }
    let s = emu.stats();
    assert_eq!(
        (s.requests, s.connections_accepted, s.connections_open),
        (5, 1, 1),
        "keep-alive reuses one connection"
    );
    let fresh = Api::new(&emu);
    fresh.get("/demo/bots").await;
    assert_eq!(emu.stats().connections_accepted, 2);
    drop(fresh);
    drop(api);
    assert!(eventually(Duration::from_secs(2), || emu.stats().connections_open == 0).await);
    let v = admin_get(&Api::new(&emu), "stats").await;
    assert_eq!(v["requests"], 6);
    assert_eq!(v["jobs_created"], 0);
    assert_eq!(
        v["connections_accepted"], 3,
        "the admin request's own connection counts"
    );
}

#[tokio::test]
async fn admin_output_never_contains_credentials_or_input_values() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500, 200]).await;
    api.execute(
        "echo_bot",
        json!({"input": {"message": "top-secret-input"}, "callback_endpoint": rx.url, "callback_tries": 2}),
    )
    .await;
    api.clone()
        .with_token(TOKEN, "wrong-secret-value")
        .get("/demo/bots")
        .await;
    emu.rotate_token(TOKEN, "rotated-token-value", "rotated-secret-value")
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || emu.callbacks().len() == 2).await);
    let mut dump = String::new();
    for path in ["requests", "jobs", "callbacks", "stats", "faults"] {
        dump.push_str(&admin_get(&api, path).await.to_string());
    }
    dump.push_str(&format!(
        "{:?}{:?}{:?}",
        emu.requests(),
        emu.callbacks(),
        emu.seed()
    ));
    for secret in [
        TOKEN,
        SECRET,
        "wrong-secret-value",
        "rotated-token-value",
        "rotated-secret-value",
        "s3cret-callback-token",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked");
    }
    // Input values only appear in outputs (which the BOT derived), never in the request log.
    let requests = admin_get(&api, "requests").await.to_string();
    assert!(!requests.contains("top-secret-input"));
}

#[tokio::test]
async fn jobs_endpoint_and_cast_url_show_the_job() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.execute("echo_bot", json!({"timeout": 3000})).await;
    let id = a.body["job_id"].as_str().unwrap();
    let jobs = admin_get(&api, "jobs").await;
    assert_eq!(jobs["jobs"][0]["job_id"], id);
    assert_eq!(jobs["jobs"][0]["public_id"], "demo");
    assert_eq!(jobs["jobs"][0]["status"], 0);
    let cast: Value = api
        .http
        .get(a.body["cast_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cast["job_id"], id);
    assert_eq!(
        emu.jobs()[0].output.as_ref().unwrap()["echo"],
        "Hello from Cloud BOT"
    );
}

#[tokio::test]
async fn fixed_latency_is_added_to_every_api_answer() {
    // Long enough that an answer without it is quicker even on a loaded machine.
    const LATENCY: Duration = Duration::from_secs(1);
    let emu = start().await;
    let api = Api::new(&emu);
    emu.set_latency(LATENCY);
    let t = Instant::now();
    api.get("/demo/bots").await;
    assert!(t.elapsed() >= LATENCY);
    let admin = admin(&emu);
    assert_eq!(admin.latency().await.unwrap(), LATENCY);
    admin.set_latency(Duration::ZERO).await.unwrap();
    let t = Instant::now();
    api.get("/demo/bots").await;
    assert!(t.elapsed() < LATENCY);
    assert_eq!(admin_get(&api, "latency").await["latency_ms"], 0);
}

#[tokio::test]
async fn rotated_token_stops_working_and_the_new_one_works() {
    let emu = start().await;
    let api = Api::new(&emu);
    emu.rotate_token(TOKEN, "token-2", "secret-2").unwrap();
    assert_eq!(api.get("/demo/bots").await.status, 401);
    let new = api.clone().with_token("token-2", "secret-2");
    assert_eq!(
        new.execute("echo_bot", json!({})).await.status,
        201,
        "permissions carried over"
    );
    assert!(
        emu.rotate_token(TOKEN, "x", "y").is_err(),
        "old token is gone"
    );

    let resp = api
        .http
        .post(format!("{}/__emulator/tokens/rotate", api.base))
        .body(json!({"access_token": "token-2", "new_access_token": "token-3", "new_secret_key": "secret-3"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.text().await.unwrap().contains("secret-3"));
    assert_eq!(new.get("/demo/bots").await.status, 401);
    assert_eq!(
        api.clone()
            .with_token("token-3", "secret-3")
            .get("/demo/bots")
            .await
            .status,
        200
    );
    let unknown = admin(&emu)
        .rotate_token("nope", "a", "b")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, AdminError::Status { status: 404, .. }),
        "{unknown}"
    );
}

#[tokio::test]
async fn reset_forgets_jobs_requests_faults_latency_and_rotations() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.execute("slow_bot", json!({})).await;
    emu.set_latency(Duration::from_millis(50));
    emu.add_faults([FaultRule::new(FaultKind::Status).path_prefix("/nowhere")])
        .unwrap();
    emu.rotate_token(TOKEN, "t2", "s2").unwrap();
    admin(&emu).reset().await.unwrap();
    let s = emu.stats();
    assert_eq!((s.requests, s.jobs_created), (0, 0));
    assert!(emu.requests().is_empty() && emu.jobs().is_empty() && emu.faults().is_empty());
    assert_eq!(
        api.get(&format!(
            "/demo/jobs/{}",
            a.body["job_id"].as_str().unwrap()
        ))
        .await
        .status,
        404
    );
    assert_eq!(
        api.get("/demo/bots").await.status,
        200,
        "seed token restored"
    );
    emu.reset();
    assert!(emu.requests().is_empty());
}

#[tokio::test]
async fn admin_client_over_http_sees_what_the_typed_mirror_sees() {
    let emu = start().await;
    let api = Api::new(&emu);
    let admin = admin(&emu);
    let receiver = Receiver::start(vec![200]).await;
    let a = api
        .execute(
            "echo_bot",
            json!({"callback_endpoint": receiver.url, "input": {"message": "m"}}),
        )
        .await;
    let job_id = a.body["job_id"].as_str().unwrap().to_owned();
    api.get("/demo/bots").await;
    assert!(eventually(Duration::from_secs(10), || emu.callbacks().len() == 1).await);
    let rule = FaultRule::new(FaultKind::Status)
        .status(429)
        .path_prefix("/nowhere")
        .times(2);
    assert_eq!(admin.add_faults([rule.clone()]).await.unwrap(), [rule]);

    assert_eq!(admin.requests().await.unwrap(), emu.requests());
    assert_eq!(admin.jobs().await.unwrap(), emu.jobs());
    assert_eq!(admin.job(&job_id).await.unwrap(), emu.job(&job_id));
    assert_eq!(admin.job("no-such-job").await.unwrap(), None);
    assert_eq!(admin.callbacks().await.unwrap(), emu.callbacks());
    assert_eq!(admin.faults().await.unwrap(), emu.faults());
    let (http, typed) = (admin.stats().await.unwrap(), emu.stats());
    assert_eq!(
        (http.requests, http.jobs_created, http.callback_attempts),
        (typed.requests, typed.jobs_created, typed.callback_attempts)
    );

    let invalid = FaultRule::new(FaultKind::Status).status(200);
    let refused = admin.add_faults([invalid]).await.unwrap_err();
    assert!(
        matches!(refused, AdminError::Status { status: 422, .. }),
        "{refused}"
    );
    assert_eq!(emu.faults().len(), 1, "an invalid rule adds nothing");
    admin.clear_faults().await.unwrap();
    assert!(emu.faults().is_empty());
}

#[tokio::test]
async fn unknown_admin_path_answers_404() {
    let emu = start().await;
    let resp = reqwest::get(format!("{}/__emulator/nope", emu.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        emu.stats().requests,
        0,
        "admin requests are not API requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_stay_exact_under_concurrent_load() {
    let emu = start().await;
    emu.set_latency(Duration::from_millis(2));
    let clients = 20;
    let per_client = 50;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let api = Api::new(&emu);
            tokio::spawn(async move {
                for i in 0..per_client {
                    if i % 5 == 0 {
                        assert_eq!(api.execute("echo_bot", json!({})).await.status, 201);
                    } else {
                        assert_eq!(api.get("/demo/bots").await.status, 200);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = emu.stats();
    let total = (clients * per_client) as u64;
    assert_eq!(s.requests, total);
    assert_eq!(s.jobs_created, total / 5);
    assert_eq!(
        s.connections_accepted, clients as u64,
        "one kept-alive connection per client"
    );
    let log = emu.requests();
    assert_eq!(log.len() as u64, total);
    assert_eq!(
        log.iter().filter(|r| r.job_id.is_some()).count() as u64,
        total / 5
    );
    let mut seqs: Vec<u64> = log.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "every request logged once"
    );
}

/// Requests on different connections are served side by side. Checked without a clock bound
/// (which a loaded machine breaks): were requests served one at a time, each answer would come
/// at least the fixed latency after the one before, so two answers closer than that prove overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_different_connections_are_served_side_by_side() {
    let emu = start().await;
    let latency = Duration::from_millis(300);
    emu.set_latency(latency);
    // Every client is built, then all ask at once (building one is slow on a loaded machine).
    let clients: Vec<Api> = (0..10).map(|_| Api::new(&emu)).collect();
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len()));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|api| {
            let go = go.clone();
            tokio::spawn(async move {
                go.wait().await;
                let status = api.get("/demo/bots").await.status;
                (status, Instant::now())
            })
        })
        .collect();
    let mut answered = Vec::new();
    for t in tasks {
        let (status, at) = t.await.unwrap();
        assert_eq!(status, 200);
        answered.push(at);
    }
    answered.sort_unstable();
    let closest = answered.windows(2).map(|w| w[1] - w[0]).min().unwrap();
    assert!(
        closest < latency,
        "the closest two answers were {closest:?} apart: requests were served one at a time"
    );
}
