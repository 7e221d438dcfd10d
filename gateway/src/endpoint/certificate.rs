//! A DTLS certificate of its own for every webrtcbin.
//!
//! GStreamer's DTLS elements share one generated certificate per process unless given one. A
//! rebuilt webrtcbin (see [`super::negotiation`]) then offers or answers with new ICE
//! credentials but the *same* fingerprint, and Chromium takes that for an ICE restart without
//! a DTLS restart: it keeps its finished DTLS association and ignores the fresh webrtcbin's
//! ClientHello, whose retransmissions go unanswered (measured: the page reports DTLS
//! `connected` while the endpoint stays `connecting` and sends nothing). With a certificate per
//! webrtcbin the fingerprint changes with every rebuild, which makes every remote, browsers
//! included, start a new DTLS handshake with it.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509NameBuilder, X509};

/// How long a certificate is valid. It only has to outlive the peer connection; browsers
/// check the fingerprint, not the dates, but a certificate past its end would be refused.
const VALID_DAYS: u32 = 30;

/// A webrtcbin's DTLS certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// The certificate and its private key in PEM, as webrtcbin's DTLS elements take it
    /// (`pem` of `dtlssrtpdec`).
    pub pem: String,
    /// The `a=fingerprint:` value of the certificate (`sha-256 AB:CD:…`). webrtcbin 1.22
    /// computes a wrong one for a certificate given with its key: it decodes every base64
    /// line of the PEM, the key's included. Its descriptions get this one instead.
    pub fingerprint: String,
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate. ECDSA, as browsers use: generating it takes
    /// well under a millisecond, where GStreamer's default RSA key takes tens.
    pub fn fresh() -> Result<Self, ErrorStack> {
        let (cert, key_pem) = generate()?;
        let digest = cert.digest(MessageDigest::sha256())?;
        let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        let mut pem = String::from_utf8_lossy(&cert.to_pem()?).into_owned();
        pem.push_str(&key_pem);
        Ok(Certificate {
            pem,
            fingerprint: format!("sha-256 {}", hex.join(":")),
        })
    }
}

fn generate() -> Result<(X509, String), ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "poolgate")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    // A day back, so a peer whose clock is a little behind still accepts it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (not_before, not_after) = (
        Asn1Time::from_unix(now - 86_400)?,
        Asn1Time::days_from_now(VALID_DAYS)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let key_pem = String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned();
    Ok((builder.build(), key_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_is_new_and_holds_a_key() {
        let a = Certificate::fresh().unwrap();
        let b = Certificate::fresh().unwrap();
        assert_ne!(a.pem, b.pem);
        assert_ne!(a.fingerprint, b.fingerprint);
        let cert = X509::from_pem(a.pem.as_bytes()).unwrap();
        let key = PKey::private_key_from_pem(a.pem.as_bytes()).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert!(cert.verify(&key).unwrap(), "self-signed");
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_certificate_alone() {
        let c = Certificate::fresh().unwrap();
        let cert = X509::from_pem(c.pem.as_bytes()).unwrap();
        let der = cert.to_der().unwrap();
        let digest = openssl::sha::sha256(&der);
        let expected: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(c.fingerprint, format!("sha-256 {}", expected.join(":")));
        assert_eq!(c.fingerprint.len(), "sha-256 ".len() + 32 * 3 - 1);
    }
}
