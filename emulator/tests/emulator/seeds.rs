//! Seeds: the built-in demo seed, the test seed file, and rejection of inconsistent seeds.

use cloudbot_emulator::{Outcome, Permission, Seed, SeedError};

use crate::support::{seed_path, test_seed};

#[test]
fn demo_seed_has_the_documented_contract_bots_and_tokens() {
    let seed = Seed::demo();
    seed.validate().unwrap();
    assert_eq!(seed.contracts.len(), 1);
    let c = &seed.contracts[0];
    assert_eq!(c.public_id, "demo");
    let bot = |id: &str| c.bots.iter().find(|b| b.id == id).unwrap();
    assert_eq!(
        (bot("echo_bot").duration_ms, bot("echo_bot").outcome),
        (2_000, Outcome::Succeed)
    );
    assert_eq!(
        (bot("error_bot").duration_ms, bot("error_bot").outcome),
        (2_000, Outcome::Error)
    );
    assert_eq!(bot("slow_bot").duration_ms, 30_000);
    assert!(!bot("draft_bot").published);
    let t = &seed.tokens;
    assert_eq!(
        (t[0].access_token.as_str(), t[0].secret_key.as_str()),
        ("demo-access-token", "demo-secret-key")
    );
    assert_eq!(
        t[0].permissions,
        [Permission::Refer, Permission::Execute, Permission::Suspend]
    );
    assert_eq!(
        (t[1].access_token.as_str(), t[1].secret_key.as_str()),
        ("demo-refer-token", "demo-refer-secret")
    );
    assert_eq!(t[1].permissions, [Permission::Refer]);
    assert!(
        !format!("{seed:?}").contains("demo-secret-key"),
        "Debug redacts tokens"
    );
}

#[test]
fn test_seed_file_matches_the_demo_ids_with_short_durations() {
    let seed = test_seed();
    let demo = Seed::demo();
    assert_eq!(seed.callback_interval_ms, Some(100));
    let c = &seed.contracts[0];
    assert_eq!(c.public_id, "demo");
    for b in &demo.contracts[0].bots {
        let t = c.bots.iter().find(|x| x.id == b.id).unwrap();
        assert_eq!(
            (&t.name, &t.input, &t.output, t.outcome, t.published),
            (&b.name, &b.input, &b.output, b.outcome, b.published)
        );
        assert!(t.duration_ms <= 3_000);
    }
    for t in &demo.tokens {
        assert!(seed.tokens.contains(t));
    }
}

#[test]
fn demo_seed_round_trips_through_json() {
    let text = serde_json::to_string(&Seed::demo()).unwrap();
    assert_eq!(Seed::from_json(&text).unwrap(), Seed::demo());
}

#[test]
fn inconsistent_seeds_are_rejected_with_a_reason() {
    let base = std::fs::read_to_string(seed_path()).unwrap();
    let cases = [
        (
            base.replacen(
                "\"duration_ms\": 300,",
                "\"duration_ms\": 300, \"colour\": 1,",
                1,
            ),
            "Parse",
        ),
        (
            base.replacen("\"from\": \"tags\"", "\"from\": \"nope\"", 1),
            "unknown input",
        ),
        (
            base.replacen(
                "\"contracts\": [\"other\"]",
                "\"contracts\": [\"ghost\"]",
                1,
            ),
            "unknown contract",
        ),
        (
            base.replacen("\"id\": \"error_bot\"", "\"id\": \"echo_bot\"", 1),
            "duplicate BOT",
        ),
        (
            base.replacen("\"id\": \"error_bot\"", "\"id\": \"a/b\"", 1),
            "path segment",
        ),
        (
            base.replacen("\"default\": [\"demo\"]", "\"default\": \"demo\"", 1),
            "array",
        ),
    ];
    for (text, needle) in cases {
        let err = Seed::from_json(&text).unwrap_err();
        let shown = match &err {
            SeedError::Parse(_) => "Parse".to_string(),
            other => other.to_string(),
        };
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    assert!(matches!(
        Seed::from_file("/nonexistent/seed.json"),
        Err(SeedError::Read { .. })
    ));
}

/// [I] Ids may use RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): a contract and a
/// BOT with `.` and `~` are served, executed, referred to, listed and subscribed to.
#[tokio::test]
async fn ids_with_dots_and_tildes_are_served_end_to_end() {
    let mut seed = Seed::demo_with_durations(200, 200, 2000);
    let public_id = "acme.co~jp";
    let bot_id = "daily.report-v1.2~b";
    seed.contracts[0].public_id = public_id.into();
    seed.contracts[0].bots[0].id = bot_id.into();
    for t in &mut seed.tokens {
        t.contracts = vec![public_id.into()];
    }
    seed.validate().unwrap();
    let emu = crate::support::start_with(cloudbot_emulator::EmulatorOptions::new(seed)).await;
    let api = crate::support::Api::new(&emu);
    let bots = api.get(&format!("/{public_id}/bots")).await;
    assert_eq!(bots.status, 200);
    assert_eq!(bots.body["bots"][0]["id"], bot_id);
    let contracts = api.get("/services/contracts").await;
    assert_eq!(contracts.body["contracts"][0]["public_id"], public_id);
    let sub = api
        .post(
            &format!("/{public_id}/bots/{bot_id}/subscriptions"),
            serde_json::json!({"event": "onended", "callback_type": "webhook",
                               "callback_endpoint": "https://hooks.example/h"}),
        )
        .await;
    assert_eq!(sub.status, 201);
    let a = api
        .post(
            &format!("/{public_id}/bots/{bot_id}/jobs"),
            serde_json::json!({"timeout": 5000}),
        )
        .await;
    assert_eq!((a.status, a.body["status"].as_i64()), (200, Some(0)));
    assert_eq!(a.body["bot_id"], bot_id);
    let job_id = a.body["job_id"].as_str().unwrap();
    let r = api.get(&format!("/{public_id}/jobs/{job_id}")).await;
    assert_eq!((r.status, r.body["status"].as_i64()), (200, Some(0)));
    let listed = api.get(&format!("/{public_id}/bots/{bot_id}/jobs")).await;
    assert_eq!(listed.body["jobs"][0]["job_id"], job_id);
    assert_eq!(emu.job(job_id).unwrap().public_id, public_id);
}

#[test]
fn ids_that_would_need_encoding_are_refused() {
    for bad in [
        "a/b", "a b", "a%2Fb", "a?b", "a#b", ".", "..", "日本", "a+b", "a@b", "",
    ] {
        let mut seed = Seed::demo();
        seed.contracts[0].bots[0].id = bad.into();
        assert!(
            matches!(seed.validate(), Err(SeedError::Invalid(_))),
            "BOT id {bad:?}"
        );
        let mut seed = Seed::demo();
        seed.contracts[0].public_id = bad.into();
        assert!(seed.validate().is_err(), "public_id {bad:?}");
    }
}
