//! The console on a free local port for the console tests, with known admin and viewer tokens.

use std::net::SocketAddr;

use anyhow::Result;
use probe_console::console::{ConsoleOptions, ConsoleState, serve_on};
use probe_runtime::registry::Backends;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The console's admin token in the tests.
pub const ADMIN: &str = "console-test-admin-token-0123456789";
/// The console's viewer token in the tests.
pub const VIEWER: &str = "console-test-viewer-token-0123456789";

/// The console on 127.0.0.1 (a free port) over `backends` until the sender fires or is dropped;
/// answers its address.
pub async fn start_console(backends: &Backends) -> Result<(SocketAddr, oneshot::Sender<()>)> {
    let options = ConsoleOptions {
        bind: "127.0.0.1:0".parse()?,
        admin_token: ADMIN.into(),
        viewer_token: VIEWER.into(),
    };
    let state = ConsoleState::new(&options, backends.clone())?;
    let listener = TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_on(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok((addr, stop))
}
