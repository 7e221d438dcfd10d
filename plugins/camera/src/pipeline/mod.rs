//! Camera pipelines: the templates of `pipelines/` and the pure choice of what to build.

pub mod plan;
pub mod template;
