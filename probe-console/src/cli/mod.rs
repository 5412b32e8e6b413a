//! The `probe` command line: apps, services, nodes, traffic rules, request limits, the audit log,
//! the web console, IDL.
//!
//! ```text
//! probe apps add order_app --owner alice        # register an app (audited)
//! probe services list --env prod                # apps, services, live / in-rotation counts
//! probe nodes list order_app --json             # nodes with settings and live metrics
//! probe nodes weight 'order_app|dev|Order|10.0.0.7|9090' 70
//! probe nodes disable order_app/Order_10.0.0.7_9090
//! probe rules validate order_app Order canary.json  # located problems; exit status 1 if any
//! probe rules set order_app Order canary.json       # the next revision (audited)
//! probe limits set order_app Order --qps 1000 --concurrency 64   # on every node (audited)
//! probe limits show order_app Order             # each node's limits and refused calls
//! probe db migrate --dry-run                    # what probe would add to the design's database
//! probe status                                  # which of ZooKeeper, Redis and MySQL answer
//! ```
//!
//! Every subcommand prints a table for people, or one JSON document with `--json`. Errors go to
//! stderr as text, say what to do, and make the exit code non-zero; a rule refused by `probe rules
//! validate|preview|set`, or limits refused by `probe limits set`, is a report of its problems with
//! exit status 1 (text on stderr, or the JSON document on stdout with `--json`); `probe status`
//! prints its table (or JSON) on stdout either way, with exit status 1 when a backend is down. Changes go through
//! [`Operator`](probe_runtime::registry::Operator), which records them in the audit log under
//! `--actor` (by default `cli:$USER@$HOSTNAME`).

pub mod apps;
pub mod args;
pub mod audit;
pub mod console;
pub mod context;
pub mod db;
pub mod env;
pub mod idl;
pub mod limits;
pub mod locate;
pub mod node_ops;
pub mod node_ref;
pub mod nodes;
pub mod output;
pub mod rules;
pub mod security;
pub mod services;
pub mod status;
#[cfg(test)]
mod test_support;

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use probe_runtime::registry::App;

pub use args::Cli;
use args::{
    AppsCommand, CallersCommand, Command, CredentialCommand, DbCommand, IdlCommand, NodesCommand,
    ServicesCommand, ZkCommand,
};
use context::Context;
use node_ops::NodeAction;
use output::Report;

/// What a subcommand produced: a report (none from a console that stopped), or a failure that
/// is its result.
type Outcome = Result<Option<Report>, Failure>;

/// A subcommand's result that makes the exit status 1.
#[derive(Debug)]
enum Failure {
    /// IDL diagnostics, printed as they are to stderr.
    Diagnostics(String),
    /// The problems of a rule or of limits that were refused: the text to stderr, or the JSON
    /// document to stdout with `--json`.
    Problems(Report),
    /// A report printed as any other (a backend is down in `probe status`).
    Down(Report),
}

/// Runs a parsed command line; `Err` is a failure to print to stderr.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Context::new(cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    match runtime.block_on(dispatch(&ctx, cli.command))? {
        Ok(report) => {
            if let Some(report) = report {
                report.print(ctx.json()).context("cannot write to stdout")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Failure::Diagnostics(diagnostics)) => {
            eprintln!("{}", output::escape::escape_lines(&diagnostics));
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Down(report)) => {
            report.print(ctx.json()).context("cannot write to stdout")?;
            Ok(ExitCode::FAILURE)
        }
        Err(Failure::Problems(report)) => {
            if ctx.json() {
                report.print(true).context("cannot write to stdout")?;
            } else {
                eprint!("{}", output::escape::escape_lines(&report.text));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs one subcommand, connecting to the backends only for those that use them.
async fn dispatch(ctx: &Context, command: Command) -> Result<Outcome> {
    let report = match command {
        Command::Idl(IdlCommand::Check(files)) => {
            return Ok(idl::check(&files).map(Some).map_err(Failure::Diagnostics));
        }
        Command::Idl(IdlCommand::Gen { idl: files, out }) => {
            return Ok(idl::generate(&files, &out).map(Some).map_err(Failure::Diagnostics));
        }
        Command::Env => env::env(ctx, ctx.env_flag())?,
        Command::Locate { appkey, service, ip, port } => {
            locate::locate(ctx.env_without_config()?, &appkey, &service, &ip, port)?
        }
        Command::Apps(command) => {
            let op = ctx.operator(ctx.backends().await?);
            match command {
                AppsCommand::Add { appkey, description, owner, credential_file, no_credential } => {
                    let out = match no_credential {
                        true => None,
                        false => Some(security::SecretOut::new(credential_file.as_deref(), ctx.json())?),
                    };
                    apps::add_with_credential(&op, App { appkey, description, owner }, out).await?
                }
                AppsCommand::Credential(CredentialCommand::Rotate { appkey, credential_file }) => {
                    let out = security::SecretOut::new(credential_file.as_deref(), ctx.json())?;
                    security::rotate(&op, &appkey, out).await?
                }
                AppsCommand::Credential(CredentialCommand::Retire { appkey }) => {
                    security::retire(&op, &appkey).await?
                }
                AppsCommand::Credential(CredentialCommand::Show { appkey }) => {
                    security::show(&op, &appkey).await?
                }
                AppsCommand::List => apps::list(&op).await?,
                AppsCommand::Remove { appkey } => apps::remove(&op, &appkey).await?,
            }
        }
        Command::Services(ServicesCommand::List) => {
            let backends = ctx.backends().await?;
            services::list(&backends, backends.env).await?
        }
        Command::Nodes(command) => nodes_command(ctx, command).await?,
        Command::Rules(command) => {
            return Ok(rules::run(ctx, command).await?.map(Some).map_err(Failure::Problems));
        }
        Command::Limits(command) => {
            return Ok(limits::run(ctx, command).await?.map(Some).map_err(Failure::Problems));
        }
        Command::Zk(ZkCommand::Secure { dry_run }) => {
            let backends = ctx.backends().await?;
            let env = backends.env;
            security::secure(&ctx.operator(backends), env, dry_run).await?
        }
        Command::Callers(command) => {
            let op = ctx.operator(ctx.backends().await?);
            match command {
                CallersCommand::Show { appkey, service } => {
                    security::callers_show(&op, &appkey, service.as_deref()).await?
                }
                CallersCommand::Set { appkey, service, flags } => {
                    let policy = security::policy_from_flags(&op, &appkey, &service, &flags).await?;
                    security::callers_set(&op, &appkey, &service, Some(policy)).await?
                }
                CallersCommand::Clear { appkey, service } => {
                    security::callers_set(&op, &appkey, &service, None).await?
                }
            }
        }
        Command::Db(DbCommand::Status) => db::status(&ctx.config()?).await?,
        Command::Db(DbCommand::Migrate { dry_run }) => db::migrate(&ctx.config()?, dry_run).await?,
        Command::Status => {
            let config = ctx.config()?;
            let probes = status::check(&config).await;
            return Ok(status::report(&config, &probes).map(Some).map_err(Failure::Down));
        }
        Command::Audit { limit } => audit::recent(&ctx.backends().await?, limit).await?,
        Command::Console(args) => {
            // It printed its address and tokens before serving.
            console::serve(&args, ctx.backends().await?, ctx.json()).await?;
            return Ok(Ok(None));
        }
    };
    Ok(Ok(Some(report)))
}

async fn nodes_command(ctx: &Context, command: NodesCommand) -> Result<Report> {
    let config = ctx.config()?;
    let (text, action) = match command {
        NodesCommand::List { appkey } => {
            return nodes::list(&ctx.operator(Context::connect(&config).await?), &appkey).await;
        }
        NodesCommand::Weight { node, weight } => (node, NodeAction::Weight(weight)),
        NodesCommand::Enable { node } => (node, NodeAction::Enable),
        NodesCommand::Disable { node } => (node, NodeAction::Disable),
    };
    // A bad NODE is reported before any connection is made.
    let key = node_ref::parse_node(&text, config.env)?;
    node_ops::apply(&ctx.operator(Context::connect(&config).await?), &key, action).await
}
