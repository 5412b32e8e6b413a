//! The physical-limit baseline: a TCP server that sends every length-prefixed frame straight back.
//!
//! Per connection one task reads what has arrived, writes back every whole frame in it with one
//! write, and keeps the partial one: as many frames in flight as the client sends, no parsing
//! past the 4-byte length, no allocation once the buffer has grown.

use anyhow::{Result, bail};
use bytes::{Buf, BytesMut};
use clap::Parser;
use probe_bench::server_cli::{ServerArgs, terminated};
use probe_bench::wire::EchoCall;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Frames longer than this close the connection.
const MAX_FRAME: usize = 16 * 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Echoes length-prefixed frames (4-byte big-endian length, then that many bytes).
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Answer a strict-binary Thrift call as probe's echo server would (message type REPLY,
    /// field id 0), rewriting 3 bytes per frame in place: the limit for Thrift clients.
    #[arg(long)]
    reply: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.server.runtime()?.block_on(serve(cli.server, cli.reply))
}

async fn serve(args: ServerArgs, reply: bool) -> Result<()> {
    let listener = args.bind().await?;
    let accept = async {
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = echo(stream, reply).await {
                    eprintln!("raw-echo-server: connection closed: {e:#}");
                }
            });
        }
    };
    tokio::select! {
        accepted = accept => accepted,
        stop = terminated() => stop,
    }
}

async fn echo(mut stream: TcpStream, reply: bool) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut whole = 0;
        while let Some(len) = EchoCall::complete_frame(&buf[whole..]) {
            if len > MAX_FRAME {
                bail!("a frame of {len} bytes");
            }
            if reply && !EchoCall::call_to_reply(&mut buf[whole..whole + len]) {
                bail!("a frame that is no strict binary call");
            }
            whole += len;
        }
        if whole > 0 {
            stream.write_all(&buf[..whole]).await?;
            buf.advance(whole);
        }
    }
}
