//! The trusted roots of every HTTPS client (the Cloud BOT client's pools and the AWS SDK
//! clients): the Mozilla roots compiled into the binary (`webpki-root-certs`), parsed from DER
//! straight into trust anchors, plus the test-only extra CA. No PEM on the way: encoding the
//! roots as PEM and decoding them again cost ≈ 1 ms of CPU per SDK connector (docs/benchmarks.md,
//! "Levers", lever 13); why compiled-in roots at all: docs/benchmarks.md, "Trusted roots".

/// The test-only extra CA was given but holds no certificate rustls accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidExtraCa;

/// The compiled-in roots as parsed trust anchors, plus every certificate of
/// `test_only_extra_roots` (PEM, for tests against local HTTPS stand-ins only).
pub fn trusted_roots(
    test_only_extra_roots: Option<&[u8]>,
) -> Result<rustls::RootCertStore, InvalidExtraCa> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    if let Some(pem) = test_only_extra_roots {
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.map_err(|_| InvalidExtraCa)?)
                .map_err(|_| InvalidExtraCa)?;
            added += 1;
        }
        if added == 0 {
            return Err(InvalidExtraCa);
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_compiled_in_root_becomes_a_trust_anchor() {
        let roots = trusted_roots(None).expect("no extra CA");
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
    }

    #[test]
    fn an_extra_ca_without_a_certificate_is_refused() {
        assert!(matches!(
            trusted_roots(Some(b"not pem")),
            Err(InvalidExtraCa)
        ));
    }
}
