//! The AWS adapter against a real EC2 API: moto's server, started per test on loopback.
//!
//! Everything goes through the `Provider` interface (SSH into an emulated instance is not
//! possible: moto starts no machines). A plain SDK client looks behind the adapter's back where a
//! test needs to (deleting a security group, reading rules and tags).

mod catalog;
mod failover;
mod harness;
mod network;
mod provider;
