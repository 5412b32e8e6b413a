//! One process of a traced chain (client -> A -> B), each with an in-memory OpenTelemetry exporter
//! whose spans it writes as JSON lines when it ends. For `tests/tests/trace_context.rs`.
//!
//! ```text
//! trace_hop serve NAME SPANS_FILE [NEXT_ADDR]   serve `Hop` (passing calls on to NEXT_ADDR if given);
//!                                               prints `READY <port>`; ends on SIGTERM
//! trace_hop call ADDR SPANS_FILE                call `Hop.relay` once as `client_app`, critical;
//!                                               prints `REPLY <what the last hop saw>`
//! ```

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use probe::{CallError, Channel, Context, Metadata, Priority, Server, TcpTransport};
use probe_tests::idl::hop::{Hop, HopClient, HopServer};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A hop: passes calls on to `next`, or (the last hop) says what it saw of its caller.
struct Relay {
    next: Option<HopClient>,
}

impl Hop for Relay {
    async fn relay(&self, note: String) -> Result<String, CallError> {
        if let Some(next) = &self.next {
            return next.relay(format!("{note} via A")).await;
        }
        let cx =
            Context::current().ok_or_else(|| CallError::from(probe::Error::handler("no call context")))?;
        let trace = cx.traceparent().and_then(|t| t.split('-').nth(1)).unwrap_or("-");
        Ok(format!(
            "note={note} appkey={} priority={} trace={trace}",
            cx.caller_appkey().unwrap_or("-"),
            cx.priority().map_or("-".to_owned(), |p| p.level().to_string()),
        ))
    }
}

/// A channel speaking THeader (so metadata and trace context travel) to `addr`.
async fn channel(addr: &str) -> Result<Channel> {
    let transport = TcpTransport::builder(addr).header(true).multiplex(true).timeout(Duration::from_secs(10));
    Ok(Channel::new(transport.connect().await.with_context(|| format!("cannot connect to {addr}"))?))
}

/// Writes every finished span of `exporter` to `path`, one JSON object per line.
fn write_spans(
    process: &str,
    provider: &SdkTracerProvider,
    exporter: &InMemorySpanExporter,
    path: &str,
) -> Result<()> {
    provider.force_flush().context("flushing spans")?;
    let mut out = std::fs::File::create(path).with_context(|| format!("cannot write {path}"))?;
    for span in exporter.get_finished_spans().context("reading spans")? {
        let line = serde_json::json!({
            "process": process,
            "name": span.name,
            "trace_id": span.span_context.trace_id().to_string(),
            "span_id": span.span_context.span_id().to_string(),
            "parent_span_id": span.parent_span_id.to_string(),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    tracing_subscriber::registry().with(probe::telemetry::layer(&provider, "trace_hop")).init();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["serve", name, spans, rest @ ..] => {
            let next = match rest.first() {
                Some(addr) => Some(HopClient::new(
                    channel(addr).await?.with_metadata(Metadata::new().caller("a_app", "A")),
                )),
                None => None,
            };
            let server =
                Server::builder().add_service(HopServer::new(Relay { next })).start("127.0.0.1:0").await?;
            println!("READY {}", server.local_addr().port());
            probe::shutdown_signal().await;
            server.shutdown().await?;
            write_spans(name, &provider, &exporter, spans)
        }
        ["call", addr, spans] => {
            let metadata = Metadata::new().caller("client_app", "Client").priority(Priority::CRITICAL);
            let client = HopClient::new(channel(addr).await?.with_metadata(metadata));
            let reply = client.relay("hi".into()).instrument(tracing::info_span!("checkout")).await?;
            println!("REPLY {reply}");
            write_spans("client", &provider, &exporter, spans)
        }
        _ => bail!("usage: trace_hop serve NAME SPANS_FILE [NEXT_ADDR] | trace_hop call ADDR SPANS_FILE"),
    }
}
