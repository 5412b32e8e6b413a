//! The console on a free local port for the console tests, with known admin and viewer tokens,
//! and a plain HTTP/1.1 client to call it as a browser or curl does.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use probe_console::console::{ConsoleOptions, ConsoleState, serve_on};
use probe_runtime::registry::Backends;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        tls: None,
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

/// An HTTP answer: status, headers (lower-case names) and the JSON body (`Null` if none).
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body, `Null` when there is none.
    pub json: Value,
}

impl Answer {
    /// The value of the header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), as a browser or curl sends it.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<Answer> {
    let mut stream = TcpStream::connect(addr).await.context("cannot connect to the console")?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() {
        request += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    request += &body;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("the answer is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).context("no status line")?.parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        bail!("unexpected chunked answer to {method} {path}");
    }
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok(Answer { status, headers, json })
}
