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
