//! sluice-local: the local stack that integration tests and `make demo` run against.
//!
//! [`moto`] starts one moto server per test process (the project venv's, see the Makefile) on a
//! free loopback port and hands out SDK clients pointed at it; the server exits when the test
//! process does. Test resources get unique names ([`unique`]) so tests run in parallel against
//! one server. [`Pg`] starts throwaway PostgreSQL clusters from the machine's binaries. A
//! missing venv or PostgreSQL is a test failure with instructions, never a silent skip.
//! [`readers`] reads outputs back with DuckDB from the venv; [`values`] compares a sample of
//! what was sent with what the lake and PostgreSQL hold. [`collector`] serves http-collector
//! on a loopback port as API Gateway would. [`progress`] is the demo's progress display.

pub mod aws;
pub mod clickstream;
pub mod collector;
pub mod events;
pub mod faults;
pub mod invoke;
pub mod pipeline;
pub mod postgres;
pub mod progress;
pub mod readers;
pub mod services;
pub mod setup;
pub mod stream;
pub mod summary;
pub mod testing;
pub mod values;

pub use aws::{gunzip, Aws};
pub use postgres::{shared_postgres, Pg};
pub use services::{demo_config, moto, unique, workspace_root};
