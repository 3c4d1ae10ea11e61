//! `pass-through`: changes nothing. The middlebox still sits on the path as
//! the wire tap that proves whether mail crossed it encrypted.

use super::behaviour::Behaviour;

pub struct PassThrough;

impl Behaviour for PassThrough {
    fn name(&self) -> &'static str {
        "pass-through"
    }
}
