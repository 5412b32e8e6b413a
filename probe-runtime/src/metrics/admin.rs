//! The admin HTTP endpoint of a server: `GET /metrics` (Prometheus text of the process's
//! registry) and `GET /health` (`200 ok`, or `503 draining` once the server is shutting down).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::MetricsRegistry;
use super::prometheus::CONTENT_TYPE;

/// How long a stop waits for open admin requests before closing their connections.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the handlers read.
#[derive(Debug, Clone)]
struct Admin {
    registry: MetricsRegistry,
    draining: Arc<AtomicBool>,
}

/// A running admin endpoint; stop it with [`AdminServer::stop`]. Dropping it leaves it running.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Serves the admin endpoint on `addr` in a background task: `/metrics` renders `registry`,
    /// `/health` answers 503 once `draining` is set.
    pub async fn start(
        addr: SocketAddr,
        registry: MetricsRegistry,
        draining: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            // A dropped handle never stops the endpoint.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let app = router(Admin { registry, draining });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                warn!(error = %e, "the admin endpoint failed");
            }
        });
        info!(%local_addr, "admin endpoint serving /metrics and /health");
        Ok(AdminServer { local_addr, stop: Some(stop), task })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets open requests finish for a moment, and closes.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(STOP_GRACE, &mut self.task).await.is_err() {
            debug!("admin connections still open after {STOP_GRACE:?}: closing them");
            self.task.abort();
        }
    }
}

fn router(admin: Admin) -> Router {
    Router::new().route("/metrics", get(metrics)).route("/health", get(health)).with_state(admin)
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], admin.registry.render())
}

async fn health(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.draining.load(Ordering::Relaxed) {
        false => (StatusCode::OK, "ok"),
        true => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// `GET path` over HTTP/1.1; the status line and the body.
    async fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn serves_metrics_and_health_until_stopped() {
        let draining = Arc::new(AtomicBool::new(false));
        let registry = MetricsRegistry::new();
        let admin = AdminServer::start(([127, 0, 0, 1], 0).into(), registry, draining.clone()).await.unwrap();
        let addr = admin.local_addr();
        assert_eq!(get(addr, "/health").await, ("HTTP/1.1 200 OK".to_owned(), "ok".to_owned()));
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("# TYPE probe_server_calls_total counter"), "{body}");
        assert_eq!(get(addr, "/nope").await.0, "HTTP/1.1 404 Not Found");
        draining.store(true, Ordering::Relaxed);
        assert_eq!(get(addr, "/health").await.0, "HTTP/1.1 503 Service Unavailable");
        admin.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "stopped");
    }
}
