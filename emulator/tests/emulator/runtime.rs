//! The emulator runs on its own thread: it works from current_thread and multi-thread test
//! runtimes and from plain sync code, and stops when dropped.

use std::time::Duration;

use cloudbot_emulator::{Emulator, EmulatorOptions};
use serde_json::json;

use crate::support::{Api, start, start_with, test_seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_multi_thread_runtime() {
    let emu = start().await;
    let a = Api::new(&emu)
        .execute("echo_bot", json!({"timeout": 3000}))
        .await;
    assert_eq!(a.body["status"], 0);
}

#[tokio::test(start_paused = true)]
async fn job_timers_run_in_real_time_even_when_the_caller_pauses_time() {
    let emu = start().await;
    let api = Api::new(&emu);
    let a = api.execute("echo_bot", json!({})).await;
    std::thread::sleep(Duration::from_millis(500));
    let job = api
        .get(&format!(
            "/demo/jobs/{}",
            a.body["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(job.body["status"], 0);
}

#[test]
fn starts_and_stops_from_sync_code() {
    let emu = Emulator::start_blocking(EmulatorOptions::new(test_seed())).unwrap();
    let addr = emu.addr();
    assert!(emu.base_url().starts_with("http://127.0.0.1:"));
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(emu);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "port closed after drop"
    );
}

#[tokio::test]
async fn shutdown_closes_the_port_and_a_fixed_port_can_be_reused() {
    let emu = start().await;
    let port = emu.addr().port();
    emu.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    let again = start_with(EmulatorOptions::new(test_seed()).port(port)).await;
    assert_eq!(again.addr().port(), port);
    assert_eq!(
        again.callback_interval(),
        Duration::from_millis(100),
        "from the seed"
    );
}

#[tokio::test]
async fn callback_interval_option_overrides_the_seed() {
    let emu =
        start_with(EmulatorOptions::new(test_seed()).callback_interval(Duration::from_millis(5)))
            .await;
    assert_eq!(emu.callback_interval(), Duration::from_millis(5));
    let demo = Emulator::start(cloudbot_emulator::Seed::demo())
        .await
        .unwrap();
    assert_eq!(demo.callback_interval(), Duration::from_secs(30));
}

#[tokio::test]
async fn busy_port_is_a_bind_error() {
    let emu = start().await;
    let err = Emulator::start_with(EmulatorOptions::new(test_seed()).port(emu.addr().port()))
        .await
        .unwrap_err();
    assert!(matches!(err, cloudbot_emulator::EmulatorError::Bind { .. }));
}
