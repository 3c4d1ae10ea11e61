//! SMTP wire primitives shared by the fake relay and the middlebox:
//! bounded line reading, reply parsing and a boxed stream type.

mod io;
mod line;
mod reply;

pub use io::{BoxIo, Io, abort_on_close, accept, hold, raise_open_file_limit, split_handle};
pub use line::{Chunk, LineReader, MAX_LINE};
pub use reply::{
    Reply, ReplyAssembler, ReplyLine, Unit, censor, command_verb, ellipsize, printable,
    unsafe_to_show,
};
