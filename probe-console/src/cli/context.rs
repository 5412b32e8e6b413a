//! What the global options decide for every subcommand: the configuration, the env, the backends
//! and the actor named in the audit log.

use anyhow::{Context as _, Result};
use probe_runtime::config::{Config, HostRule, hostname};
use probe_runtime::registry::layout::Env;
use probe_runtime::registry::{Backends, Operator};

use super::args::GlobalArgs;

/// The global options, resolved on demand: subcommands that need no backend connect to none.
#[derive(Debug, Clone)]
pub struct Context {
    global: GlobalArgs,
}

impl Context {
    /// The context of these global options.
    pub fn new(global: GlobalArgs) -> Self {
        Context { global }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// The configuration: `--config FILE`, else the file PROBE_CONFIG names, then the `PROBE_*`
    /// variables; `--env` over all of them.
    pub fn config(&self) -> Result<Config> {
        let path = self.global.config.as_deref();
        let mut config = Config::load(path).with_context(|| match path {
            Some(path) => format!("cannot load the configuration from {}", path.display()),
            None => "cannot load the configuration (PROBE_CONFIG and PROBE_* variables; or pass \
                     --config FILE)"
                .to_owned(),
        })?;
        if let Some(env) = self.global.env {
            config.env = env;
        }
        Ok(config)
    }

    /// The `--env` option, if given.
    pub fn env_flag(&self) -> Option<Env> {
        self.global.env
    }

    /// The env for commands that need no backend: `--env`, else PROBE_ENV, else the host name
    /// rule (`prod` on hosts named `prod<digits>`).
    pub fn env_without_config(&self) -> Result<Env> {
        if let Some(env) = self.global.env {
            return Ok(env);
        }
        match std::env::var("PROBE_ENV") {
            Ok(value) if !value.is_empty() => value
                .parse()
                .with_context(|| format!("PROBE_ENV={value:?} is not an env: set it to `dev` or `prod`")),
            _ => Ok(HostRule::of_this_machine().env),
        }
    }

    /// Connects to the configured registry, settings store and app registry.
    pub async fn backends(&self) -> Result<Backends> {
        Self::connect(&self.config()?).await
    }

    /// Connects to the registry, settings store and app registry `config` names.
    pub async fn connect(config: &Config) -> Result<Backends> {
        Backends::connect(config).await.context("cannot connect to the backends")
    }

    /// Operator actions over `backends`, audited under [`Context::actor`].
    pub fn operator(&self, backends: Backends) -> Operator {
        Operator::new(backends).with_actor(self.actor())
    }

    /// `--actor`, else `cli:$USER@$HOSTNAME`.
    pub fn actor(&self) -> String {
        match &self.global.actor {
            Some(actor) => actor.clone(),
            None => default_actor(
                std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok().as_deref(),
                hostname().as_deref(),
            ),
        }
    }
}

/// `cli:{user}@{host}`, with `unknown` for what is not known.
fn default_actor(user: Option<&str>, host: Option<&str>) -> String {
    let known = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("unknown").to_owned();
    format!("cli:{}@{}", known(user), known(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_defaults_to_user_at_host() {
        assert_eq!(default_actor(Some("alice"), Some("box1")), "cli:alice@box1");
        assert_eq!(default_actor(None, Some("")), "cli:unknown@unknown");
        let named = Context::new(GlobalArgs { actor: Some("bob".into()), ..GlobalArgs::default() });
        assert_eq!(named.actor(), "bob");
        assert!(Context::new(GlobalArgs::default()).actor().starts_with("cli:"));
    }

    #[test]
    fn env_option_wins() {
        let ctx = Context::new(GlobalArgs { env: Some(Env::Prod), ..GlobalArgs::default() });
        assert_eq!(ctx.env_without_config().unwrap(), Env::Prod);
    }
}
