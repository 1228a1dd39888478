//! Background executors inside the command API: durable pull consumers whose work goes through
//! the same append pipeline as HTTP commands.
//!
//! - [`payments`]: pays or rejects each `order_placed` exactly once.

pub mod payments;
