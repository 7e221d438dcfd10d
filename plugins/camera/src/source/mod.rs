//! Where a camera's media comes from.

pub mod probe;
pub mod url;
