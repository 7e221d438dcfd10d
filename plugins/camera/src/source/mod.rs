//! Where a camera's media comes from.

pub mod url;
