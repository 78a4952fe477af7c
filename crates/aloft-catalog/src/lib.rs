//! The service catalog: one model of every provider's clouds, regions, zones, instance types and
//! prices, plus the network between locations (egress price and bandwidth) and each region's
//! carbon intensity.
//!
//! Sources all produce the same [`Catalog`]: the bundled snapshot compiled into the binary, an
//! import of SkyPilot's v8 CSV layout, and (later) the local cloud's own offers. The catalog is
//! plain data with query functions; it makes no network calls.

mod matching;
mod model;

pub use matching::{DEFAULT_CPUS, DEFAULT_MEMORY_GIB};

pub use model::*;
