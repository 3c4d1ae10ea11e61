//! Per-run certificates made with rcgen: one CA (handed to Postfix as
//! `smtp_tls_CAfile`), an intermediate, and server identities of every kind
//! a relay or an intercepting middlebox may present. Private keys never
//! touch the disk; only the CA certificate is written for Postfix.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The kind of certificate a TLS server on the path presents.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    /// Signed by the run's CA, valid now, names the host.
    #[default]
    Trusted,
    /// Signed by the run's intermediate; the server sends leaf and intermediate.
    Intermediate,
    /// Signed by the run's intermediate; the server sends the leaf only.
    MissingIntermediate,
    /// Self-signed, names the host.
    SelfSigned,
    /// Signed by the run's CA, names the host, expired yesterday.
    Expired,
    /// Signed by the run's CA, names the host, valid from tomorrow.
    NotYetValid,
    /// Signed by the run's CA, valid now, names another host.
    WrongName,
}

impl CertKind {
    pub const ALL: [CertKind; 7] = [
        CertKind::Trusted,
        CertKind::Intermediate,
        CertKind::MissingIntermediate,
        CertKind::SelfSigned,
        CertKind::Expired,
        CertKind::NotYetValid,
        CertKind::WrongName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Trusted => "trusted",
            CertKind::Intermediate => "intermediate",
            CertKind::MissingIntermediate => "missing-intermediate",
            CertKind::SelfSigned => "self-signed",
            CertKind::Expired => "expired",
            CertKind::NotYetValid => "not-yet-valid",
            CertKind::WrongName => "wrong-name",
        }
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown certificate kind `{s}`"))
    }
}

/// The name a `wrong-name` certificate carries instead of the host's.
pub const WRONG_NAME: &str = "wrong-name.tlsharness.invalid";

#[derive(Debug, thiserror::Error)]
#[error("failed to make a certificate: {0}")]
pub struct PkiError(#[from] rcgen::Error);

/// A certificate chain and its private key, ready for rustls.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// The leaf certificate (DER).
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
}

/// A run's certificate authority.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
    now: OffsetDateTime,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    /// Makes a fresh CA and intermediate; `label` goes into their names.
    pub fn new(label: &str) -> Result<Arc<Pki>, PkiError> {
        let now = OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = dn(&format!("tlsharness CA {label}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = now - Duration::days(2);
        ca_params.not_after = now + Duration::days(60);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut int_params = CertificateParams::new(Vec::<String>::new())?;
        int_params.distinguished_name = dn(&format!("tlsharness intermediate {label}"));
        int_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        int_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        int_params.not_before = now - Duration::days(2);
        int_params.not_after = now + Duration::days(60);
        int_params.use_authority_key_identifier_extension = true;
        let intermediate = CertifiedIssuer::signed_by(int_params, KeyPair::generate()?, &ca)?;
        Ok(Arc::new(Pki {
            ca,
            intermediate,
            now,
        }))
    }

    /// The CA certificate, PEM, for Postfix's `smtp_tls_CAfile`.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        self.ca.der()
    }

    /// A server identity of the given kind for `hostname`.
    pub fn identity(&self, kind: CertKind, hostname: &str) -> Result<Identity, PkiError> {
        self.identity_for(kind, &[hostname])
    }

    /// A server identity of the given kind whose certificate names every
    /// one of `hostnames` (the first is its common name), as a mail
    /// exchanger's certificate names each MX host it serves as.
    pub fn identity_for(&self, kind: CertKind, hostnames: &[&str]) -> Result<Identity, PkiError> {
        let names: Vec<String> = match kind {
            CertKind::WrongName => vec![WRONG_NAME.to_owned()],
            _ => hostnames.iter().map(|h| (*h).to_owned()).collect(),
        };
        let name = names.first().cloned().unwrap_or_default();
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name = dn(&name);
        // As every public CA's certificates do; strict verifiers (Python
        // 3.13's default context, which the MTA-STS resolver daemon uses
        // on trixie) refuse a certificate without it.
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let (not_before, not_after) = match kind {
            CertKind::Expired => (self.now - Duration::days(30), self.now - Duration::days(1)),
            CertKind::NotYetValid => (self.now + Duration::days(1), self.now + Duration::days(30)),
            _ => (self.now - Duration::days(1), self.now + Duration::days(30)),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let chain = match kind {
            CertKind::SelfSigned => vec![params.self_signed(&key)?.der().clone()],
            CertKind::Intermediate => vec![
                params.signed_by(&key, &self.intermediate)?.der().clone(),
                self.intermediate.der().clone(),
            ],
            CertKind::MissingIntermediate => {
                vec![params.signed_by(&key, &self.intermediate)?.der().clone()]
            }
            _ => vec![params.signed_by(&key, &self.ca)?.der().clone()],
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(Identity { chain, key })
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "tlsharness");
    dn
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{ServerName, UnixTime};

    fn verify(pki: &Pki, id: &Identity, host: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        verifier
            .verify_server_cert(
                id.leaf(),
                &id.chain[1..],
                &ServerName::try_from(host.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn each_kind_fails_verification_for_its_own_reason() {
        let pki = Pki::new("test").unwrap();
        let host = "smtp.relay.test";
        for kind in CertKind::ALL {
            let id = pki.identity(kind, host).unwrap();
            let result = verify(&pki, &id, host);
            let good = matches!(kind, CertKind::Trusted | CertKind::Intermediate);
            assert_eq!(result.is_ok(), good, "{kind}: {result:?}");
        }
    }
}
