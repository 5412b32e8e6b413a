//! Caller tokens and caller policy documents: what a provider reads from any caller's headers
//! and from node data. Parsing never panics; a parsed token verifies (or not) without panicking,
//! and a token probe signs always parses back to its appkey.

use probe_runtime::security::token;
use probe_runtime::security::{AppCredential, CallerPolicy, Secret};

/// A fixed credential, so verifying is deterministic.
fn credential() -> AppCredential {
    let secret: Secret =
        "probe1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".parse().expect("a valid fixed secret");
    AppCredential::new("fuzz_app", secret).expect("a valid fixed appkey")
}

/// `data` as a token (parsed, then verified against the fixed key), as a policy document, and as
/// an audience a real token is signed for.
pub fn check(data: &[u8]) {
    let key = credential().secret.caller_public_key();
    if let Ok(parsed) = token::parse(data) {
        let verified = parsed.verify(Some([key.as_str()]), &["127.0.0.1:9090"]);
        // A fuzzed token never carries a valid signature of the fixed key for a fresh time.
        if verified.is_ok() {
            assert_eq!(parsed.appkey, "fuzz_app");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(policy) = CallerPolicy::parse(text) {
            // What is accepted writes back to an equal policy.
            assert_eq!(CallerPolicy::from_json(&policy.to_json()).ok(), Some(policy));
        }
        if text.len() <= 64 {
            let signed = token::sign(&credential(), text);
            let parsed = token::parse(signed.as_bytes()).expect("a signed token parses");
            assert_eq!(parsed.appkey, "fuzz_app");
            parsed.verify(Some([key.as_str()]), &[text]).expect("a signed token verifies for its audience");
        }
    }
}
