//! `PROBE_*` environment variables as a [`Layer`], read from any list of variables so tests never
//! touch the process environment.

use super::error::{ConfigError, Origin};
use super::layer::Layer;
use super::setting::Setting;

/// The variable naming the config file [`Config::load`](super::Config::load) reads.
pub const CONFIG_PATH_VAR: &str = "PROBE_CONFIG";

/// The `PROBE_*` variables of the process, lossily decoded; others are left alone, so a variable
/// that is not UTF-8 elsewhere in the environment cannot make loading fail.
pub(super) fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            name.starts_with("PROBE_").then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The settings in `vars`. Variables that name no setting, including other `PROBE_*` ones that
/// scripts and tests use, are ignored; a variable given twice counts with its last value.
pub(super) fn layer<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Result<Layer, ConfigError> {
    let mut last: Vec<(Setting, &str)> = Vec::new();
    for (name, value) in vars {
        if let Some(setting) = Setting::from_env_var(name.as_ref()) {
            last.retain(|(seen, _)| *seen != setting);
            last.push((setting, value.as_ref()));
        }
    }
    let mut layer = Layer::default();
    for (setting, value) in Setting::ALL.into_iter().filter_map(|s| last.iter().find(|(seen, _)| *seen == s))
    {
        layer.set(*setting, value, &Origin::Env)?;
    }
    Ok(layer)
}

/// The config file `vars` name in `PROBE_CONFIG`, if any.
pub(super) fn config_path<K: AsRef<str>, V: AsRef<str>>(
    vars: &[(K, V)],
) -> Result<Option<String>, ConfigError> {
    match vars.iter().rev().find(|(name, _)| name.as_ref() == CONFIG_PATH_VAR) {
        Some((_, path)) if path.as_ref().trim().is_empty() => Err(ConfigError::EmptyConfigPath),
        Some((_, path)) => Ok(Some(path.as_ref().to_owned())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::registry::layout::Env;

    fn env_of(vars: &[(&str, &str)]) -> Env {
        let mut config = Config::default();
        layer(vars).unwrap().apply(&mut config).unwrap();
        config.env
    }

    #[test]
    fn a_variable_given_twice_counts_with_its_last_value() {
        assert_eq!(env_of(&[("PROBE_ENV", "dev"), ("PROBE_ENV", "prod")]), Env::Prod);
        assert_eq!(env_of(&[("PROBE_ENV", "prod"), ("PROBE_ENV", "dev")]), Env::Dev);
        // Only the last value is checked: an overridden bad value is no error.
        assert_eq!(env_of(&[("PROBE_ENV", "staging"), ("PROBE_ENV", "dev")]), Env::Dev);
    }

    #[test]
    fn variables_that_name_no_setting_are_ignored() {
        let vars =
            [("PROBE_ZK_PORT", "x"), ("PROBE_TEST_REDIS", "y"), ("PATH", "/bin"), ("PROBE_CONFIG", "z")];
        assert!(layer(&vars).is_ok());
        assert_eq!(env_of(&[("probe_env", "prod"), ("PROBE_ENV", "dev")]), Env::Dev);
    }

    #[test]
    fn config_path_is_the_last_probe_config() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(config_path(&none).unwrap(), None);
        let vars = [("PROBE_CONFIG", "/a.toml"), ("PROBE_CONFIG", "/b.toml")];
        assert_eq!(config_path(&vars).unwrap().as_deref(), Some("/b.toml"));
        assert!(matches!(config_path(&[("PROBE_CONFIG", " ")]), Err(ConfigError::EmptyConfigPath)));
    }

    #[test]
    fn process_vars_holds_only_probe_variables() {
        assert!(process_vars().iter().all(|(name, _)| name.starts_with("PROBE_")));
    }
}
