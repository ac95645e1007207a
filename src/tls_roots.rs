//! The trusted roots of every HTTPS client (the Cloud BOT client's pools and the AWS SDK
//! clients): the Mozilla roots compiled into the binary (`webpki-root-certs`), parsed from DER
//! straight into trust anchors once per process and shared, plus the test-only extra CA. No PEM
//! on the way: encoding the roots as PEM and decoding them again cost ≈ 1 ms of CPU per SDK
//! connector (docs/benchmarks.md, "Levers", levers 13 and 16); why compiled-in roots at all:
//! docs/benchmarks.md, "Trusted roots".

use std::sync::{Arc, Mutex, PoisonError};

/// The test-only extra CA was given but holds no certificate rustls accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidExtraCa;

/// The last store built and the extra CA it was built with: a process builds its clients from
/// one configuration, so every client after the first gets the same store without parsing.
type Built = (Option<Vec<u8>>, Arc<rustls::RootCertStore>);
static BUILT: Mutex<Option<Built>> = Mutex::new(None);

/// The compiled-in roots as parsed trust anchors, plus every certificate of
/// `test_only_extra_roots` (PEM, for tests against local HTTPS stand-ins only). Parsed on the
/// first call; later calls with the same extra CA share that store.
pub fn trusted_roots(
    test_only_extra_roots: Option<&[u8]>,
) -> Result<Arc<rustls::RootCertStore>, InvalidExtraCa> {
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((extra, roots)) = built.as_ref()
        && extra.as_deref() == test_only_extra_roots
    {
        return Ok(Arc::clone(roots));
    }
    let roots = Arc::new(parse(test_only_extra_roots)?);
    *built = Some((
        test_only_extra_roots.map(<[u8]>::to_vec),
        Arc::clone(&roots),
    ));
    Ok(roots)
}

fn parse(test_only_extra_roots: Option<&[u8]>) -> Result<rustls::RootCertStore, InvalidExtraCa> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let compiled_in = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
    let mut roots = rustls::RootCertStore {
        roots: Vec::with_capacity(compiled_in.len() + 1),
    };
    // The anchors borrow the static DER (subject, key, name constraints are slices of it), where
    // `RootCertStore::add_parsable_certificates` would copy each into its own allocations.
    roots.roots.extend(
        compiled_in
            .iter()
            .filter_map(|cert| webpki::anchor_from_trusted_cert(cert).ok()),
    );
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
        let roots = parse(None).expect("no extra CA");
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        // The same anchors rustls's own parser makes, field by field.
        let mut reference = rustls::RootCertStore::empty();
        reference
            .add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        assert_eq!(roots.roots, reference.roots);
    }

    #[test]
    fn every_client_of_a_process_shares_one_store() {
        let first = trusted_roots(None).expect("no extra CA");
        let second = trusted_roots(None).expect("no extra CA");
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn an_extra_ca_without_a_certificate_is_refused() {
        assert!(matches!(
            trusted_roots(Some(b"not pem")),
            Err(InvalidExtraCa)
        ));
    }
}
