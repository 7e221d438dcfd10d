//! Where a camera's media comes from.

pub mod feedback;
pub mod probe;
pub mod url;
