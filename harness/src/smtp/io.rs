use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

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
