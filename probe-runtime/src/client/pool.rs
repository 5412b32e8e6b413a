//! One call at a time per connection, connections pooled: what stock Thrift servers expect.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::header::encode_prefixed;
use crate::error::Error;
use crate::metrics::PhaseStats;
use crate::tls::ClientStream;
use crate::transport::{MessageReader, encode_frame};

/// A connection resting in the pool.
struct Idle {
    conn: MessageReader<ClientStream>,
    since: Instant,
}

/// Up to `size` connections to one endpoint, each carrying one call at a time. A call waits for
/// a free connection when all are busy; a connection that failed or timed out is dropped.
pub(super) struct Pool {
    endpoint: Arc<Endpoint>,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    idle_timeout: Duration,
    /// Where connect, send and wait times go, unless metrics are off.
    phases: Option<Arc<PhaseStats>>,
}

impl Pool {
    pub(super) fn new(
        endpoint: Arc<Endpoint>,
        size: usize,
        idle_timeout: Duration,
        phases: Option<Arc<PhaseStats>>,
    ) -> Self {
        Pool { endpoint, idle: Mutex::new(Vec::new()), permits: Semaphore::new(size), idle_timeout, phases }
    }

    /// Connections free to take (all of them while no call is in flight).
    #[cfg(test)]
    pub(super) fn free(&self) -> usize {
        self.permits.available_permits()
    }

    /// Opens one connection now and keeps it for the first call.
    pub(super) async fn warm(&self) -> Result<(), Error> {
        let conn = self.open().await?;
        self.put_back(conn);
        Ok(())
    }

    /// Sends `message` (named `prefix:name` when `prefix` is given) and waits for its reply (none
    /// for oneway calls).
    pub(super) async fn call(
        &self,
        message: Bytes,
        prefix: Option<&'static str>,
        oneway: bool,
    ) -> Result<Option<Bytes>, Error> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            self.endpoint.broken(io::ErrorKind::NotConnected, "the connection pool is closed")
        })?;
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            // Boxed: connecting (a TLS handshake's state too) stays out of every call's future.
            None => Box::pin(self.open()).await?,
        };
        let started = self.phases.as_ref().map(|_| std::time::Instant::now());
        let wire = self.endpoint.wire;
        let mut out = BytesMut::with_capacity(4 + message.len() + prefix.map_or(0, |p| p.len() + 1));
        match prefix {
            Some(service) if encode_prefixed(wire.protocol, wire.framing, &message, service, &mut out) => {}
            Some(service) => {
                let renamed = super::mux::rename(wire, &message, service)
                    .map_err(|why| self.endpoint.broken(io::ErrorKind::InvalidInput, why))?;
                encode_frame(wire.framing, &renamed, &mut out).map_err(|e| self.endpoint.wire_error(e))?;
            }
            None => {
                encode_frame(wire.framing, &message, &mut out).map_err(|e| self.endpoint.wire_error(e))?
            }
        }
        conn.get_mut().write_all(&out).await.map_err(|e| self.endpoint.io_error(e))?;
        let sent = match (&self.phases, started) {
            (Some(phases), Some(started)) => {
                let now = std::time::Instant::now();
                phases.send.record(now.saturating_duration_since(started));
                Some((phases, now))
            }
            _ => None,
        };
        if oneway {
            self.put_back(conn);
            return Ok(None);
        }
        match conn.read_message().await {
            Ok(Some(reply)) => {
                if let Some((phases, sent)) = sent {
                    phases.wait.record(sent.elapsed());
                }
                // Bytes beyond the reply mean the connection is out of step: don't reuse it.
                if conn.buffered() == 0 {
                    self.put_back(conn);
                }
                Ok(Some(reply))
            }
            Ok(None) => Err(self
                .endpoint
                .broken(io::ErrorKind::UnexpectedEof, "the server closed the connection before replying")),
            Err(e) => Err(self.endpoint.wire_error(e)),
        }
    }

    async fn open(&self) -> Result<MessageReader<ClientStream>, Error> {
        let started = std::time::Instant::now();
        let stream = self.endpoint.connect().await?;
        if let Some(phases) = &self.phases {
            phases.connect.record(started.elapsed());
        }
        Ok(MessageReader::new(stream, self.endpoint.wire, self.endpoint.limits))
    }

    /// The most recently used idle connection that is still open and fresh.
    fn take_idle(&self) -> Option<MessageReader<ClientStream>> {
        loop {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
            if idle.since.elapsed() < self.idle_timeout && idle.conn.get_mut().still_open() {
                return Some(idle.conn);
            }
        }
    }

    fn put_back(&self, conn: MessageReader<ClientStream>) {
        let idle = Idle { conn, since: Instant::now() };
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
    }
}
