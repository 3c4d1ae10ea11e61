use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream: plain TCP or TLS, either end of the path.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type BoxIo = Box<dyn Io>;
