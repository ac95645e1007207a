//! Credentials never show up in Debug output or in any error's Display/Debug.

use std::time::Duration;

use cloudbot_emulator::{FaultKind, FaultRule};
use cloudbot_trigger::cloudbot::{CloudBotError, Credentials, ExecuteRequest};
use cloudbot_trigger::error::Classified;

use crate::support::{
    ACCESS_TOKEN, SECRET_KEY, call, client_for, credentials, demo, emulator, execute_demo, job,
    unprocessable,
};

const T: Duration = Duration::from_secs(5);

fn assert_clean(text: &str) {
    for secret in [ACCESS_TOKEN, SECRET_KEY, "wrong-secret-value"] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

#[test]
fn credentials_debug_is_redacted() {
    let c = credentials();
    assert_clean(&format!("{c:?} {c:#?}"));
    let ctx = call(&c, T);
    assert_clean(&format!("{ctx:?}"));
}

#[tokio::test]
async fn errors_never_contain_credentials() {
    let emu = emulator().await;
    let client = client_for(&emu.base_url());
    assert_clean(&format!("{client:?}"));
    let creds = credentials();
    let wrong = Credentials::new(ACCESS_TOKEN.to_owned(), "wrong-secret-value".to_owned());
    let public_id = demo();
    let mut errors: Vec<CloudBotError> = Vec::new();
    errors.push(
        client
            .list_bots(&call(&wrong, T), &public_id)
            .await
            .unwrap_err(),
    );
    errors.push(
        client
            .refer_job(
                &call(&creds, T),
                &job(&client, "demo", "00000000-0000-0000-0000-000000000000"),
            )
            .await
            .unwrap_err(),
    );
    errors.push(
        execute_demo(&client, &creds, "echo_bot", &unprocessable(), T)
            .await
            .unwrap_err(),
    );
    for fault in [
        FaultKind::ResetAfter,
        FaultKind::TruncatedBody,
        FaultKind::MalformedJson,
    ] {
        emu.set_faults([FaultRule::new(fault).method("POST").times(1)])
            .unwrap();
        errors.push(
            execute_demo(&client, &creds, "echo_bot", &ExecuteRequest::default(), T)
                .await
                .unwrap_err(),
        );
    }
    errors.push(
        client
            .list_bots(&call(&creds, Duration::ZERO), &public_id)
            .await
            .unwrap_err(),
    );
    assert_eq!(errors.len(), 7);
    for e in &errors {
        assert_clean(&format!("{e} {e:?} {}", e.kind().name));
    }
}
