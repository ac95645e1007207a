//! "BOT done" subscriptions (cloudbot-api.md §3.9, third-party sourced): subscribe, list,
//! unsubscribe with the API's checks; every run of a subscribed BOT, started through the API or
//! from the console (admin API), is POSTed to each endpoint when it ends, with retries.

use std::time::Duration;

use cloudbot_emulator::{DEMO_PUBLIC_ID, JobOrigin};
use serde_json::json;

use crate::support::{Api, REFER_SECRET, REFER_TOKEN, Receiver, admin, eventually, start};

const SUBS: &str = "/demo/bots/echo_bot/subscriptions";

fn subscribe_body(url: &str) -> serde_json::Value {
    json!({"event": "onended", "callback_type": "webhook", "callback_endpoint": url})
}

#[tokio::test]
async fn subscribe_list_and_unsubscribe() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api
        .post(SUBS, subscribe_body("https://hooks.example/done?k=v"))
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let id = a.body["subscribe_id"]
        .as_u64()
        .expect("integer subscribe_id");
    let unsubscribe = format!("{}{SUBS}/{id}", emu.base_url());
    assert_eq!(a.body["unsubscribe_endpoint"], unsubscribe.as_str());
    assert_eq!(
        a.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(unsubscribe.as_str()),
        "Location header"
    );

    let ja = api.clone().with_lang("ja");
    let second = ja
        .post(SUBS, subscribe_body("https://hooks.example/2"))
        .await;
    assert_eq!(second.status, 201);
    assert_ne!(second.body["subscribe_id"], id);

    let l = api.get(SUBS).await;
    assert_eq!(l.status, 200);
    let items = l.body["subscriptions"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0],
        json!({
            "subscribe_id": id, "event": "onended", "language": "en", "callback_type": "webhook",
            "callback_endpoint": "https://hooks.example/done?k=v", "callback_emails": null,
            "disabled": false, "unsubscribe_endpoint": unsubscribe,
        })
    );
    assert_eq!(items[1]["language"], "ja");
    assert_eq!(
        api.get("/demo/bots/error_bot/subscriptions").await.body["subscriptions"],
        json!([]),
        "per BOT"
    );
    let view = emu.subscriptions();
    assert_eq!(view.len(), 2);
    assert_eq!(
        view[0].callback_endpoint,
        "https://hooks.example/done?k=***"
    );
    assert_eq!(admin(&emu).subscriptions().await.unwrap(), view);

    let d = api.delete(&format!("{SUBS}/{id}")).await;
    assert_eq!((d.status, d.body.clone()), (200, json!({"code": 200})));
    assert_eq!(api.delete(&format!("{SUBS}/{id}")).await.status, 404);
    assert_eq!(
        api.get(SUBS).await.body["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    emu.reset();
    assert!(
        emu.subscriptions().is_empty(),
        "reset forgets subscriptions"
    );
}

#[tokio::test]
async fn subscription_requests_are_checked_like_the_other_endpoints() {
    let emu = start().await;
    let api = Api::new(&emu);
    let refer = api.clone().with_token(REFER_TOKEN, REFER_SECRET);
    let body = subscribe_body("https://hooks.example/h");
    // [I] Refer may list, subscribing and unsubscribing need Execute.
    assert_eq!(refer.get(SUBS).await.status, 200);
    let f = refer.post(SUBS, body.clone()).await;
    assert_eq!(f.status, 403);
    assert!(f.body["message"].as_str().unwrap().contains("Execute"));
    let id = api.post(SUBS, body.clone()).await.body["subscribe_id"].clone();
    assert_eq!(refer.delete(&format!("{SUBS}/{id}")).await.status, 403);
    assert_eq!(
        emu.subscriptions().len(),
        1,
        "a refused unsubscribe keeps it"
    );

    let bad = api.clone().with_token("nope", "nope");
    assert_eq!(bad.post(SUBS, body.clone()).await.status, 401);
    for path in [
        "/demo/bots/nope/subscriptions",
        "/demo/bots/draft_bot/subscriptions",
        "/other/bots/other_bot/subscriptions",
    ] {
        assert_eq!(api.post(path, body.clone()).await.status, 404, "{path}");
    }
    assert_eq!(api.delete(&format!("{SUBS}/999")).await.status, 404);
    assert_eq!(api.delete(&format!("{SUBS}/abc")).await.status, 404);
    assert_eq!(
        api.delete(&format!("/demo/bots/error_bot/subscriptions/{id}"))
            .await
            .status,
        404,
        "an id of another BOT"
    );
    assert_eq!(
        api.send(api.request(reqwest::Method::PUT, SUBS))
            .await
            .status,
        405
    );
    for (body, needle) in [
        (
            json!({"callback_type": "webhook", "callback_endpoint": "https://x"}),
            "event",
        ),
        (
            json!({"event": "onended", "callback_type": "mailhook", "callback_endpoint": "https://x"}),
            "callback_type",
        ),
        (
            json!({"event": "onended", "callback_type": "webhook", "callback_endpoint": "ftp://x"}),
            "callback_endpoint",
        ),
        (
            json!({"event": "onended", "callback_type": "webhook", "callback_endpoint": "https://x", "extra": 1}),
            "extra",
        ),
    ] {
        let a = api.post(SUBS, body).await;
        assert_eq!(a.status, 422);
        assert!(
            a.body["message"].as_str().unwrap().contains(needle),
            "{}",
            a.body
        );
    }
    assert_eq!(api.get(&format!("{SUBS}?x=1")).await.status, 422);
    assert_eq!(emu.subscriptions().len(), 1, "nothing else was created");
}

#[tokio::test]
async fn every_run_of_a_subscribed_bot_is_delivered_however_it_started() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![200]).await;
    let other = Receiver::start(vec![200]).await;
    api.post(SUBS, subscribe_body(&rx.url)).await;
    api.clone()
        .with_lang("ja")
        .post(
            "/demo/bots/error_bot/subscriptions",
            subscribe_body(&other.url),
        )
        .await;

    let via_api = api
        .execute("echo_bot", json!({"input": {"message": "api"}}))
        .await
        .body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let input = json!({"message": "console"}).as_object().cloned();
    let via_console = emu
        .run_from_console(DEMO_PUBLIC_ID, "echo_bot", input)
        .unwrap();
    let via_admin_http = admin(&emu)
        .run_from_console(DEMO_PUBLIC_ID, "error_bot", None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || rx.bodies().len() == 2
            && other.bodies().len() == 1)
        .await
    );

    let mut got: Vec<_> = rx.bodies().into_iter().map(|(_, b)| b).collect();
    got.sort_by_key(|b| b["output"]["echo"].as_str().unwrap().to_string());
    assert_eq!(got[0]["job_id"], via_api.as_str());
    assert_eq!(got[1]["job_id"], via_console.as_str());
    for b in &got {
        assert_eq!(
            (b["code"].as_i64(), b["status"].as_i64()),
            (Some(201), Some(0))
        );
        assert_eq!(b["bot_id"], "echo_bot");
    }
    assert_eq!(got[1]["output"]["shout"], "CONSOLE");
    let (ct, failed) = &other.bodies()[0];
    assert_eq!(ct, "application/json");
    assert_eq!(failed["job_id"], via_admin_http.as_str());
    assert_eq!(failed["status"], 1);
    assert!(failed.get("elapsed_time").is_some());
    assert_eq!(
        emu.job(&via_console).unwrap().origin,
        JobOrigin::Console,
        "a console run is told apart"
    );
    assert_eq!(emu.job(&via_api).unwrap().origin, JobOrigin::Api);
    assert_eq!(emu.stats().jobs_created, 3);
    assert_eq!(
        emu.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
            .count(),
        1,
        "console runs do not go through the API"
    );
    let attempts = emu.callbacks();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.subscribe_id.is_some()));
    assert!(
        attempts.iter().all(|a| !a.url.contains("s3cret")),
        "redacted"
    );
}

#[tokio::test]
async fn subscription_deliveries_are_retried_and_stop_after_unsubscribe() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![500, 200]).await;
    let own = Receiver::start(vec![200]).await;
    let id = api.post(SUBS, subscribe_body(&rx.url)).await.body["subscribe_id"]
        .as_u64()
        .unwrap();
    // A job with its own callback endpoint is delivered there and to the subscription.
    let job = api
        .execute("echo_bot", json!({"callback_endpoint": own.url}))
        .await
        .body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(eventually(Duration::from_secs(5), || rx.bodies().len() == 2).await);
    assert!(eventually(Duration::from_secs(5), || own.bodies().len() == 1).await);
    let mut sub: Vec<_> = emu
        .callbacks()
        .into_iter()
        .filter(|a| a.subscribe_id == Some(id))
        .map(|a| (a.job_id, a.attempt, a.status))
        .collect();
    sub.sort();
    assert_eq!(
        sub,
        [(job.clone(), 1, Some(500)), (job.clone(), 2, Some(200))]
    );

    api.delete(&format!("{SUBS}/{id}")).await;
    let next = api.execute("echo_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    api.wait_job(&next).await;
    // Give a (wrong) delivery the time it would need before asserting there was none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.bodies().len(), 2, "no delivery after unsubscribe");
    assert!(emu.callbacks().iter().all(|a| a.job_id != next));
}

#[tokio::test]
async fn console_runs_are_checked() {
    let emu = start().await;
    assert!(emu.run_from_console("demo", "draft_bot", None).is_err());
    assert!(emu.run_from_console("demo", "nope", None).is_err());
    let bad_input = json!({"nope": "x"}).as_object().cloned();
    let e = emu
        .run_from_console("demo", "echo_bot", bad_input)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!(
            "{}/__emulator/bots/demo/echo_bot/run",
            emu.base_url()
        ))
        .body("{\"inputs\": {}}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .post(format!(
            "{}/__emulator/bots/demo/echo_bot/run",
            emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "an empty body runs with the defaults");
    assert_eq!(emu.stats().jobs_created, 1);
}

#[tokio::test]
async fn a_suspended_job_is_delivered_to_the_subscriptions_too() {
    let emu = start().await;
    let api = Api::new(&emu);
    let rx = Receiver::start(vec![200]).await;
    api.post("/demo/bots/slow_bot/subscriptions", subscribe_body(&rx.url))
        .await;
    let id = api.execute("slow_bot", json!({})).await.body["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.delete(&format!("/demo/jobs/{id}")).await.status, 200);
    assert!(eventually(Duration::from_secs(5), || rx.bodies().len() == 1).await);
    let (_, job) = &rx.bodies()[0];
    assert_eq!(job["job_id"], id.as_str());
    assert_eq!(job["status"], 1);
    assert_eq!(job["message"], "The job was suspended");
}
