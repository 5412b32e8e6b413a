//! Caller tokens: a probe client proves its appkey to each provider with a token in the THeader
//! info header [`CALLER_TOKEN`](crate::context::names::CALLER_TOKEN):
//!
//! ```text
//! v1:{appkey}:{unix seconds}:{nonce}:{signature}
//! ```
//!
//! The signature is Ed25519, by the key derived from the app's secret, over the appkey, the time,
//! the nonce and the address the client dialled (`host:port`), so a token is good for one
//! provider and a few minutes only. Providers verify it with the public key the app store keeps;
//! they hold no secret of other apps. A connection's token is verified once and remembered.
//!
//! Without TLS a token can be read off the network and replayed to the same provider while it is
//! fresh ([`MAX_SKEW`]); TLS on the RPC port closes that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};

use super::credential::AppCredential;
use crate::registry::layout::check_appkey;

/// The token format's version.
const VERSION: &str = "v1";
/// What the signed text starts with.
const CONTEXT: &str = "probe caller token v1";
/// Random bytes per token.
const NONCE_BYTES: usize = 12;
/// Longest token accepted (a v1 token is under 200 bytes).
pub const MAX_TOKEN_LEN: usize = 512;
/// How far a token's time may be from the provider's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(300);
/// How long a client uses one token before it signs a new one.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A token taken apart, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    /// The appkey it claims.
    pub appkey: &'a str,
    /// When it was signed, Unix seconds.
    pub at: u64,
    nonce: &'a str,
    signature: Vec<u8>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("the caller token is malformed: {0}")]
    Malformed(&'static str),
    /// Signed too long ago, or in the future.
    #[error("the caller token of {appkey} was signed {skew_s} s from this node's clock (at most {} s): check both clocks", MAX_SKEW.as_secs())]
    Stale {
        /// The appkey it claims.
        appkey: String,
        /// How far off, seconds.
        skew_s: u64,
    },
    /// For another address.
    #[error("the caller token of {appkey} is for {audience}, not this node")]
    WrongAudience {
        /// The appkey it claims.
        appkey: String,
        /// The address it was signed for.
        audience: String,
    },
    /// The app store has no key for the appkey.
    #[error(
        "no credential of {appkey} is known to this node: issue one with `probe apps add` or `probe apps credential rotate {appkey}` (nodes reload credentials every few seconds)"
    )]
    UnknownApp {
        /// The appkey it claims.
        appkey: String,
    },
    /// No key of the appkey verifies the signature.
    #[error(
        "the caller token of {appkey} has a bad signature: the caller's PROBE_APP_CREDENTIAL is not {appkey}'s current credential"
    )]
    BadSignature {
        /// The appkey it claims.
        appkey: String,
    },
}

impl TokenError {
    /// The label counting it.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::Stale { .. } => "stale",
            TokenError::WrongAudience { .. } => "wrong_audience",
            TokenError::UnknownApp { .. } => "unknown_app",
            TokenError::BadSignature { .. } => "bad_signature",
        }
    }
}

/// The text a token signs.
fn signed_text(appkey: &str, at: u64, nonce: &str, audience: &str) -> String {
    format!("{CONTEXT}\n{appkey}\n{at}\n{nonce}\n{audience}")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A client's token for one provider, signed again every [`TOKEN_LIFETIME`].
pub(crate) struct Signer {
    credential: AppCredential,
    audience: String,
    /// The token in use and when it was signed (Unix seconds).
    current: arc_swap::ArcSwap<(u64, bytes::Bytes)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("appkey", &self.credential.appkey)
            .field("audience", &self.audience)
            .finish()
    }
}

impl Signer {
    /// Signs for calls from `credential`'s app to `audience` (`host:port`).
    pub(crate) fn new(credential: AppCredential, audience: String) -> Signer {
        let at = unix_now();
        let token = sign_at(&credential, &audience, at);
        Signer { credential, audience, current: arc_swap::ArcSwap::from_pointee((at, token.into())) }
    }

    /// The caller's appkey.
    pub(crate) fn appkey(&self) -> &str {
        &self.credential.appkey
    }

    /// The token to send now (a new one once the last is [`TOKEN_LIFETIME`] old).
    pub(crate) fn token(&self) -> bytes::Bytes {
        let now = unix_now();
        let current = self.current.load();
        if now.saturating_sub(current.0) < TOKEN_LIFETIME.as_secs() {
            return current.1.clone();
        }
        let token: bytes::Bytes = sign_at(&self.credential, &self.audience, now).into();
        self.current.store(std::sync::Arc::new((now, token.clone())));
        token
    }
}

/// Signs a token for calls from `credential`'s app to the provider at `audience` (`host:port`, as
/// dialled).
#[allow(clippy::expect_used)]
pub fn sign(credential: &AppCredential, audience: &str) -> String {
    sign_at(credential, audience, unix_now())
}

#[allow(clippy::expect_used)]
fn sign_at(credential: &AppCredential, audience: &str, at: u64) -> String {
    let mut nonce = [0u8; NONCE_BYTES];
    SystemRandom::new().fill(&mut nonce).expect("the system random source failed");
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let key = credential.secret.signing_key();
    let signature = key.sign(signed_text(&credential.appkey, at, &nonce, audience).as_bytes());
    format!("{VERSION}:{}:{at}:{nonce}:{}", credential.appkey, URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Takes a token apart; checks only its form.
///
/// # Errors
/// [`TokenError::Malformed`] naming what is wrong.
pub fn parse(token: &[u8]) -> Result<ParsedToken<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("it is longer than 512 bytes"));
    }
    let text = std::str::from_utf8(token).map_err(|_| TokenError::Malformed("it is not UTF-8"))?;
    let mut parts = text.split(':');
    let (Some(version), Some(appkey), Some(at), Some(nonce), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("it is not v1:appkey:time:nonce:signature"));
    };
    if version != VERSION {
        return Err(TokenError::Malformed("its version is not v1"));
    }
    check_appkey(appkey).map_err(|_| TokenError::Malformed("its appkey is not a word (^\\w+$)"))?;
    if at.is_empty() || at.len() > 12 || !at.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenError::Malformed("its time is not Unix seconds"));
    }
    let at = at.parse().map_err(|_| TokenError::Malformed("its time is not Unix seconds"))?;
    if URL_SAFE_NO_PAD.decode(nonce).ok().is_none_or(|n| n.len() != NONCE_BYTES) {
        return Err(TokenError::Malformed("its nonce is not 12 base64url bytes"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or(TokenError::Malformed("its signature is not 64 base64url bytes"))?;
    Ok(ParsedToken { appkey, at, nonce, signature })
}

impl ParsedToken<'_> {
    /// Checks the token's time against now and its signature against `keys` (base64 Ed25519
    /// public keys of the app it claims, `None` when the app has none) for one of the
    /// `audiences` (the addresses this node is reached at).
    ///
    /// # Errors
    /// Why the token does not prove its appkey.
    pub fn verify<'k>(
        &self,
        keys: Option<impl IntoIterator<Item = &'k str>>,
        audiences: &[&str],
    ) -> Result<(), TokenError> {
        self.verify_at(keys, audiences, unix_now())
    }

    fn verify_at<'k>(
        &self,
        keys: Option<impl IntoIterator<Item = &'k str>>,
        audiences: &[&str],
        now: u64,
    ) -> Result<(), TokenError> {
        let appkey = self.appkey.to_owned();
        let skew_s = now.abs_diff(self.at);
        if skew_s > MAX_SKEW.as_secs() {
            return Err(TokenError::Stale { appkey, skew_s });
        }
        let Some(keys) = keys else { return Err(TokenError::UnknownApp { appkey }) };
        let keys: Vec<Vec<u8>> = keys.into_iter().filter_map(|k| STANDARD.decode(k).ok()).collect();
        let verifies = |audience: &str| {
            let text = signed_text(self.appkey, self.at, self.nonce, audience);
            keys.iter().any(|key| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
                    .verify(text.as_bytes(), &self.signature)
                    .is_ok()
            })
        };
        if audiences.iter().any(|a| verifies(a)) {
            return Ok(());
        }
        // Tell a token for another node from one signed by another key, for the message.
        Err(TokenError::BadSignature { appkey })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Secret;

    fn credential() -> AppCredential {
        AppCredential::new("caller_app", Secret::generate()).unwrap()
    }

    #[test]
    fn a_token_verifies_for_its_audience_and_key_only() {
        let caller = credential();
        let key = caller.secret.caller_public_key();
        let token = sign(&caller, "10.0.0.7:9090");
        assert!(!token.contains(caller.secret.expose()));
        let parsed = parse(token.as_bytes()).unwrap();
        assert_eq!(parsed.appkey, "caller_app");
        parsed.verify(Some([key.as_str()]), &["10.0.0.7:9090"]).unwrap();
        let other_node = parsed.verify(Some([key.as_str()]), &["10.0.0.8:9090"]).unwrap_err();
        assert_eq!(other_node.reason(), "bad_signature");
        let other_key = credential().secret.caller_public_key();
        let err = parsed.verify(Some([other_key.as_str()]), &["10.0.0.7:9090"]).unwrap_err();
        assert!(matches!(err, TokenError::BadSignature { .. }), "{err}");
        // A rotated credential: either key verifies.
        parsed.verify(Some([other_key.as_str(), key.as_str()]), &["10.0.0.7:9090"]).unwrap();
        let unknown = parsed.verify(None::<[&str; 0]>, &["10.0.0.7:9090"]).unwrap_err();
        assert_eq!(unknown.reason(), "unknown_app");
    }

    #[test]
    fn stale_and_future_tokens_are_refused() {
        let caller = credential();
        let key = caller.secret.caller_public_key();
        let now = unix_now();
        for at in [now - 301, now + 301] {
            let token = sign_at(&caller, "a:1", at);
            let err =
                parse(token.as_bytes()).unwrap().verify_at(Some([key.as_str()]), &["a:1"], now).unwrap_err();
            assert_eq!(err.reason(), "stale", "{err}");
        }
        let token = sign_at(&caller, "a:1", now - 299);
        parse(token.as_bytes()).unwrap().verify_at(Some([key.as_str()]), &["a:1"], now).unwrap();
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let good = sign(&credential(), "a:1");
        let parts: Vec<&str> = good.split(':').collect();
        let cases = [
            (String::new(), "not v1"),
            ("v2:a:1:x:y".to_owned(), "version"),
            (format!("v1:bad-app:{}:{}:{}", parts[2], parts[3], parts[4]), "appkey"),
            (format!("v1:a:-1:{}:{}", parts[3], parts[4]), "time"),
            (format!("v1:a:{}:short:{}", parts[2], parts[4]), "nonce"),
            (format!("v1:a:{}:{}:AAAA", parts[2], parts[3]), "signature"),
            (format!("{good}:extra"), "not v1"),
            ("x".repeat(600), "longer"),
        ];
        for (token, says) in cases {
            let err = parse(token.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(says), "{token}: {err}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
