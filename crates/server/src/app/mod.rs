pub mod learning;
pub mod monitors;
mod state;

pub use state::*;
