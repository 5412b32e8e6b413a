//! Traces across processes: OpenTelemetry for probe's call spans (feature `otel`, off by default).
//!
//! With the feature, a probe server's `call` span continues the trace its caller sent in the W3C
//! `traceparent` header (THeader calls), and a probe client sends the trace of the span it calls
//! from (its own `call` span when that is enabled), so a client -> A -> B chain is one trace. The
//! spans go wherever the process's `tracing` subscriber sends them: [`Telemetry::otlp`] installs one
//! that exports them over OTLP/HTTP; [`layer`] gives the layer for a subscriber of your own (an
//! in-memory exporter in tests, say).
//!
//! Without a subscriber that has an OpenTelemetry layer nothing is exported and the spans cost what
//! they did; without the feature, probe passes a handler's `traceparent` on to the calls it makes
//! unchanged, so the trace id still crosses every probe hop.
//!
//! ```no_run
//! # fn run() -> Result<(), probe_runtime::telemetry::TelemetryError> {
//! // Exports to http://localhost:4318/v1/traces (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); logs at
//! // RUST_LOG (default info) to standard error. Flushes when dropped.
//! let _telemetry = probe_runtime::telemetry::Telemetry::otlp("order-service", None)?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::context::names;
use crate::transport::header::Headers;

/// Why telemetry could not start.
#[derive(thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a malformed endpoint, say).
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Exporter {
        /// The endpoint asked for (or the default).
        endpoint: String,
        /// The exporter's words.
        reason: String,
    },
    /// A global `tracing` subscriber was already installed.
    #[error("a tracing subscriber is already installed; add probe_runtime::telemetry::layer to it instead")]
    SubscriberSet,
}

crate::debug_as_display!(TelemetryError);

/// The layer that turns `tracing` spans into OpenTelemetry spans of `provider`'s tracer named
/// `name`, for a subscriber you build: probe's `call` and `attempt` spans (debug level; not its
/// `connection` spans, which live as long as a connection) and every other span and event at info
/// and above.
pub fn layer<S>(provider: &SdkTracerProvider, name: &'static str) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let wanted = filter_fn(|meta| {
        let probe_call = meta.is_span()
            && meta.target().starts_with("probe_runtime")
            && matches!(meta.name(), "call" | "attempt");
        probe_call || *meta.level() <= Level::INFO
    });
    tracing_opentelemetry::layer().with_tracer(provider.tracer(name)).with_filter(wanted)
}

/// A tracer provider exporting over OTLP, installed with the process's subscriber; flushes and
/// shuts down when dropped.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Exports spans of `service_name` over OTLP/HTTP (protobuf) to `endpoint` (the full traces
    /// URL; default `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `http://localhost:4318/v1/traces`),
    /// in batches from a thread of their own, and installs the global subscriber: logs at
    /// `RUST_LOG` (default `info`) to standard error, plus the spans of [`layer`].
    pub fn otlp(service_name: &'static str, endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
        use opentelemetry_otlp::WithExportConfig;
        let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let exporter = builder.build().map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.unwrap_or("the default").to_owned(),
            reason: e.to_string(),
        })?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name).build();
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(logs))
            .with(layer(&provider, service_name))
            .try_init()
            .map_err(|_| TelemetryError::SubscriberSet)?;
        Ok(Telemetry { provider })
    }

    /// The provider, for spans of your own.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("probe telemetry: exporting the last spans failed: {e}");
        }
    }
}

/// Makes `span` (a server's `call` span) continue the trace in `headers`' `traceparent`.
pub(crate) fn adopt(span: &Span, headers: &Headers) {
    if span.is_disabled() || !headers.contains(names::TRACEPARENT) {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderCarrier(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when the span was already started with another parent: then it keeps that.
        let _ = span.set_parent(parent);
    }
}

/// Writes the trace of the current span (if it has an OpenTelemetry one) as `traceparent` and
/// `tracestate` into `headers`, replacing what was there.
pub(crate) fn inject(headers: &mut Headers) {
    let cx = Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    }
}

/// Headers as an OpenTelemetry carrier.
struct HeaderCarrier<'a>(&'a Headers);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().filter_map(|(k, _)| std::str::from_utf8(k).ok()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}
