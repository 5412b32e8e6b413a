//! The registry in Prometheus text: a `prometheus-client` [`Collector`] that reads the atomics
//! where calls record them, so nothing is counted twice.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::MetricsRegistry;
use super::histogram::HistogramSnapshot;
use super::outcome::Outcome;

/// The `Content-Type` of [`MetricsRegistry::render`]: Prometheus text, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

impl MetricsRegistry {
    /// Every series in the Prometheus text format (version 0.0.4): server calls by service, method
    /// and outcome with their latency histograms; client calls by service, method, node and
    /// outcome with theirs; each client node's connect, send and wait times.
    pub fn render(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a `String` cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    fn encode_server(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let series = self.server_calls();
        let mut calls = encoder.encode_descriptor(
            "probe_server_calls",
            "Calls a server finished, by outcome (ok, exception: a declared one, app_error).",
            None,
            MetricType::Counter,
        )?;
        for (service, method, snapshot) in &series {
            for outcome in Outcome::SERVER {
                let labels = [("service", *service), ("method", *method), ("outcome", outcome.as_str())];
                counter(&mut calls, &labels, snapshot.count(outcome))?;
            }
        }
        let mut latency = encoder.encode_descriptor(
            "probe_server_call_duration_seconds",
            "Time from a request read to its reply ready.",
            None,
            MetricType::Histogram,
        )?;
        for (service, method, snapshot) in &series {
            histogram(&mut latency, &[("service", *service), ("method", *method)], &snapshot.latency)?;
        }
        let mut bad = encoder.encode_descriptor(
            "probe_server_bad_header_frames",
            "Header frames (THeader) a server could not read; each closed its connection.",
            None,
            MetricType::Counter,
        )?;
        for (node, count) in self.server_bad_header_frames() {
            counter(&mut bad, &[("node", node.as_str())], count)?;
        }
        self.encode_buffered(encoder)?;
        self.encode_limits(encoder)?;
        self.encode_callers(encoder)
    }

    /// Each server's caller policies: calls refused by reason, and calls served that proved no
    /// appkey under `"unauthenticated": "count"`.
    fn encode_callers(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        use crate::security::callers::REFUSAL_REASONS;
        let servers = self.server_callers();
        let mut refused = encoder.encode_descriptor(
            "probe_server_refused_callers",
            "Calls a server refused under its caller policies, by reason (not_allowed, unauthenticated, \
             bad_credential).",
            None,
            MetricType::Counter,
        )?;
        for (node, all) in &servers {
            for stats in all {
                for (reason, count) in REFUSAL_REASONS.iter().zip(stats.refused) {
                    let labels = [("node", node.as_str()), ("service", stats.service), ("reason", *reason)];
                    counter(&mut refused, &labels, count)?;
                }
            }
        }
        let mut unproven = encoder.encode_descriptor(
            "probe_server_unauthenticated_calls",
            "Calls a server served that proved no caller appkey, under a policy that counts them.",
            None,
            MetricType::Counter,
        )?;
        for (node, all) in &servers {
            for stats in all {
                let labels = [("node", node.as_str()), ("service", stats.service)];
                counter(&mut unproven, &labels, stats.unauthenticated)?;
            }
        }
        Ok(())
    }

    /// Each server's request limits: what is set, calls in flight, the adaptive limit, and the
    /// calls refused by reason and by priority. `method="*"` is the service's own limit.
    fn encode_limits(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        use crate::limits::{PRIORITIES, REASONS};
        let servers = self.server_limits();
        let each = || {
            servers.iter().flat_map(|(node, all)| {
                all.iter().map(move |l| (node.as_str(), l.service, l.method.unwrap_or("*"), l))
            })
        };
        let mut refused = encoder.encode_descriptor(
            "probe_server_refused_calls",
            "Calls a server refused under its request limits, by reason (qps, concurrency, adaptive).",
            None,
            MetricType::Counter,
        )?;
        for (node, service, method, l) in each() {
            for (reason, count) in REASONS.iter().zip(l.stats.refused) {
                counter(
                    &mut refused,
                    &[("node", node), ("service", service), ("method", method), ("reason", reason)],
                    count,
                )?;
            }
        }
        let mut by_priority = encoder.encode_descriptor(
            "probe_server_refused_calls_by_priority",
            "Calls a server refused under its request limits, by the caller's priority.",
            None,
            MetricType::Counter,
        )?;
        for (node, service, method, l) in each() {
            for (priority, count) in PRIORITIES.iter().zip(l.stats.refused_by_priority) {
                let labels =
                    [("node", node), ("service", service), ("method", method), ("priority", *priority)];
                counter(&mut by_priority, &labels, count)?;
            }
        }
        let gauges: [(&str, &str, PickLimit); 4] = [
            ("probe_server_limit_qps", "The calls per second a request limit lets in.", |l| l.qps),
            ("probe_server_limit_concurrency", "The calls in flight a request limit lets in.", |l| {
                l.concurrency.map(f64::from)
            }),
            ("probe_server_adaptive_limit", "The adaptive concurrency limit now.", |l| {
                l.stats.adaptive_limit.map(f64::from)
            }),
            ("probe_server_limited_in_flight", "Calls in flight under a request limit.", |l| {
                Some(f64::from(l.stats.in_flight))
            }),
        ];
        for (name, help, pick) in gauges {
            let mut gauge = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (node, service, method, l) in each() {
                if let Some(value) = pick(l) {
                    gauge
                        .encode_family(&[("node", node), ("service", service), ("method", method)])?
                        .encode_gauge(&value)?;
                }
            }
        }
        Ok(())
    }

    /// The request and reply bytes each server buffers, against its memory budget.
    fn encode_buffered(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let buffered = self.server_buffered();
        let gauges = [
            (
                "probe_server_buffered_bytes",
                "Bytes a server's connections buffer for requests being read and replies being written.",
            ),
            ("probe_server_buffered_bytes_peak", "The most bytes a server's connections buffered at once."),
            (
                "probe_server_memory_budget_bytes",
                "The most bytes a server's connections may buffer before reads pause.",
            ),
        ];
        for (i, (name, help)) in gauges.into_iter().enumerate() {
            let mut gauge = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (node, in_use, peak, limit) in &buffered {
                let bytes = [in_use, peak, limit][i];
                let bytes = i64::try_from(*bytes).unwrap_or(i64::MAX);
                gauge.encode_family(&[("node", node.as_str())])?.encode_gauge(&bytes)?;
            }
        }
        Ok(())
    }

    fn encode_client(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let series = self.client_calls_all();
        let mut calls = encoder.encode_descriptor(
            "probe_client_calls",
            "Calls (attempts) a client made to a node, by outcome \
             (ok, exception, app_error, transport_error, timeout).",
            None,
            MetricType::Counter,
        )?;
        for s in &series {
            for outcome in Outcome::ALL {
                let labels = [
                    ("service", s.service),
                    ("method", s.method),
                    ("node", &*s.node),
                    ("outcome", outcome.as_str()),
                ];
                counter(&mut calls, &labels, s.calls.count(outcome))?;
            }
        }
        let mut latency = encoder.encode_descriptor(
            "probe_client_call_duration_seconds",
            "Time from a call handed to a node to its reply decoded or its failure.",
            None,
            MetricType::Histogram,
        )?;
        for s in &series {
            let labels = [("service", s.service), ("method", s.method), ("node", &*s.node)];
            histogram(&mut latency, &labels, &s.calls.latency)?;
        }
        let phases = self.phases_all();
        for (name, help, pick) in PHASES {
            let mut encoder = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (node, stats) in &phases {
                histogram(&mut encoder, &[("node", &**node)], &pick(stats).snapshot())?;
            }
        }
        Ok(())
    }
}

type PickPhase = fn(&super::PhaseStats) -> &super::Histogram;

/// Reads one gauge of a request limit.
type PickLimit = fn(&crate::server::LimitStats) -> Option<f64>;

const PHASES: [(&str, &str, PickPhase); 3] = [
    ("probe_client_connect_seconds", "Time to open a connection to a node.", |p| &p.connect),
    (
        "probe_client_send_seconds",
        "Time to write a request (pooled connections) or queue it (multiplexed ones).",
        |p| &p.send,
    ),
    ("probe_client_wait_seconds", "Time from a request sent to its reply read.", |p| &p.wait),
];

fn counter<const N: usize>(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &Labels<'_, N>,
    value: u64,
) -> std::fmt::Result {
    encoder.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    snapshot: &HistogramSnapshot,
) -> std::fmt::Result {
    let buckets = snapshot.prometheus_buckets();
    let count = buckets.iter().map(|(_, n)| n).sum();
    encoder.encode_family(labels)?.encode_histogram::<NoLabelSet>(
        snapshot.sum().as_secs_f64(),
        count,
        &buckets,
        None,
    )
}

impl Collector for MetricsRegistry {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        self.encode_server(&mut encoder)?;
        self.encode_client(&mut encoder)?;
        self.encode_rules(&mut encoder)?;
        self.encode_faults(&mut encoder)?;
        self.encode_unusable(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::metrics::client::NodeRecorder;
    use crate::metrics::server::ServerStats;
    use crate::metrics::server::tests::fake;
    use crate::service::Dispatch;

    /// The value of the sample line that starts with `series` (name and labels).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn server_and_client_series_are_rendered() {
        let registry = MetricsRegistry::new();
        let server = Arc::new(ServerStats::new([&fake("Demo") as &dyn Dispatch]));
        registry.add_server(server.clone());
        for _ in 0..3 {
            server.record("Demo", "get", Outcome::Ok, Duration::from_micros(300));
        }
        server.record("Demo", "get", Outcome::Exception, Duration::from_micros(300));
        let node = NodeRecorder::new(&registry, "Demo_10.0.0.1_9090".into());
        node.record("Demo", "put", Outcome::Timeout, Duration::from_secs(2));
        node.phases().connect.record(Duration::from_micros(150));

        let text = registry.render();
        let s = r#"probe_server_calls_total{service="Demo",method="get""#;
        assert_eq!(sample(&text, &format!(r#"{s},outcome="ok"}}"#)), Some(3.0), "{text}");
        assert_eq!(sample(&text, &format!(r#"{s},outcome="exception"}}"#)), Some(1.0));
        assert_eq!(sample(&text, &format!(r#"{s},outcome="app_error"}}"#)), Some(0.0));
        let h = r#"probe_server_call_duration_seconds_bucket{service="Demo",method="get",le="#;
        assert_eq!(sample(&text, &format!(r#"{h}"0.000256"}}"#)), Some(0.0));
        assert_eq!(sample(&text, &format!(r#"{h}"0.000512"}}"#)), Some(4.0));
        assert_eq!(sample(&text, &format!(r#"{h}"+Inf"}}"#)), Some(4.0));
        let count = r#"probe_server_call_duration_seconds_count{service="Demo",method="get"}"#;
        assert_eq!(sample(&text, count), Some(4.0));
        let c = r#"probe_client_calls_total{service="Demo",method="put",node="Demo_10.0.0.1_9090""#;
        assert_eq!(sample(&text, &format!(r#"{c},outcome="timeout"}}"#)), Some(1.0));
        let sum = r#"probe_client_call_duration_seconds_sum{service="Demo",method="put",node="Demo_10.0.0.1_9090"}"#;
        assert_eq!(sample(&text, sum), Some(2.0));
        let connect = r#"probe_client_connect_seconds_count{node="Demo_10.0.0.1_9090"}"#;
        assert_eq!(sample(&text, connect), Some(1.0));
        assert!(text.contains("# TYPE probe_client_wait_seconds histogram\n"), "{text}");
        assert!(text.contains("# TYPE probe_server_calls_total counter\n"), "{text}");
    }

    #[test]
    fn series_of_a_departed_node_are_no_longer_rendered() {
        let registry = MetricsRegistry::new();
        let (gone, stays) = ("Demo_10.0.0.1_9090", "Demo_10.0.0.2_9090");
        for node in [gone, stays] {
            let recorder = NodeRecorder::new(&registry, node.into());
            recorder.record("Demo", "get", Outcome::Ok, Duration::from_micros(10));
            recorder.phases().connect.record(Duration::from_micros(10));
        }
        let ok = |node: &str| {
            format!(r#"probe_client_calls_total{{service="Demo",method="get",node="{node}",outcome="ok"}}"#)
        };
        let connect = |node: &str| format!(r#"probe_client_connect_seconds_count{{node="{node}"}}"#);
        let text = registry.render();
        assert_eq!(sample(&text, &ok(gone)), Some(1.0), "{text}");

        registry.forget_client_nodes(&mut [Arc::from(gone)].into());
        let text = registry.render();
        assert!(!text.contains(gone), "{text}");
        assert_eq!(sample(&text, &ok(stays)), Some(1.0), "{text}");
        assert_eq!(sample(&text, &connect(stays)), Some(1.0), "{text}");
    }

    #[test]
    fn an_empty_registry_renders_only_descriptors() {
        let text = MetricsRegistry::new().render();
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    }
}
