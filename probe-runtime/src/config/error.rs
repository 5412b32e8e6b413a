//! Why a configuration cannot be loaded or used; every message says how to fix it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::setting::Setting;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The setting's environment variable, [`Setting::env_var`].
    Env,
    /// A config file, at `line` (1-based) when known.
    File {
        /// The file.
        path: PathBuf,
        /// The line of the value.
        line: Option<usize>,
    },
}

impl Origin {
    /// "PROBE_PORT=\"x\"" or "`server.port` = \"x\" in probe.toml line 7".
    fn describe(&self, setting: Setting, value: &str) -> String {
        match self {
            Origin::Env => format!("{}={value:?}", setting.env_var()),
            Origin::File { path, line } => {
                format!("`{}` = {value:?} in {}", setting.file_key(), Location::new(path, *line))
            }
        }
    }
}

/// A value that is not valid for the setting it was given to.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct InvalidValue {
    problem: String,
}

crate::debug_as_display!(InvalidValue);

impl InvalidValue {
    pub(super) fn new(problem: impl Into<String>) -> InvalidValue {
        InvalidValue { problem: problem.into() }
    }

    /// What is wrong with the value.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

/// Why a [`Config`](super::Config) cannot be loaded or used.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No registry was configured, and embedded ones are never chosen silently.
    #[error(
        "no ZooKeeper configured: set PROBE_ZOOKEEPER=host:port[,host:port][/chroot] or \
         `zookeeper = \"...\"` in the config file, or choose the embedded registry explicitly with \
         PROBE_ZOOKEEPER=embedded"
    )]
    NoRegistry,
    /// No node-settings store was configured.
    #[error(
        "no Redis configured for node settings: set PROBE_REDIS=redis://host:port (several URLs \
         separated by commas for a Redis Cluster) or `redis = \"...\"` in the config file, or choose \
         the embedded settings store explicitly with PROBE_REDIS=embedded"
    )]
    NoSettingsStore,
    /// No app registry was configured.
    #[error(
        "no MySQL configured for the app registry: set PROBE_MYSQL=mysql://user:password@host:port/db \
         or `mysql = \"...\"` in the config file, or choose the embedded app registry explicitly \
         with PROBE_MYSQL=embedded"
    )]
    NoAppRegistry,
    /// A setting has a value it cannot take.
    #[error("invalid {}: {problem}; expected {}", .origin.describe(*.setting, .value), .setting.expected())]
    Invalid {
        /// The setting.
        setting: Setting,
        /// Where the value came from.
        origin: Origin,
        /// The value, with any password in it masked.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}{}: {source}", .path.display(), named_by(*.named_by_env))]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Whether `PROBE_CONFIG` named it.
        named_by_env: bool,
        /// Why reading failed.
        source: io::Error,
    },
    /// `PROBE_CONFIG` is set to nothing.
    #[error("PROBE_CONFIG is empty: set it to the path of a TOML config file, or unset it")]
    EmptyConfigPath,
    /// The config file is not valid TOML, has a key probe does not know, or a value of the wrong type.
    #[error("{}: {message}", Location::new(.path, *.line))]
    File {
        /// The file.
        path: PathBuf,
        /// The line of the problem (1-based), when the TOML parser tells it.
        line: Option<usize>,
        /// The parser's message, with the valid keys when the key is unknown.
        message: String,
    },
    /// No address to register this server under could be found.
    #[error(
        "cannot tell which address to register this server at: {problem}; set \
         PROBE_ADVERTISE_HOST=<ip> or `advertise_host` under [server] in the config file"
    )]
    NoAdvertiseHost {
        /// Why the host name gave no usable address.
        problem: String,
    },
}

crate::debug_as_display!(ConfigError);

impl ConfigError {
    /// An [`ConfigError::Invalid`], masking the password of URL settings.
    pub(super) fn invalid(setting: Setting, origin: Origin, value: &str, problem: InvalidValue) -> Self {
        let value = if setting.is_secret() {
            "<redacted>".to_owned()
        } else if setting.is_secret_url() {
            super::url::redact_list(value)
        } else {
            value.to_owned()
        };
        ConfigError::Invalid { setting, origin, value, problem: problem.problem }
    }
}

fn named_by(env: bool) -> &'static str {
    if env { " (named by PROBE_CONFIG)" } else { "" }
}

/// `probe.toml line 7`, or the path alone.
struct Location<'a> {
    path: &'a Path,
    line: Option<usize>,
}

impl<'a> Location<'a> {
    fn new(path: &'a Path, line: Option<usize>) -> Self {
        Location { path, line }
    }
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}
