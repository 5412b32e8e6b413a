//! `probe`: the operators' tool for probe services.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use probe_runtime::registry::layout::{Env, NodeKey, redis_hash};

/// Operate probe services: registry layout, IDL, apps, nodes, console.
#[derive(Debug, Parser)]
#[command(name = "probe", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with Thrift IDL files.
    #[command(subcommand)]
    Idl(IdlCommand),
    /// Print where a node lives in the registry: its ZooKeeper path and Redis hash field.
    Locate {
        /// Environment: dev or prod.
        #[arg(long, default_value = "dev")]
        env: Env,
        /// The app's key.
        appkey: String,
        /// The Thrift service name.
        service: String,
        /// The provider's address.
        ip: String,
        /// The provider's port.
        port: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum IdlCommand {
    /// Parse and resolve IDL files and their includes; print every error with its location.
    Check(IdlFiles),
    /// Generate Rust for IDL files and their includes into a directory (what build.rs does).
    Gen {
        #[command(flatten)]
        idl: IdlFiles,
        /// Output directory.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct IdlFiles {
    /// The .thrift files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Extra directories searched for includes (after the including file's own directory).
    #[arg(short = 'I', long = "include")]
    include: Vec<PathBuf>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn idl_check(args: &IdlFiles) -> ExitCode {
    let builder = args.include.iter().fold(probe_build::configure(), |b, dir| b.include_dir(dir));
    match builder.check(&args.files) {
        Ok(checked) => {
            let definitions: usize = checked.program.files.iter().map(|f| f.doc.definitions.len()).sum();
            println!("ok: {} file(s), {definitions} definition(s)", checked.program.files.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn idl_gen(args: &IdlFiles, out: &std::path::Path) -> ExitCode {
    let builder = args.include.iter().fold(probe_build::configure(), |b, dir| b.include_dir(dir));
    match builder.out_dir(out).compile(&args.files) {
        Ok(()) => {
            println!("ok: wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Idl(IdlCommand::Check(args)) => return Ok(idl_check(&args)),
        Command::Idl(IdlCommand::Gen { idl, out }) => return Ok(idl_gen(&idl, &out)),
        Command::Locate { env, appkey, service, ip, port, json } => {
            let key = NodeKey::new(env, &appkey, &service, &ip, port)?;
            if json {
                let value = serde_json::json!({
                    "zookeeper_path": key.zk_node_path(),
                    "redis_hash": redis_hash(env),
                    "redis_field": key.redis_field(),
                });
                println!("{value:#}");
            } else {
                println!("zookeeper path  {}", key.zk_node_path());
                println!("redis hash      {}", redis_hash(env));
                println!("redis field     {}", key.redis_field());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
