//! App credentials: one secret per appkey, issued by `probe apps add` and shown once. From it a
//! provider's ZooKeeper digest identity and a caller's Ed25519 signing key are derived; what is
//! stored (MySQL, ZooKeeper ACLs) is only what verifies them: the digest id and the public key.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::registry::layout::check_appkey;

/// How every secret probe issues starts, so a leaked one is easy to recognise (and grep for).
pub const SECRET_PREFIX: &str = "probe1.";

/// The ZooKeeper user of operator tools (the CLI and the console). It cannot be an appkey: `-` is
/// not a word character.
pub const OPERATOR_USER: &str = "probe-operator";

/// Random bytes in an issued secret.
const SECRET_BYTES: usize = 32;

/// What the caller signing key is derived under (so the secret's other use, the ZooKeeper digest
/// password, and the signing key are independent).
const CALLER_KEY_CONTEXT: &[u8] = b"probe caller key v1\0";

/// A secret: an app's (`probe1.` and 43 base64url characters) or the operator's (any text without
/// `:`, at least 16 characters). Its `Debug` and `Display` never show it; [`Secret::expose`] does,
/// for the one place that must (the output of `probe apps add`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new random app secret.
    ///
    /// # Panics
    /// When the operating system has no random source (ring's `SystemRandom` failed).
    #[allow(clippy::expect_used)]
    pub fn generate() -> Secret {
        let mut bytes = [0u8; SECRET_BYTES];
        SystemRandom::new().fill(&mut bytes).expect("the system random source failed");
        Secret(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret's text: print it only to the person it is issued to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The ZooKeeper digest identity of `user` with this secret as password, as ZooKeeper's
    /// `DigestAuthenticationProvider` computes it: `user:base64(sha1("user:secret"))`. This is
    /// what ACLs name; it does not reveal the secret.
    pub fn zk_digest_id(&self, user: &str) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{user}:{}", self.0).as_bytes(),
        );
        format!("{user}:{}", STANDARD.encode(digest.as_ref()))
    }

    /// The `digest` scheme's auth data for `user`: `user:secret`, as ZooKeeper clients send it
    /// (kazoo's `auth_data=[("digest", "user:secret")]`).
    pub(crate) fn zk_auth(&self, user: &str) -> Vec<u8> {
        format!("{user}:{}", self.0).into_bytes()
    }

    /// The caller signing key derived from this secret.
    #[allow(clippy::expect_used)]
    pub(crate) fn signing_key(&self) -> Ed25519KeyPair {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(CALLER_KEY_CONTEXT);
        context.update(self.0.as_bytes());
        let seed = context.finish();
        // A SHA-256 output is always a valid 32-byte Ed25519 seed.
        Ed25519KeyPair::from_seed_unchecked(seed.as_ref()).expect("a 32-byte seed is a valid Ed25519 seed")
    }

    /// The public half of [`Secret::signing_key`], base64: what providers verify caller tokens
    /// with.
    pub fn caller_public_key(&self) -> String {
        STANDARD.encode(self.signing_key().public_key().as_ref())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a credential's text was refused. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(String);

impl FromStr for Secret {
    type Err = CredentialError;

    /// An app secret (`probe1.` and 43 base64url characters) or an operator secret (16 or more
    /// characters, no `:` and no whitespace).
    fn from_str(text: &str) -> Result<Secret, CredentialError> {
        let text = text.trim();
        if let Some(body) = text.strip_prefix(SECRET_PREFIX) {
            let decoded = URL_SAFE_NO_PAD.decode(body).ok();
            if decoded.is_none_or(|b| b.len() != SECRET_BYTES) {
                return Err(CredentialError(format!(
                    "it starts with `{SECRET_PREFIX}` but is not a secret `probe apps add` issued \
                     ({SECRET_PREFIX} and 43 base64url characters): copy it again, or issue a new one \
                     with `probe apps credential rotate APPKEY`"
                )));
            }
            return Ok(Secret(text.to_owned()));
        }
        if text.len() < 16 || text.contains(':') || text.contains(char::is_whitespace) {
            return Err(CredentialError(
                "a secret has at least 16 characters, without `:` or spaces (app secrets are issued by \
                 `probe apps add`)"
                    .into(),
            ));
        }
        Ok(Secret(text.to_owned()))
    }
}

/// An app's credential as a process holds it: its appkey and secret. Written `appkey:secret`, the
/// form ZooKeeper's digest scheme takes (`PROBE_APP_CREDENTIAL`).
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredential {
    /// The app.
    pub appkey: String,
    /// Its secret.
    pub secret: Secret,
}

impl AppCredential {
    /// `appkey` with `secret`.
    ///
    /// # Errors
    /// When `appkey` does not match `^\w+$`.
    pub fn new(appkey: &str, secret: Secret) -> Result<Self, CredentialError> {
        check_appkey(appkey).map_err(|e| CredentialError(e.to_string()))?;
        Ok(AppCredential { appkey: appkey.to_owned(), secret })
    }

    /// What is stored of it (no secret).
    pub fn stored(&self, issued_at_ms: u64) -> StoredCredential {
        StoredCredential {
            appkey: self.appkey.clone(),
            zk_digest: self.secret.zk_digest_id(&self.appkey),
            caller_key: self.secret.caller_public_key(),
            previous_zk_digest: None,
            previous_caller_key: None,
            issued_at_ms,
        }
    }
}

impl fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppCredential({}:<redacted>)", self.appkey)
    }
}

impl FromStr for AppCredential {
    type Err = CredentialError;

    /// `appkey:secret`.
    fn from_str(text: &str) -> Result<Self, CredentialError> {
        let Some((appkey, secret)) = text.trim().split_once(':') else {
            return Err(CredentialError(
                "it is not `appkey:secret` (the line `probe apps add` printed)".into(),
            ));
        };
        AppCredential::new(appkey, secret.parse()?)
    }
}

/// What the app store keeps of an app's credential: what verifies it, never the secret. A
/// rotation keeps the credential before it as `previous_*`, so processes still holding it work
/// until `probe apps credential retire` drops it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredCredential {
    /// The app.
    pub appkey: String,
    /// The ZooKeeper digest id (`appkey:base64(sha1)`), as ACLs name it.
    pub zk_digest: String,
    /// The caller token public key (Ed25519, base64).
    pub caller_key: String,
    /// The digest id of the credential before the last rotation, until retired.
    pub previous_zk_digest: Option<String>,
    /// The caller key of the credential before the last rotation, until retired.
    pub previous_caller_key: Option<String>,
    /// When the current credential was issued, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
}

impl StoredCredential {
    /// The digest ids ACLs should grant: the current one and the previous one, if kept.
    pub fn zk_digests(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.zk_digest.as_str()).chain(self.previous_zk_digest.as_deref())
    }

    /// The caller keys that verify tokens: the current one and the previous one, if kept.
    pub fn caller_keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.caller_key.as_str()).chain(self.previous_caller_key.as_deref())
    }

    /// This credential rotated to `next`: `next`'s keys, and this one's current keys as previous.
    pub fn rotated(&self, next: StoredCredential) -> StoredCredential {
        StoredCredential {
            previous_zk_digest: Some(self.zk_digest.clone()),
            previous_caller_key: Some(self.caller_key.clone()),
            ..next
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_parses_and_never_prints() {
        let secret = Secret::generate();
        assert!(secret.expose().starts_with(SECRET_PREFIX));
        assert_eq!(secret.expose().len(), SECRET_PREFIX.len() + 43);
        assert_eq!(secret.expose().parse::<Secret>().unwrap(), secret);
        let credential = AppCredential::new("order_app", secret.clone()).unwrap();
        for shown in [format!("{secret}"), format!("{secret:?}"), format!("{credential:?}")] {
            assert!(!shown.contains(secret.expose()), "{shown}");
        }
    }

    #[test]
    fn the_digest_id_is_zookeepers() {
        // ZooKeeper's DigestAuthenticationProvider.generateDigest("super:secret"), as its docs and
        // kazoo's make_digest_acl_credential compute it.
        let secret: Secret = "secret_password_1".parse().unwrap();
        let id = secret.zk_digest_id("super");
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b"super:secret_password_1");
        assert_eq!(id, format!("super:{}", STANDARD.encode(digest.as_ref())));
        assert_eq!(secret.zk_auth("super"), b"super:secret_password_1");
    }

    #[test]
    fn bad_credentials_are_refused_without_echoing_them() {
        for bad in
            ["nocolon", "app:short", "bad-app:probe1.abc", "app:probe1.tooshort", "app:has space in it xx"]
        {
            let err = bad.parse::<AppCredential>().unwrap_err().to_string();
            let secret_part = bad.split_once(':').map_or(bad, |(_, s)| s);
            assert!(!err.contains(secret_part) || secret_part.len() < 4, "{bad}: {err}");
        }
        let ok = format!("order_app:{}", Secret::generate().expose());
        assert_eq!(ok.parse::<AppCredential>().unwrap().appkey, "order_app");
    }

    #[test]
    fn rotation_keeps_the_previous_keys() {
        let first = AppCredential::new("a", Secret::generate()).unwrap().stored(1);
        let second = AppCredential::new("a", Secret::generate()).unwrap().stored(2);
        let rotated = first.rotated(second.clone());
        assert_eq!(
            rotated.zk_digests().collect::<Vec<_>>(),
            [second.zk_digest.as_str(), first.zk_digest.as_str()]
        );
        assert_eq!(rotated.caller_keys().count(), 2);
        assert_eq!(rotated.issued_at_ms, 2);
    }
}
