//! The certificate chain a server presented: a summary for people, and a
//! verdict of our own, since the probe's TLS client accepts any chain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// How many names of a certificate the summary lists.
const NAMES_SHOWN: usize = 10;
/// How long a distinguished name may be in the summary.
const DN_SHOWN: usize = 200;

/// What keeps a certificate chain from being verified for the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertProblem {
    /// The leaf signed itself and is not a trust anchor.
    SelfSigned,
    /// The chain does not lead to a trusted root.
    UntrustedIssuer,
    Expired,
    NotYetValid,
    /// The leaf does not name the server.
    WrongName,
}

impl CertProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            CertProblem::SelfSigned => "self-signed",
            CertProblem::UntrustedIssuer => "untrusted issuer",
            CertProblem::Expired => "expired",
            CertProblem::NotYetValid => "not yet valid",
            CertProblem::WrongName => "wrong name",
        }
    }
}

/// One certificate, as people read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    /// DNS names and addresses (subjectAltName).
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// Its AIA extension says where the issuer's certificate can be fetched.
    pub names_issuer_url: bool,
}

/// The chain and the verdict on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    pub certs: Vec<CertSummary>,
    /// Empty when the chain is verified for the name.
    pub problems: Vec<CertProblem>,
    /// Why the issuer is not trusted, when it is not.
    pub issuer_detail: Option<String>,
}

impl ChainSummary {
    pub fn verified(&self) -> bool {
        self.problems.is_empty()
    }

    /// The chain leads to a trusted root and is in date; only the name
    /// may be wrong. Postfix calls such a session "Trusted".
    pub fn chain_trusted(&self) -> bool {
        self.problems.iter().all(|p| *p == CertProblem::WrongName)
    }

    pub fn verdict(&self) -> String {
        if self.problems.is_empty() {
            "verified".into()
        } else {
            let words: Vec<_> = self.problems.iter().map(|p| p.as_str()).collect();
            words.join(", ")
        }
    }

    pub fn leaf(&self) -> Option<&CertSummary> {
        self.certs.first()
    }
}

impl fmt::Display for ChainSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} certificate(s); verdict: {}",
            self.certs.len(),
            self.verdict()
        )?;
        for (i, c) in self.certs.iter().enumerate() {
            writeln!(f, "[{i}] subject: {}", c.subject)?;
            writeln!(f, "    issuer:  {}", c.issuer)?;
            if !c.names.is_empty() {
                writeln!(f, "    names:   {}", c.names.join(", "))?;
            }
            writeln!(f, "    valid:   {} to {}", c.not_before, c.not_after)?;
        }
        if let Some(d) = &self.issuer_detail {
            writeln!(f, "issuer: {d}")?;
        }
        Ok(())
    }
}

/// The roots a chain is checked against: the system's, and any the user
/// adds (the CA file Postfix trusts).
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    store: Arc<RootCertStore>,
}

impl TrustAnchors {
    /// The system's roots plus `extra`, and what went wrong loading the
    /// system's (for a warning). Unreadable system certificates are
    /// skipped: the verdict then says "untrusted issuer", never more.
    pub fn system_and(extra: &[CertificateDer<'static>]) -> (TrustAnchors, Vec<String>) {
        let mut store = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let mut warnings: Vec<String> = native.errors.iter().map(|e| e.to_string()).collect();
        let (added, _) = store.add_parsable_certificates(native.certs);
        if added == 0 {
            warnings.push(
                "no system root certificates were found: every chain will read as untrusted unless --ca-file names its CA"
                    .into(),
            );
        }
        store.add_parsable_certificates(extra.iter().cloned());
        let anchors = TrustAnchors {
            store: Arc::new(store),
        };
        (anchors, warnings)
    }

    /// Only `roots` (for tests and for a host whose system store must not count).
    pub fn only(roots: &[CertificateDer<'static>]) -> TrustAnchors {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(roots.iter().cloned());
        TrustAnchors {
            store: Arc::new(store),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

/// Summarises `chain` (leaf first) and judges it for `name` at `now`.
pub fn evaluate(
    chain: &[CertificateDer<'_>],
    name: &ServerName<'static>,
    anchors: &TrustAnchors,
    now: UnixTime,
) -> ChainSummary {
    let certs: Vec<CertSummary> = chain.iter().map(|c| summarise(c)).collect();
    let Some(leaf) = chain.first() else {
        return ChainSummary {
            certs,
            problems: vec![CertProblem::UntrustedIssuer],
            issuer_detail: Some("the server sent no certificate".into()),
        };
    };
    let parsed = X509Certificate::from_der(leaf).ok().map(|(_, c)| c);
    let validity = parsed.as_ref().map(|c| {
        (
            c.validity().not_before.timestamp(),
            c.validity().not_after.timestamp(),
        )
    });
    let at = now.as_secs() as i64;
    let (expired, early) = validity.map_or((false, false), |(from, to)| (at > to, at < from));
    let self_signed = parsed
        .as_ref()
        .is_some_and(|c| c.subject().as_raw() == c.issuer().as_raw());
    // The issuer is judged at a moment the leaf is valid, so that an
    // expired certificate from a trusted CA still shows as trusted-but-expired.
    let when = match validity {
        Some((from, to)) if expired || early => {
            UnixTime::since_unix_epoch(Duration::from_secs((from / 2 + to / 2).max(0) as u64))
        }
        _ => now,
    };
    let issuer = issuer_verdict(leaf, &chain[1..], name, anchors, when);
    let name_ok = webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok())
        || parsed
            .as_ref()
            .is_some_and(|c| common_name_matches(c, name));

    let mut problems = Vec::new();
    match (&issuer, self_signed) {
        (Ok(()), _) => {}
        (Err(_), true) => problems.push(CertProblem::SelfSigned),
        (Err(_), false) => problems.push(CertProblem::UntrustedIssuer),
    }
    if expired {
        problems.push(CertProblem::Expired);
    }
    if early {
        problems.push(CertProblem::NotYetValid);
    }
    if !name_ok {
        problems.push(CertProblem::WrongName);
    }
    ChainSummary {
        certs,
        problems,
        issuer_detail: issuer.err(),
    }
}

/// The fallback Postfix (OpenSSL) keeps and webpki does not: a certificate
/// with no DNS name among its subjectAltNames is matched on its subject CN.
fn common_name_matches(cert: &X509Certificate<'_>, name: &ServerName<'static>) -> bool {
    let ServerName::DnsName(wanted) = name else {
        return false;
    };
    let has_dns_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName(_)))
        });
    if has_dns_san {
        return false;
    }
    let wanted = wanted.as_ref().to_ascii_lowercase();
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| dns_name_matches(&cn.to_ascii_lowercase(), &wanted))
}

/// `pattern` names `host`: equal, or `*.rest` for one label in front of `rest`.
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => pattern == host,
    }
}

fn issuer_verdict(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    name: &ServerName<'static>,
    anchors: &TrustAnchors,
    when: UnixTime,
) -> Result<(), String> {
    if anchors.is_empty() {
        return Err("there are no trusted roots to check it against".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(anchors.store.clone(), provider)
        .build()
        .map_err(|e| format!("cannot check it: {e}"))?;
    match verifier.verify_server_cert(leaf, intermediates, name, &[], when) {
        Ok(_) => Ok(()),
        // The name is judged on its own.
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Ok(()),
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Err(
            "the chain does not lead to a trusted root (an unknown CA, a missing intermediate, or TLS interception)"
                .into(),
        ),
        Err(e) => Err(format!("the chain does not verify: {e}")),
    }
}

fn summarise(der: &CertificateDer<'_>) -> CertSummary {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return CertSummary {
            subject: "(a certificate that does not parse)".into(),
            ..Default::default()
        };
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(shorten(d)),
                GeneralName::IPAddress(ip) => names.push(ip_text(ip)),
                _ => {}
            }
        }
    }
    let total = names.len();
    if total > NAMES_SHOWN {
        names.truncate(NAMES_SHOWN);
        names.push(format!("and {} more", total - NAMES_SHOWN));
    }
    let names_issuer_url = cert.extensions().iter().any(|e| {
        matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(aia)
            if aia.accessdescs.iter().any(|d| d.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS))
    });
    CertSummary {
        subject: shorten(&cert.subject().to_string()),
        issuer: shorten(&cert.issuer().to_string()),
        names,
        not_before: date(cert.validity().not_before.timestamp()),
        not_after: date(cert.validity().not_after.timestamp()),
        names_issuer_url,
    }
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes")).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")).to_string(),
        _ => "(an address that does not parse)".into(),
    }
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (seconds since 1970)"))
}

/// A name or DN from the peer's certificate, safe to print and to put in a
/// comment: controls and bidi overrides become `?`, long text is cut.
fn shorten(s: &str) -> String {
    crate::smtp::ellipsize(crate::smtp::censor(s), DN_SHOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pki::{CertKind, Pki};

    #[test]
    fn common_names_match_as_openssl_matches_them() {
        assert!(dns_name_matches("smtp.relay.test", "smtp.relay.test"));
        assert!(dns_name_matches("*.relay.test", "smtp.relay.test"));
        assert!(!dns_name_matches("*.relay.test", "a.smtp.relay.test"));
        assert!(!dns_name_matches("*.relay.test", "relay.test"));
        assert!(!dns_name_matches("other.test", "smtp.relay.test"));
    }

    #[test]
    fn a_certificate_without_dns_names_is_matched_on_its_cn() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "smtp.relay.test");
        let der = params.self_signed(&key).unwrap().der().clone();
        let name = ServerName::try_from("smtp.relay.test").unwrap();
        let s = evaluate(&[der], &name, &TrustAnchors::only(&[]), UnixTime::now());
        assert!(!s.problems.contains(&CertProblem::WrongName), "{s}");
    }

    fn judge(kind: CertKind, with_ca: bool) -> ChainSummary {
        let pki = Pki::new("certs").unwrap();
        let id = pki.identity(kind, "smtp.relay.test").unwrap();
        let anchors = if with_ca {
            TrustAnchors::only(std::slice::from_ref(pki.ca_der()))
        } else {
            TrustAnchors::only(&[])
        };
        let name = ServerName::try_from("smtp.relay.test").unwrap();
        evaluate(&id.chain, &name, &anchors, UnixTime::now())
    }

    #[test]
    fn each_certificate_kind_gets_its_own_verdict() {
        use CertProblem::*;
        let cases = [
            (CertKind::Trusted, vec![]),
            (CertKind::Intermediate, vec![]),
            (CertKind::MissingIntermediate, vec![UntrustedIssuer]),
            (CertKind::SelfSigned, vec![SelfSigned]),
            (CertKind::Expired, vec![Expired]),
            (CertKind::NotYetValid, vec![NotYetValid]),
            (CertKind::WrongName, vec![WrongName]),
        ];
        for (kind, problems) in cases {
            let s = judge(kind, true);
            assert_eq!(s.problems, problems, "{kind}: {s}");
        }
        let s = judge(CertKind::WrongName, true);
        assert!(s.chain_trusted() && !s.verified());
        assert_eq!(s.leaf().unwrap().names, [crate::pki::WRONG_NAME]);
    }

    #[test]
    fn without_the_ca_the_issuer_is_untrusted() {
        let s = judge(CertKind::Trusted, false);
        assert_eq!(s.problems, [CertProblem::UntrustedIssuer]);
        assert!(s.issuer_detail.is_some());
        let s = judge(CertKind::Expired, false);
        assert_eq!(
            s.problems,
            [CertProblem::UntrustedIssuer, CertProblem::Expired]
        );
    }

    #[test]
    fn summary_reads_like_a_certificate() {
        let s = judge(CertKind::Intermediate, true);
        assert_eq!(s.certs.len(), 2);
        let leaf = s.leaf().unwrap();
        assert!(leaf.subject.contains("CN=smtp.relay.test"), "{leaf:?}");
        assert!(leaf.issuer.contains("tlsharness intermediate"), "{leaf:?}");
        assert_eq!(leaf.names, ["smtp.relay.test"]);
        assert!(leaf.not_before < leaf.not_after);
        assert!(s.to_string().contains("verdict: verified"));
    }
}
