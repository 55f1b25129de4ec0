//! Layer 1: what every other layer may use and that knows nothing of
//! Image Builder: time ([`clock`], [`timestamp`]), locks that survive a
//! panic ([`sync`]), logging and its rate limit, gzip, the allocator's
//! tuning, the build's version, and the parsing of the values users type
//! (durations, AWS names) shared by the flags, the targets file and the web
//! configuration ([`parse`]).

pub mod allocator;
pub mod clock;
pub mod gzip;
pub mod logging;
pub(crate) mod loglimit;
pub mod parse;
pub(crate) mod sync;
pub mod timestamp;
pub mod version;
