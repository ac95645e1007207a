//! The test kit's own plumbing that needs no bootstrap: the counting Secrets Manager stand-in
//! answers the SDK's JSON shape and counts; `arm64-smoke` refuses a run whose inputs are missing
//! before it starts any process. (The sandbox against a real runtime: bench/tests/harness.rs,
//! with the floor; against the function: tests/it.)

use std::process::Command;

use cloudbot_testkit::secrets::SecretsEndpoint;

#[tokio::test]
async fn secrets_endpoint_counts_get_secret_value_and_rejects_other_ids() {
    let ep = SecretsEndpoint::start("s1", "{\"a\":1}").await.unwrap();
    let url = ep.url();
    let addr = url.trim_start_matches("http://").to_owned();
    let call = |id: &'static str| {
        let addr = addr.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let body = format!("{{\"SecretId\":\"{id}\"}}");
            let req = format!(
                "POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: secretsmanager.GetSecretValue\r\n\
                 content-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    let ok = call("s1").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"SecretString\":\"{\\\"a\\\":1}\""), "{ok}");
    let missing = call("other").await;
    assert!(missing.contains("ResourceNotFoundException"), "{missing}");
    assert_eq!(ep.get_secret_value_calls(), 2);
    assert_eq!(ep.other_calls(), 0);
}

/// Runs `arm64-smoke` with `args` and returns its exit status and stderr.
fn arm64_smoke(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_arm64-smoke"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn arm64_smoke_names_the_missing_input_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("cloudbot-testkit-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let present = dir.join("present");
    std::fs::write(&present, b"").unwrap();
    let present = present.to_str().unwrap();
    let missing = dir.join("missing");
    let missing = missing.to_str().unwrap();
    let work = dir.join("work");
    let work = work.to_str().unwrap();
    for (absent, args) in [
        ("--bootstrap", [missing, present, present]),
        ("--emulator", [present, missing, present]),
        ("--qemu", [present, present, missing]),
    ] {
        let [bootstrap, emulator, qemu] = args;
        let (status, stderr) = arm64_smoke(&[
            "--bootstrap",
            bootstrap,
            "--emulator",
            emulator,
            "--qemu",
            qemu,
            "--sysroot",
            present,
            "--work",
            work,
        ]);
        assert!(!status.success(), "{absent}: {stderr}");
        assert!(
            stderr.contains(&format!("{absent} {missing} does not exist")),
            "{absent}: {stderr}"
        );
    }
    assert!(
        !std::path::Path::new(work).exists(),
        "nothing was started, not even the work folder"
    );
    let _ = std::fs::remove_dir_all(dir);
}
