//! HTTPS: with a test CA the emulator serves TLS on its base URL; a client that trusts the CA
//! gets the usual answers, one that does not is refused at the handshake.

use cloudbot_emulator::{EmulatorOptions, TestCa};

use crate::support::{SECRET, TOKEN, start_with, test_seed};

fn client(trust: Option<&TestCa>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().no_proxy();
    if let Some(ca) = trust {
        let cert = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
        b = b.tls_certs_only([cert]);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn serves_https_to_a_client_that_trusts_the_test_ca() {
    let ca = TestCa::generate().unwrap();
    let emu = start_with(EmulatorOptions::new(test_seed()).tls(ca.clone())).await;
    assert!(emu.base_url().starts_with("https://127.0.0.1:"));
    let resp = client(Some(&ca))
        .get(format!("{}/demo/bots", emu.base_url()))
        .header("content-type", "application/json")
        .header("content-language", "en")
        .header("access-token", TOKEN)
        .header("secret-key", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let refused = client(None)
        .get(format!("{}/demo/bots", emu.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
    assert_eq!(emu.stats().requests, 1);
}
