//! `probe env`: the env this machine's probe uses, what decided it, and the host names the Python
//! design's rule read (`socket.getfqdn(socket.gethostname())` matched against `^prod\d+$`).

use anyhow::Result;
use probe_runtime::config::{EnvSource, HostRule, Origin};
use probe_runtime::registry::layout::Env;
use serde_json::json;

use super::context::Context;
use super::output::Report;

/// What decided the env, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decided {
    /// `--env`.
    Flag,
    /// `PROBE_ENV`.
    Var,
    /// `env` in a config file.
    File(String),
    /// The host rule.
    HostRule,
}

impl Decided {
    fn name(&self) -> &'static str {
        match self {
            Decided::Flag => "--env",
            Decided::Var => "PROBE_ENV",
            Decided::File(_) => "config",
            Decided::HostRule => "host_rule",
        }
    }
}

/// The env and its source: `--env`, else the configuration (file, then `PROBE_ENV`) when one
/// loads, else `PROBE_ENV`, else the host rule.
pub fn env(ctx: &Context, flag: Option<Env>) -> Result<Report> {
    let rule = HostRule::of_this_machine();
    let (env, decided) = match (flag, ctx.config()) {
        (Some(env), _) => (env, Decided::Flag),
        (None, Ok(config)) => match config.env_source {
            EnvSource::Setting(Origin::File { path, .. }) => {
                (config.env, Decided::File(path.display().to_string()))
            }
            EnvSource::Setting(_) => (config.env, Decided::Var),
            _ => (config.env, Decided::HostRule),
        },
        // No complete configuration (no backends set): the same order without it.
        (None, Err(_)) => {
            let env = ctx.env_without_config()?;
            let from_var = std::env::var("PROBE_ENV").is_ok_and(|v| !v.is_empty());
            (env, if from_var { Decided::Var } else { Decided::HostRule })
        }
    };
    Ok(report(env, &decided, &rule))
}

fn report(env: Env, decided: &Decided, rule: &HostRule) -> Report {
    let file = match decided {
        Decided::File(path) => Some(path.as_str()),
        _ => None,
    };
    let json = json!({
        "env": env.as_str(),
        "source": decided.name(),
        "config_file": file,
        "hostname": rule.hostname,
        "fqdn": rule.fqdn,
        "host_rule_env": rule.env.as_str(),
    });
    let source = match decided {
        Decided::Flag => "the --env option".to_owned(),
        Decided::Var => "PROBE_ENV".to_owned(),
        Decided::File(path) => format!("`env` in {path:?}"),
        Decided::HostRule => "the host rule (^prod\\d+$ on the fully qualified host name)".to_owned(),
    };
    let matched = if rule.env == Env::Prod { "matches" } else { "does not match" };
    let text = format!(
        "env          {env}\nsource       {source}\nhost name    {:?}\nfull name    {:?} ({matched} ^prod\\d+$: {})\n",
        rule.hostname.as_deref().unwrap_or(""),
        rule.fqdn,
        rule.env,
    );
    Report::new(json, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::config::{HostEntry, Resolver};

    struct Fake(&'static str);

    impl Resolver for Fake {
        fn host_by_addr(&self, name: &str) -> Option<HostEntry> {
            Some(HostEntry { name: self.0.to_owned(), aliases: vec![name.to_owned()] })
        }
    }

    #[test]
    fn says_which_name_the_host_rule_matched() {
        let rule = HostRule::with(Some("prod3".to_owned()), &Fake("prod3.example.com"));
        let report = report(rule.env, &Decided::HostRule, &rule);
        assert_eq!(report.json["env"], "dev");
        assert_eq!(report.json["source"], "host_rule");
        assert_eq!(
            (&report.json["hostname"], &report.json["fqdn"]),
            (&json!("prod3"), &json!("prod3.example.com"))
        );
        assert!(
            report.text.contains("full name    \"prod3.example.com\" (does not match"),
            "{}",
            report.text
        );

        let rule = HostRule::with(Some("prod3".to_owned()), &Fake("prod3"));
        let report = super::report(Env::Dev, &Decided::Var, &rule);
        assert_eq!((&report.json["env"], &report.json["host_rule_env"]), (&json!("dev"), &json!("prod")));
        assert_eq!(report.json["source"], "PROBE_ENV");
    }
}
