//! A moto server (pinned, from the repository's .tools) on a free loopback port, stopped by its
//! PID on drop: the AWS stand-in of the CLI's tests (Secrets Manager, EventBridge Scheduler,
//! DynamoDB, Step Functions, SQS), with the one place that says how a client or the CLI reaches it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The region every test client and the CLI use against moto.
const REGION: &str = "us-east-1";

/// A moto server (pinned, from the repository's .tools) on a free port, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts one; it is stopped (by its PID) when dropped.
    pub fn start() -> Moto {
        let bin =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv-aws/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/install-tools.sh aws",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Moto {
    /// The SDK configuration of a client of this moto: its endpoint, `us-east-1`, test keys.
    pub fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("test", "test", None, None, "test"),
                ),
            )
            .build()
    }

    /// Points `command` (the CLI) at this moto: the environment the AWS SDK reads for the
    /// endpoint, the region and the test keys.
    pub fn point<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
