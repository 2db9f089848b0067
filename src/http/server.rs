//! The accept loop: hyper connections serving the warp routes.
//!
//! Ours rather than `warp::serve` for what warp does not let one set: a deadline for every
//! request head (hyper's `header_read_timeout`, which needs a timer warp never gives it). Without
//! one, a client that opens connections and sends a header line every few seconds — or nothing
//! at all after a keep-alive request — holds them forever (slowloris). The deadline runs from
//! the moment hyper waits for a head: the start of a connection and the end of each request, so
//! an idle keep-alive connection is closed after the same time. Upgraded (WebSocket) connections
//! leave hyper and have the gateway's own heartbeat. Each request carries its TCP peer
//! (`Peer`), which `client_info` reads.
//!
//! HTTP/1.1 only: hyper's HTTP/1-or-2 detection reads the first bytes with no deadline at all
//! (a silent connection would be held forever), and cleartext HTTP/2 is not what browsers or
//! reverse proxies speak to a backend anyway (TLS and HTTP/2 end at the proxy).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use warp::http::{Request, Response};

use super::Peer;

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting (closes the
/// listener, then sends on `closed` if given) and waits for in-flight requests (the caller
/// bounds that wait).
pub async fn serve<S, B>(
    service: S,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
    closed: Option<tokio::sync::oneshot::Sender<()>>,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stopping = tokio_util::sync::CancellationToken::new();
    let connections = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            tower_service::Service::call(&mut service.clone(), req)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping.cancelled() => {
                    // Finish the request in flight, then close instead of keeping alive.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Timeouts and resets are the client's business; nothing to report above debug.
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    if let Some(closed) = closed {
        let _ = closed.send(());
    }
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// Per-connection failures (a peer gone before accept) are nothing; running out of file
/// descriptors is, and accepting again at once would spin: pause, as hyper 0.14's server did.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!("accept failed: {e}; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
