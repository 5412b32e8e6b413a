//! The command line's grammar: global options, subcommands and their arguments (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use probe_runtime::registry::layout::Env;

use crate::console::client_ip::parse_net;

/// Operate probe services: apps, services, nodes, traffic rules, request limits, the audit log, the
/// web console and IDL.
#[derive(Debug, Parser)]
#[command(
    name = "probe",
    version,
    about,
    after_help = "Backends come from --config FILE, else the file PROBE_CONFIG names, then PROBE_* \
                  variables (PROBE_ZOOKEEPER, PROBE_REDIS, PROBE_MYSQL, PROBE_ENV)."
)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes, before or after its name.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML config file [default: the file PROBE_CONFIG names; PROBE_* variables apply over it].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment, `dev` or `prod` [default: the config's `env`, PROBE_ENV or the host name rule].
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<Env>,
    /// Print one JSON document on stdout instead of tables (errors stay text on stderr; the problems
    /// of a rule `probe rules` refuses, or of limits `probe limits set` refuses, are the document,
    /// with exit status 1).
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, for the audit log (default: `cli:$USER@$HOSTNAME`).
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register, list and remove apps (the app registry, MySQL `serviceapp`).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Show the services running in an env.
    #[command(subcommand)]
    Services(ServicesCommand),
    /// Show provider nodes; change their weight; take them out of rotation and back.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Per-service traffic rules (version split, header routes, tag affinity, tiers): show, check,
    /// preview, set, list revisions, roll back.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Per-node request limits (qps, concurrency, adaptive concurrency, connections; for a service
    /// and its methods): show, set, clear.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Per-service caller policies (which apps may call it; what happens to callers that prove
    /// no appkey): show, set, clear.
    #[command(subcommand)]
    Callers(CallersCommand),
    /// ZooKeeper security: secure an env's tree with ACLs per appkey.
    #[command(subcommand)]
    Zk(ZkCommand),
    /// The app registry's MySQL database: what exists of probe's tables; add what is missing.
    #[command(subcommand)]
    Db(DbCommand),
    /// Whether the configured ZooKeeper, Redis and MySQL answer, each probed on its own with a short
    /// timeout; exit status 1 when any is down.
    #[command(alias = "backends")]
    Status,
    /// Show the most recent operator changes.
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Serve the web console and its JSON API.
    Console(ConsoleArgs),
    /// Work with Thrift IDL files.
    #[command(subcommand)]
    Idl(IdlCommand),
    /// The env this machine uses, what decided it (--env, config, PROBE_ENV or the host rule),
    /// and the host names the rule read: the plain one and the fully qualified one it matched.
    Env,
    /// Print where a node lives in the registry: its ZooKeeper path and Redis hash field.
    Locate {
        /// The app's key.
        appkey: String,
        /// The Thrift service name.
        service: String,
        /// The provider's address.
        ip: String,
        /// The provider's port.
        port: u16,
    },
}

/// `probe apps ...`
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register an app so its providers may start.
    Add {
        /// The appkey: letters, digits and underscores.
        appkey: String,
        /// What the app does.
        #[arg(long, default_value = "")]
        description: String,
        /// Who owns it.
        #[arg(long, default_value = "")]
        owner: String,
        /// Write the app's credential (`appkey:secret`) to this new file (mode 0600) instead of
        /// printing it once; required with --json, which never holds secrets.
        #[arg(long, value_name = "FILE")]
        credential_file: Option<PathBuf>,
        /// Issue no credential (fleets without security).
        #[arg(long, conflicts_with = "credential_file")]
        no_credential: bool,
    },
    /// An app's credential: rotate (issue a new one), retire the previous one, show what is
    /// stored of it.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// List the registered apps.
    List,
    /// Unregister an app: its running providers keep serving but cannot start again.
    Remove {
        /// The appkey.
        appkey: String,
    },
}

/// `probe apps credential ...`
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Issue a new credential to an app (the first, or a rotation: the previous one stays valid
    /// until retired); the secret is shown once, or written to --credential-file.
    Rotate {
        /// The appkey.
        appkey: String,
        /// Write the credential (`appkey:secret`) to this new file (mode 0600) instead of printing
        /// it; required with --json.
        #[arg(long, value_name = "FILE")]
        credential_file: Option<PathBuf>,
    },
    /// Drop the credential an app had before its last rotation.
    Retire {
        /// The appkey.
        appkey: String,
    },
    /// When the app's credential was issued, and whether a previous one is still valid (never
    /// the secret).
    Show {
        /// The appkey.
        appkey: String,
    },
}

/// `probe zk ...`
#[derive(Debug, Subcommand)]
pub enum ZkCommand {
    /// Give the env's ZooKeeper tree ACLs: everyone reads; each app's credential creates and
    /// deletes its nodes; the operator (PROBE_ZK_OPERATOR_SECRET) changes data and ACLs. Apps
    /// without a credential are left as they are and listed.
    Secure {
        /// Show what would change, writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `probe callers ...`
#[derive(Debug, Subcommand)]
pub enum CallersCommand {
    /// Each node of an app, or of one of its services: its caller policy.
    Show {
        /// The appkey.
        appkey: String,
        /// Only this Thrift service.
        service: Option<String>,
    },
    /// Set the caller policy of every node of a service, running or stored (audited as
    /// `set_callers`); providers apply it at once.
    Set {
        /// The appkey.
        appkey: String,
        /// The Thrift service.
        service: String,
        /// How to change the policy.
        #[command(flatten)]
        flags: CallersFlags,
    },
    /// Remove the caller policy of every node of a service: any caller is served again.
    Clear {
        /// The appkey.
        appkey: String,
        /// The Thrift service.
        service: String,
    },
}

/// How `probe callers set` changes a service's policy (over the one it has now).
#[derive(Debug, Clone, Default, Args)]
#[group(required = true, multiple = true)]
pub struct CallersFlags {
    /// Serve only these proven callers (appkeys separated by commas), replacing the list.
    #[arg(long, value_delimiter = ',', value_name = "APPKEYS", conflicts_with = "any")]
    pub allow: Option<Vec<String>>,
    /// Add a caller to the list.
    #[arg(long, value_name = "APPKEY")]
    pub add: Vec<String>,
    /// Take a caller off the list.
    #[arg(long, value_name = "APPKEY")]
    pub remove: Vec<String>,
    /// Serve every proven caller (no list).
    #[arg(long)]
    pub any: bool,
    /// What happens to callers that prove no appkey: allow, count (served, counted and logged) or
    /// refuse.
    #[arg(long, value_name = "POLICY")]
    pub unauthenticated: Option<String>,
}

/// `probe db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Which of probe's tables and columns the database has, and which are missing.
    Status,
    /// Add probe's optional columns (an app's description and owner) and tables (the audit log
    /// `probe_audit`) that the database lacks; changes nothing when it is up to date.
    Migrate {
        /// Print the statements as SQL without running them.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `probe services ...`
#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// For each app registered in ZooKeeper in the env: its services and their node counts.
    List,
}

/// `probe nodes ...`
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// The nodes of an app: running ones and those with stored settings, with live metrics,
    /// request limits and their breakers in the clients.
    List {
        /// The appkey.
        appkey: String,
    },
    /// Set a node's weight (0 takes it out of rotation).
    Weight {
        /// `appkey|env|service|ip|port` or `appkey/service_ip_port`.
        node: String,
        /// The new weight.
        weight: u32,
    },
    /// Put a node back into rotation (valid = 1).
    Enable {
        /// `appkey|env|service|ip|port` or `appkey/service_ip_port`.
        node: String,
    },
    /// Take a node out of rotation (valid = 0); it keeps running.
    Disable {
        /// `appkey|env|service|ip|port` or `appkey/service_ip_port`.
        node: String,
    },
}

/// `probe rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The rule in force: its revision, store version and document (and its problems, when the
    /// stored document is not a valid rule).
    Show(RuleOf),
    /// Check a rule document: every problem with its place (FILE:line:column, or a JSON pointer),
    /// and versions no live node of the service declares; exit status 1 when there are problems.
    Validate {
        /// The service.
        #[command(flatten)]
        of: RuleOf,
        /// The rule document (JSON), `-` for stdin.
        file: PathBuf,
    },
    /// For each live node of the service: the share of calls it gets under the rule in force and
    /// under the rule in FILE, from 20,000 simulated calls.
    Preview {
        /// The service.
        #[command(flatten)]
        of: RuleOf,
        /// The rule document (JSON), `-` for stdin.
        file: PathBuf,
        /// A tag of the calling client, for tag affinity (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        /// A metadata header the calls carry, for header routes (repeatable).
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_pair)]
        headers: Vec<(String, String)>,
    },
    /// Store the rule in FILE as the next revision, if it has no problem (audited as `rule_set`);
    /// clients apply it when their watch fires.
    Set {
        /// The service.
        #[command(flatten)]
        of: RuleOf,
        /// The rule document (JSON), `-` for stdin.
        file: PathBuf,
    },
    /// Every stored revision, oldest first, the one in force last, each summarized on one line.
    History(RuleOf),
    /// Store an earlier revision's document again as the next revision (audited as
    /// `rule_rollback`).
    Rollback {
        /// The service.
        #[command(flatten)]
        of: RuleOf,
        /// The revision to restore (`probe rules history` lists them).
        revision: u64,
    },
}

/// The service whose traffic rule a `probe rules` command reads or changes.
#[derive(Debug, Clone, Args)]
pub struct RuleOf {
    /// The appkey.
    pub appkey: String,
    /// The Thrift service name.
    pub service: String,
}

impl RuleOf {
    /// `appkey/service`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.appkey, self.service)
    }
}

/// `probe limits ...`
#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Each node of an app, or of one of its services: its request limits (or none), the calls
    /// they refused in its latest metrics window, and why its provider refused them, if it did.
    Show {
        /// The appkey.
        appkey: String,
        /// Only this Thrift service.
        service: Option<String>,
    },
    /// Set the request limits of every node of a service, running or stored, or of one (--node),
    /// from a document (--file, --text) or from flags; they replace the node's limits (audited as
    /// `set_limits`) and its provider applies them at once. A bad document, or one naming a method
    /// the service does not have, changes nothing (exit status 1).
    Set {
        /// The service, and the node.
        #[command(flatten)]
        of: LimitsOf,
        /// The limits.
        #[command(flatten)]
        source: LimitsSource,
    },
    /// Remove the request limits of every node of a service, or of one (--node): its provider's
    /// configured limits apply again (audited as `set_limits`).
    Clear(LimitsOf),
}

/// The nodes whose limits a `probe limits set|clear` command changes.
#[derive(Debug, Clone, Args)]
pub struct LimitsOf {
    /// The appkey.
    pub appkey: String,
    /// The Thrift service.
    pub service: String,
    /// Only the service's node at this address [default: every node of the service].
    #[arg(long, value_name = "IP:PORT", value_parser = parse_address)]
    pub node: Option<NodeAddress>,
}

/// A node's address, as `--node` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// The IP in the node's name.
    pub ip: String,
    /// The port in the node's name.
    pub port: u16,
}

/// `IP:PORT` (`[IPv6]:PORT` too).
pub fn parse_address(text: &str) -> Result<NodeAddress, String> {
    let bad = || format!("{text:?} is not IP:PORT, such as 10.0.0.7:9090");
    let (ip, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let ip = ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']')).unwrap_or(ip);
    let port = port.parse().map_err(|_| bad())?;
    if ip.is_empty() {
        return Err(bad());
    }
    Ok(NodeAddress { ip: ip.to_owned(), port })
}

/// Where `probe limits set` takes the limits from: a document, or flags that make one. Numbers
/// are taken as JSON numbers, so a bad one (negative, zero, fractional) is refused with the
/// document's located message.
#[derive(Debug, Clone, Default, Args)]
#[group(required = true, multiple = true)]
pub struct LimitsSource {
    /// The limits document (JSON), `-` for stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["text", "qps", "burst", "concurrency", "adaptive", "connections", "method"])]
    pub file: Option<PathBuf>,
    /// The limits document itself, e.g. '{"qps": 1000, "methods": {"echo": {"concurrency": 8}}}'.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["qps", "burst", "concurrency", "adaptive", "connections", "method"])]
    pub text: Option<String>,
    /// Calls per second, as a token bucket (the method's with --method).
    #[arg(long, value_name = "N", value_parser = parse_number, allow_negative_numbers = true)]
    pub qps: Option<serde_json::Number>,
    /// Calls the bucket lets through at once [default: 50 ms worth of --qps] (the method's with
    /// --method).
    #[arg(long, value_name = "N", value_parser = parse_number, allow_negative_numbers = true)]
    pub burst: Option<serde_json::Number>,
    /// Calls running at once (the method's with --method).
    #[arg(long, value_name = "N", value_parser = parse_number, allow_negative_numbers = true)]
    pub concurrency: Option<serde_json::Number>,
    /// A concurrency limit that follows latency, between 4 and 1000 calls (a document sets other
    /// bounds); the service's, also with --method.
    #[arg(long)]
    pub adaptive: bool,
    /// Connections the node's port accepts; the service's, also with --method.
    #[arg(long, value_name = "N", value_parser = parse_number, allow_negative_numbers = true)]
    pub connections: Option<serde_json::Number>,
    /// Apply --qps, --burst and --concurrency to this method of the service.
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
}

/// A JSON number.
fn parse_number(text: &str) -> Result<serde_json::Number, String> {
    serde_json::from_str(text.trim()).map_err(|_| format!("{text:?} is not a number"))
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `probe console ...`
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8480", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Token that may change nodes and apps [default: a random one, printed at start].
    #[arg(long, env = "PROBE_CONSOLE_ADMIN_TOKEN", hide_env_values = true, value_name = "T")]
    pub admin_token: Option<String>,
    /// Token that may only look [default: a random one, printed at start].
    #[arg(long, env = "PROBE_CONSOLE_VIEWER_TOKEN", hide_env_values = true, value_name = "T")]
    pub viewer_token: Option<String>,
    /// A proxy in front of the console (a CIDR block or an address; repeat the option, or
    /// comma-separate in the variable): from it, the rightmost `X-Forwarded-For` address that is no
    /// trusted proxy is the client the login limit counts [default: none; the peer is the client].
    #[arg(
        long = "trusted-proxy",
        env = "PROBE_CONSOLE_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_net
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// Serve HTTPS with this certificate chain (PEM, the console's certificate first); the session
    /// cookie is then `Secure` [default: plain HTTP].
    #[arg(long, env = "PROBE_CONSOLE_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "PROBE_CONSOLE_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `probe idl ...`
#[derive(Debug, Subcommand)]
pub enum IdlCommand {
    /// Parse and resolve IDL files and their includes; print every error with its location.
    Check(IdlFiles),
    /// Generate Rust for IDL files and their includes into a directory (what build.rs does).
    Gen {
        /// The IDL files.
        #[command(flatten)]
        idl: IdlFiles,
        /// Output directory.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

/// IDL files and include directories.
#[derive(Debug, Args)]
pub struct IdlFiles {
    /// The .thrift files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Extra directories searched for includes (after the including file's own directory).
    #[arg(short = 'I', long = "include")]
    pub include: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from(["probe", "services", "list", "--env", "prod", "--json"]).unwrap();
        assert_eq!(cli.global.env, Some(Env::Prod));
        assert!(cli.global.json);
        let cli = Cli::try_parse_from(["probe", "--actor", "bob", "nodes", "weight", "a/S_1.2.3.4_1", "70"])
            .unwrap();
        assert_eq!(cli.global.actor.as_deref(), Some("bob"));
        assert!(matches!(cli.command, Command::Nodes(NodesCommand::Weight { weight: 70, .. })));
        assert!(Cli::try_parse_from(["probe", "services", "list", "--env", "qa"]).is_err());
    }

    #[test]
    fn rule_commands_take_the_service_a_file_and_pairs() {
        let cli = Cli::try_parse_from([
            "probe",
            "rules",
            "preview",
            "app",
            "Svc",
            "-",
            "--tag",
            "zone=a",
            "--header",
            "canary=1=2",
        ])
        .unwrap();
        let Command::Rules(RulesCommand::Preview { of, file, tags, headers }) = cli.command else {
            panic!("preview")
        };
        assert_eq!((of.appkey.as_str(), of.service.as_str(), file.to_str()), ("app", "Svc", Some("-")));
        assert_eq!(
            (tags, headers),
            (vec![("zone".into(), "a".into())], vec![("canary".into(), "1=2".into())])
        );
        let err =
            Cli::try_parse_from(["probe", "rules", "preview", "a", "S", "f", "--tag", "=x"]).unwrap_err();
        assert!(err.to_string().contains("is not KEY=VALUE"), "{err}");
        let cli = Cli::try_parse_from(["probe", "rules", "rollback", "app", "Svc", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Rules(RulesCommand::Rollback { revision: 3, .. })));
    }

    #[test]
    fn limit_commands_take_a_document_or_flags() {
        let cli = Cli::try_parse_from([
            "probe",
            "limits",
            "set",
            "app",
            "Svc",
            "--node",
            "10.0.0.7:9090",
            "--method",
            "echo",
            "--qps",
            "200",
            "--concurrency",
            "-3",
            "--adaptive",
        ])
        .unwrap();
        let Command::Limits(LimitsCommand::Set { of, source }) = cli.command else { panic!("set") };
        assert_eq!(of.node, Some(NodeAddress { ip: "10.0.0.7".into(), port: 9090 }));
        assert_eq!((source.method.as_deref(), source.adaptive), (Some("echo"), true));
        assert_eq!(
            (source.qps.unwrap().as_u64(), source.concurrency.unwrap().as_i64()),
            (Some(200), Some(-3))
        );
        let cli =
            Cli::try_parse_from(["probe", "limits", "set", "app", "Svc", "--text", "{}", "--json"]).unwrap();
        assert!(cli.global.json);
        let Command::Limits(LimitsCommand::Set { source, .. }) = cli.command else { panic!("set") };
        assert_eq!(source.text.as_deref(), Some("{}"));
        let cli =
            Cli::try_parse_from(["probe", "limits", "clear", "app", "Svc", "--node", "[::1]:80"]).unwrap();
        let Command::Limits(LimitsCommand::Clear(of)) = cli.command else { panic!("clear") };
        assert_eq!(of.node, Some(NodeAddress { ip: "::1".into(), port: 80 }));
        assert!(matches!(
            Cli::try_parse_from(["probe", "limits", "show", "app"]).unwrap().command,
            Command::Limits(LimitsCommand::Show { service: None, .. })
        ));

        for bad in [
            &["probe", "limits", "set", "app", "Svc"][..],
            &["probe", "limits", "set", "app", "Svc", "--file", "f.json", "--qps", "5"],
            &["probe", "limits", "set", "app", "Svc", "--text", "{}", "--adaptive"],
            &["probe", "limits", "set", "app", "Svc", "--qps", "many"],
            &["probe", "limits", "clear", "app", "Svc", "--node", "10.0.0.7"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trusted_proxies_repeat() {
        let cli = Cli::try_parse_from([
            "probe",
            "console",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1,192.168.1.7",
        ])
        .unwrap();
        let Command::Console(args) = cli.command else { panic!("console") };
        let shown: Vec<String> = args.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
        let err = Cli::try_parse_from(["probe", "console", "--trusted-proxy", "10.0.0.0/40"]).unwrap_err();
        assert!(err.to_string().contains("CIDR block"), "{err}");
    }
}
