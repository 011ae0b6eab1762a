//! Smart routing: which targets a route sends a request to ([`rules`]), in which order
//! ([`order`]: fallback, weighted, cheapest, fastest, tripped targets last), and what this process
//! has learnt of each target to order by ([`target_board`]). The gateway calls these between
//! resolving the model and trying the targets; nothing here does I/O.

pub mod order;
pub mod rules;
pub mod target_board;

pub use order::{OrderInputs, fits_context, order, target_name};
pub use rules::{Choice, RequestTraits, choose, parse_tags};
pub use target_board::{TargetBoard, Timing};
