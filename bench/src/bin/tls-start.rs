//! `tls-start PROVIDER`: in a fresh process, times the first ephemeral X25519 key generation
//! with `aws-lc` or `ring`, the first thing a rustls client does in a TLS handshake that needs
//! the provider's random generator. With aws-lc this first use seeds its DRBG, which (unless
//! aws-lc-sys was built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`) runs CPU jitter entropy; the
//! function pays it in its first invocation (first TLS connection), not in cold init.
//! Prints `first_us=N second_us=M`.

use std::time::Instant;

fn main() {
    let provider = std::env::args().nth(1).unwrap_or_default();
    let mut times = Vec::new();
    for _ in 0..2 {
        let start = Instant::now();
        let ok = match provider.as_str() {
            "aws-lc" => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                aws_lc_rs::agreement::EphemeralPrivateKey::generate(
                    &aws_lc_rs::agreement::X25519,
                    &rng,
                )
                .is_ok()
            }
            "ring" => {
                let rng = ring::rand::SystemRandom::new();
                ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng)
                    .is_ok()
            }
            _ => {
                eprintln!("usage: tls-start aws-lc|ring");
                std::process::exit(2);
            }
        };
        if !ok {
            eprintln!("tls-start: key generation failed");
            std::process::exit(1);
        }
        times.push(start.elapsed().as_micros());
    }
    println!("first_us={} second_us={}", times[0], times[1]);
}
