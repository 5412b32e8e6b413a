//! A TCP proxy on a free loopback port in front of a test service: [`Proxy::sever`] cuts its open
//! connections, as a restart or a network failure would (new ones still go through), and
//! [`Proxy::close`] also stops listening, so the service looks down to whoever connected through
//! the proxy while the shared service itself keeps running for the other tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A TCP proxy to one target address.
#[derive(Debug)]
pub struct Proxy {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target` (`host:port`).
    pub async fn start(target: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let links = links.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let target = target.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().expect("proxy links").push(link.abort_handle());
                }
            }
        });
        Ok(Proxy { addr, links, accept })
    }

    /// Cuts the open connections; new ones still go through.
    pub fn sever(&self) {
        for link in self.links.lock().expect("proxy links").drain(..) {
            link.abort();
        }
    }

    /// Stops listening (the port refuses connections once this returns) and cuts the open
    /// connections.
    pub async fn close(&mut self) {
        self.accept.abort();
        // The listener is dropped with the task: wait for that.
        let _ = (&mut self.accept).await;
        self.sever();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}
