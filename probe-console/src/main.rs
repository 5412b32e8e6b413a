//! `probe`: the operators' tool for probe services.

use anyhow::Result;
use clap::{Parser, Subcommand};
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

fn main() -> Result<()> {
    match Cli::parse().command {
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
    Ok(())
}
