//! Roles, the configured tokens and the browser sessions created by logging in.
//!
//! A session id is 32 random bytes (hex) kept server-side with the role, a CSRF token and an
//! expiry; the browser holds only the id, in an HttpOnly SameSite=Strict cookie, `Secure` when the
//! console serves HTTPS. Tokens are compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

/// How long a console login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// How many live sessions the console keeps; logging in beyond that ends the oldest.
pub const MAX_SESSIONS: usize = 1024;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything and change nodes and apps.
    Admin,
    /// Read everything, change nothing.
    Viewer,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

/// The admin and viewer tokens the console accepts.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    viewer: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    /// The two tokens, which must be non-empty and different.
    pub fn new(admin: &str, viewer: &str) -> Result<Self, TokenError> {
        if admin.trim().is_empty() || viewer.trim().is_empty() {
            return Err(TokenError::Empty);
        }
        if admin == viewer {
            return Err(TokenError::Same);
        }
        for (role, token) in [(Role::Admin, admin), (Role::Viewer, viewer)] {
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(TokenError::TooShort { role: role.as_str() });
            }
        }
        Ok(Tokens { admin: admin.to_owned(), viewer: viewer.to_owned() })
    }

    /// The role `token` grants, compared in constant time against both tokens.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let admin = same(token, &self.admin);
        let viewer = same(token, &self.viewer);
        if admin {
            Some(Role::Admin)
        } else if viewer {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// Why the configured tokens cannot be used.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A token is empty.
    #[error("the console needs a non-empty admin token and a non-empty viewer token")]
    Empty,
    /// Both tokens are the same, so a viewer would be an admin.
    #[error("the admin and viewer tokens are the same; give the viewer a different token")]
    Same,
    /// A token is shorter than [`MIN_TOKEN_LEN`], so it could be guessed.
    #[error(
        "the {role} token is shorter than 16 characters, short enough to guess: give a longer one, or \
         none and `probe console` generates one"
    )]
    TooShort {
        /// `admin` or `viewer`.
        role: &'static str,
    },
}

/// The shortest token the console accepts.
pub const MIN_TOKEN_LEN: usize = 16;

probe_runtime::debug_as_display!(TokenError);

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 32 random bytes from the thread's cryptographically secure generator, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One browser login.
#[derive(Debug, Clone)]
pub struct Session {
    /// What it may do.
    pub role: Role,
    /// Who logged in, as they named themselves (may be empty).
    pub user: String,
    /// The token state-changing requests must carry in `X-CSRF-Token`.
    pub csrf: String,
    /// When it ends.
    pub expires: Instant,
}

/// The live sessions, by id. The lock is never held across an `.await`.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// No sessions.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave the map half-written: recover it.
        self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts a session; returns its id and the session.
    pub fn create(&self, role: Role, user: &str) -> (String, Session) {
        let id = random_token();
        let session = Session {
            role,
            user: user.to_owned(),
            csrf: random_token(),
            expires: Instant::now() + SESSION_TTL,
        };
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => map.remove(&oldest),
                None => break,
            };
        }
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Whether the session with this id is still live.
    pub fn is_live(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Ends a session; `false` when there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_roles() {
        let tokens = Tokens::new("admin-secret-0123456789", "viewer-secret-0123456789").unwrap();
        assert_eq!(tokens.role_of("admin-secret-0123456789"), Some(Role::Admin));
        assert_eq!(tokens.role_of("viewer-secret-0123456789"), Some(Role::Viewer));
        assert_eq!(tokens.role_of("admin-secre"), None);
        assert_eq!(tokens.role_of(""), None);
        assert_eq!(Tokens::new("", "v").unwrap_err(), TokenError::Empty);
        assert_eq!(Tokens::new("same", "same").unwrap_err(), TokenError::Same);
        let long = "0123456789abcdef";
        assert_eq!(
            Tokens::new(long, "viewer-15-chars").unwrap_err(),
            TokenError::TooShort { role: "viewer" }
        );
        assert_eq!(Tokens::new("admin-15-chars!", long).unwrap_err(), TokenError::TooShort { role: "admin" });
        assert!(Tokens::new(long, "fedcba9876543210").is_ok());
        assert!(!format!("{tokens:?}").contains("secret"));
    }

    #[test]
    fn sessions_live_until_removed_and_ids_are_random() {
        let sessions = Sessions::new();
        let (id, session) = sessions.create(Role::Viewer, "ann");
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf);
        assert_eq!(sessions.get(&id).map(|s| s.role), Some(Role::Viewer));
        assert!(sessions.remove(&id));
        assert!(!sessions.is_live(&id));
        assert!(!sessions.remove(&id));
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::new();
        let first = sessions.create(Role::Admin, "").0;
        for _ in 0..MAX_SESSIONS {
            sessions.create(Role::Admin, "");
        }
        assert!(!sessions.is_live(&first));
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
    }
}
