use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// A byte stream: plain TCP or TLS, either end of the path.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type BoxIo = Box<dyn Io>;

/// The stream for tokio plus a duplicate handle on the same socket, for
/// socket options a boxed stream hides (see [`abort_on_close`]).
pub fn split_handle(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let dup = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, dup))
}

/// Makes the socket's close abortive: the peer sees a reset, not a FIN.
pub fn abort_on_close(socket: &std::net::TcpStream) {
    // Linger zero turns the close into a RST.
    let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
}

/// Holds a connection open without answering: reads and discards what
/// the peer sends (shown to `seen`) until it closes, a read fails, or
/// `wait` passes. Returns whether the peer went away within the wait.
pub async fn hold<S>(io: &mut S, wait: Duration, mut seen: impl FnMut(&[u8])) -> bool
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut sink = [0u8; 4096];
    tokio::time::timeout(wait, async {
        while let Ok(n @ 1..) = io.read(&mut sink).await {
            seen(&sink[..n]);
        }
    })
    .await
    .is_ok()
}

/// Accepts the next connection. A failed accept never ends the loop and
/// never spins it: a connection that died in the backlog is skipped at
/// once; a shortage (out of descriptors or memory) is waited out for a
/// moment, as hyper's and axum's servers do, so the connections in hand
/// can finish and free theirs.
pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            // Back-off, not synchronisation: nothing waits on this pause.
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Raises this process's soft limit on open files to its hard limit. A
/// thousand cases hold two listening sockets each, plus their connections;
/// the usual soft limit of 1024 is too low for that. Returns the limit now
/// in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}
